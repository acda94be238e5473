import importlib.machinery, json, sys, types
from pathlib import Path
import pytest
from lmeff.config import LmeffError, TrainConfig
from lmeff.tokens import prepare
from lmeff.train import train
from lmeff import track
from conftest import run_cli

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp('data')
    prepare('synthetic', d, [512], words=12_000, n_pairs=4, progress=False)
    return d

ARGS = ['train', '--model-config', 'tiny', '--dataset', 'synthetic', '--vocab-size', '512', '--seq-length', '32', '--anchors', '[0.004,0.008]',
        '--milestones', '[0.002]', '--batch-size', '8', '--eval-every', '5', '--eval-sequences', '16', '--epochs', '1', '--device', 'cpu', '--no-progress']

def test_tensorboard_event_files_hold_the_logged_scalars(data, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    r = run_cli(*ARGS, '--data-dir', data, '--out', tmp_path, '--report-to', 'tensorboard', '--log-every', '4')
    assert r.returncode == 0, r.stderr
    top = tmp_path/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'
    assert r.stdout.splitlines()[0] == f"tokenizer-512-seed-0: tracking: tensorboard (tensorboard --logdir {top/'tensorboard'})"
    ea = EventAccumulator(str(top/'tensorboard'/'anchor-0.008M')); ea.Reload()
    tags = set(ea.Tags()['scalars'])
    assert {'train/loss', 'train/lr', 'train/grad_norm', 'train/tokens_seen', 'train/tokens_per_s', 'eval/loss'} <= tags
    rows = [json.loads(l) for l in (top/'anchor-0.008M'/'train_log.jsonl').read_text().splitlines()]
    loss = {e.step: e.value for e in ea.Scalars('train/loss')}
    assert sorted(loss) == [r['step'] for r in rows] == list(range(1, 33))
    assert all(abs(loss[r['step']] - r['train_loss']) < 1e-6 for r in rows)            # what the log says, step by step
    assert [e.step for e in ea.Scalars('eval/loss')] == [r['step'] for r in rows if 'eval_loss' in r]
    assert all({'time', 'grad_norm', 'tokens_per_s'} <= set(r) and r['grad_norm'] > 0 for r in rows)
    assert all(a['time'] <= b['time'] for a, b in zip(rows, rows[1:]))

def test_report_to_none_and_errors(data, tmp_path, monkeypatch):
    r = run_cli(*ARGS, '--data-dir', data, '--out', tmp_path, '--report-to', 'none')
    assert r.returncode == 0 and 'tracking: none' in r.stdout and not list(tmp_path.rglob('tensorboard'))
    r = run_cli(*ARGS, '--data-dir', data, '--out', tmp_path/'x', '--report-to', 'tensorbored')
    assert r.returncode == 2 and 'expected none, all, auto or some of tensorboard, wandb, trackio, mlflow' in r.stderr
    monkeypatch.setattr(track, 'installed', lambda n: n == 'tensorboard')
    with pytest.raises(LmeffError, match=r'wandb not installed; pip install "lmeff\[wandb\]"'): track.resolve_report_to('wandb')
    assert track.resolve_report_to('all') == ['tensorboard'] and track.resolve_report_to('auto') == ['tensorboard']
    monkeypatch.setattr(track, 'installed', lambda n: False)
    assert track.resolve_report_to('auto') == [] and track.resolve_report_to('all') == []

def test_wandb_trackio_mlflow_through_their_own_libraries(data, tmp_path, monkeypatch):
    "Each tracker's own API is called with the run's metrics (stand-ins for the libraries, which are optional extras)."
    calls = []
    class Run:
        def log(self, m, step): calls.append(('wandb.log', step, set(m)))
        def finish(self): calls.append(('wandb.finish',))
    wandb = types.SimpleNamespace(init=lambda **kw: calls.append(('wandb.init', kw['name'], kw['group'])) or Run())
    trackio = types.SimpleNamespace(init=lambda **kw: calls.append(('trackio.init', kw['name'])),
                                    log=lambda m, step: calls.append(('trackio.log', step, set(m))), finish=lambda: calls.append(('trackio.finish',)))
    mlflow = types.SimpleNamespace(set_tracking_uri=lambda u: calls.append(('mlflow.uri', u)), set_experiment=lambda n: None,
                                   start_run=lambda run_name: calls.append(('mlflow.start', run_name)), log_params=lambda p: None,
                                   log_metrics=lambda m, step: calls.append(('mlflow.log', step, set(m))), end_run=lambda: calls.append(('mlflow.end',)))
    for name, mod in (('wandb', wandb), ('trackio', trackio), ('mlflow', mlflow)):
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)   # other libraries look for the trackers too
        monkeypatch.setitem(sys.modules, name, mod)
    monkeypatch.setattr(track, 'installed', lambda n: True)
    monkeypatch.delenv('MLFLOW_TRACKING_URI', raising=False)
    cfg = TrainConfig.make('tiny', 'synthetic', data, 512, seq_length=32, anchors=(0.004,), milestones=(), batch_size=8, eval_every=8,
                           eval_sequences=16, epochs=1, out=str(tmp_path), progress=False, device='cpu', report_to='wandb,trackio,mlflow')
    train(cfg)
    name = 'synthetic-llama-tiny-tokenizer-512-seed-0/anchor-0.004M'
    assert ('wandb.init', name, name.split('/')[0]) in calls and ('trackio.init', name) in calls and ('mlflow.start', name) in calls
    for kind in ('wandb.log', 'trackio.log', 'mlflow.log'):
        steps = [c[1] for c in calls if c[0] == kind]
        assert steps == list(range(1, 17)) and {'train/loss', 'train/lr', 'train/grad_norm'} <= next(c[2] for c in calls if c[0] == kind)
    assert ('mlflow.uri', (Path(cfg.storage.out).absolute()/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'/'mlruns').as_uri()) in calls
    assert all(c in calls for c in (('wandb.finish',), ('trackio.finish',), ('mlflow.end',)))
