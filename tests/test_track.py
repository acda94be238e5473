import json, os, struct
from pathlib import Path
import pytest
from lmeff.config import LmeffError
from lmeff.train_config import TrainConfig
from lmeff.train import train
from lmeff import track
from conftest import run_cli

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

SCHEDULES = ('anchor-0.004M', 'anchor-0.008M')   # the tracker runs of ARGS: 16 and 32 optimizer steps
RUN = 'synthetic-llama-tiny-tokenizer-512-seed-0'  # how the trackers name the run (`{RUN}/{schedule}`)

def local_trackers(root:Path, **more)->dict:
    "The environment of a command whose trackers all stay on this machine, under `root`: W&B offline in WANDB_DIR, Trackio's database in TRACKIO_DIR."
    (root/'wandb-dir').mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(('WANDB_', 'MLFLOW_', 'TRACKIO_'))}
    return env | {'WANDB_MODE': 'offline', 'WANDB_DIR': str(root/'wandb-dir'), 'WANDB_SILENT': 'true', 'TRACKIO_DIR': str(root/'trackio')} | more

def log_rows(folder:Path)->list[dict]: return [json.loads(l) for l in (folder/'train_log.jsonl').read_text().splitlines()]

@pytest.fixture(scope='module')
def tracked(data, tmp_path_factory):
    "One `lmeff train --report-to wandb,trackio,mlflow` (two anchor runs), each tracker through its real library, offline: (result, run folder, root)."
    for name in ('wandb', 'trackio', 'mlflow'): pytest.importorskip(name)
    root = tmp_path_factory.mktemp('tracked')
    r = run_cli(*ARGS, '--data-dir', data, '--out', root/'out', '--report-to', 'wandb,trackio,mlflow', '--log-every', '4', env=local_trackers(root),
                cwd=root)
    assert r.returncode == 0, r.stderr
    return r, root/'out'/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0', root

def test_mlflow_defaults_to_a_sqlite_store_in_the_run_folder(tracked):
    "MLflow 3 refuses the file store (./mlruns): without MLFLOW_TRACKING_URI the run folder's mlflow.db holds every step of the log."
    from mlflow.tracking import MlflowClient
    r, top, root = tracked
    uri = f"sqlite:///{top/'mlflow.db'}"
    assert f"mlflow (mlflow ui --backend-store-uri {uri})" in r.stdout.splitlines()[0]
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name('lmeff')
    assert exp.artifact_location == (top/'mlartifacts').as_uri()   # all of it in the run folder, none where the command ran
    assert not (top/'mlruns').exists() and not {'mlruns', 'mlflow.db'} & {p.name for p in root.iterdir()}
    runs = {x.info.run_name: x for x in client.search_runs([exp.experiment_id])}
    assert sorted(runs) == [f"{RUN}/{s}" for s in SCHEDULES]
    for s in SCHEDULES:
        rows, run = log_rows(top/s), runs[f"{RUN}/{s}"]
        loss = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, 'train/loss')]
        assert [st for st, _ in loss] == [x['step'] for x in rows] == list(range(1, len(rows) + 1)) and len(rows) in (16, 32)
        assert all(abs(v - x['train_loss']) < 1e-6 for (_, v), x in zip(loss, rows))              # what the log says, step by step
        assert [m.step for m in client.get_metric_history(run.info.run_id, 'eval/loss')] == [x['step'] for x in rows if 'eval_loss' in x]
        assert run.info.status == 'FINISHED' and run.data.params['seed'] == '0'

def wandb_records(path:Path):
    "The records of a W&B `.wandb` file (LevelDB log framing: a 7-byte file header, 32 KiB blocks of chunks with 7-byte headers), parsed by wandb's protobuf."
    from wandb.proto.wandb_internal_pb2 import Record
    data, pos, chunk = path.read_bytes(), 7, b''
    assert data[:4] == b':W&B'
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7: pos += 32768 - pos % 32768; continue   # a block's tail too short for a header is padding
        _, n, kind = struct.unpack('<IHB', data[pos:pos + 7])
        chunk, pos = chunk + data[pos + 7:pos + 7 + n], pos + 7 + n
        if kind == 0: break
        if kind in (1, 4): r = Record(); r.ParseFromString(chunk); yield r; chunk = b''   # a full record, or the last chunk of one

def wandb_run(path:Path)->dict:
    "What a W&B offline run recorded: its name and group, its history rows, its exit code (None: never finished)."
    out = dict(history=[], exit_code=None)
    for r in wandb_records(path):
        kind = r.WhichOneof('record_type')
        if kind == 'run': out |= dict(name=r.run.display_name, group=r.run.run_group, project=r.run.project)
        elif kind == 'history': out['history'].append({i.key or '/'.join(i.nested_key): json.loads(i.value_json) for i in r.history.item})
        elif kind == 'exit': out['exit_code'] = r.exit.exit_code
    return out

def test_wandb_offline_records_the_log_where_wandb_dir_says(tracked):
    r, top, root = tracked
    files = sorted((root/'wandb-dir'/'wandb').glob('offline-run-*/run-*.wandb'))
    assert len(files) == 2 and not (top/'wandb').exists()                 # WANDB_DIR, not the run folder
    runs = {x['name']: x for x in map(wandb_run, files)}
    assert sorted(runs) == [f"{RUN}/{s}" for s in SCHEDULES]
    for s in SCHEDULES:
        rows, run = log_rows(top/s), runs[f"{RUN}/{s}"]
        assert (run['group'], run['project'], run['exit_code']) == (RUN, 'lmeff', 0)
        loss = [(h['_step'], h['train/loss']) for h in run['history']]
        assert [st for st, _ in loss] == [x['step'] for x in rows] and all(abs(v - x['train_loss']) < 1e-6 for (_, v), x in zip(loss, rows))
        assert [h['_step'] for h in run['history'] if 'eval/loss' in h] == [x['step'] for x in rows if 'eval_loss' in x]

def test_trackio_database_holds_the_log(tracked, monkeypatch):
    from trackio import sqlite_storage
    r, top, root = tracked
    assert (root/'trackio'/'lmeff.db').is_file()
    monkeypatch.setattr(sqlite_storage, 'TRACKIO_DIR', root/'trackio')   # what TRACKIO_DIR said to the training command
    for s in SCHEDULES:
        rows, logs = log_rows(top/s), sqlite_storage.SQLiteStorage.get_logs('lmeff', f"{RUN}/{s}")
        assert [x['step'] for x in logs] == [x['step'] for x in rows]
        assert all(abs(l['train/loss'] - x['train_loss']) < 1e-6 and l['train/lr'] == x['lr'] for l, x in zip(logs, rows))
        assert [l['step'] for l in logs if 'eval/loss' in l] == [x['step'] for x in rows if 'eval_loss' in x]

def test_a_tracking_uri_mlflow_refuses_is_one_line(data, tmp_path, monkeypatch, capsys):
    "MLFLOW_TRACKING_URI is the user's: a file store MLflow 3 no longer takes is a one-line error naming it, before any training."
    pytest.importorskip('mlflow')
    from lmeff.cli import main
    uri = (tmp_path/'mlruns').as_uri()
    monkeypatch.setenv('MLFLOW_TRACKING_URI', uri)
    assert main([*ARGS, '--data-dir', str(data), '--out', str(tmp_path/'out'), '--report-to', 'mlflow']) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"lmeff train: error: --report-to mlflow: MLflow cannot use the tracking store "
                                                         f"MLFLOW_TRACKING_URI={uri} (The filesystem tracking backend"), err
    assert not any(p.read_text() for p in (tmp_path/'out').rglob('train_log.jsonl'))   # not one step trained

def test_trackers_are_closed_when_training_fails(data, tmp_path, monkeypatch):
    "A crash mid-run ends each tracker run as failed (W&B exit code 1, MLflow FAILED) with what was logged; MLFLOW_TRACKING_URI, set, is where MLflow writes."
    wandb, mlflow = pytest.importorskip('wandb'), pytest.importorskip('mlflow')
    from mlflow.tracking import MlflowClient
    import lmeff.train
    for k, v in local_trackers(tmp_path, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path/'elsewhere.db'}", WANDB_CONSOLE='off').items():
        if k.startswith(('WANDB_', 'MLFLOW_')): monkeypatch.setenv(k, v)
    step = lmeff.train.optimizer_step
    def crash_at_step_9(run, model, fwd, opt, sched, i):
        if i == 8: raise RuntimeError('CUDA out of memory (a stand-in)')
        return step(run, model, fwd, opt, sched, i)
    monkeypatch.setattr(lmeff.train, 'optimizer_step', crash_at_step_9)
    cfg = TrainConfig.make('tiny', 'synthetic', data, 512, seq_length=32, anchors=(0.004,), milestones=(), batch_size=8, eval_every=4,
                           eval_sequences=16, epochs=1, out=str(tmp_path/'out'), progress=False, device='cpu', report_to='tensorboard,wandb,mlflow')
    with pytest.raises(RuntimeError, match='CUDA out of memory'): train(cfg)
    assert wandb.run is None and mlflow.active_run() is None               # nothing left open in this process
    top = tmp_path/'out'/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'
    rows = log_rows(top/'anchor-0.004M')
    assert [x['step'] for x in rows] == list(range(1, 9))
    [w] = [wandb_run(f) for f in (tmp_path/'wandb-dir'/'wandb').glob('offline-run-*/run-*.wandb')]
    assert w['exit_code'] == 1 and [h['_step'] for h in w['history']] == [x['step'] for x in rows]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path/'elsewhere.db'}")
    [run] = client.search_runs([client.get_experiment_by_name('lmeff').experiment_id])
    assert run.info.status == 'FAILED' and [m.step for m in client.get_metric_history(run.info.run_id, 'train/loss')] == [x['step'] for x in rows]
    assert not (top/'mlflow.db').exists()

def test_each_run_folder_has_its_own_mlflow_store_in_one_process(tmp_path, monkeypatch):
    "mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI: the next run folder (a notebook, a sweep's kernel) must not write into the first one's store."
    pytest.importorskip('mlflow')
    from mlflow.tracking import MlflowClient
    monkeypatch.delenv('MLFLOW_TRACKING_URI', raising=False)
    for run in ('a', 'b'):
        folder = tmp_path/run/'llama-tiny'/'tokenizer-512-seed-0'; folder.mkdir(parents=True)
        with track.Tracker(['mlflow'], folder, 'anchor-1M') as t: t.log({'train/loss': 1.0}, 1)
        client = MlflowClient(tracking_uri=f"sqlite:///{folder/'mlflow.db'}")
        assert [r.info.run_name for r in client.search_runs([client.get_experiment_by_name('lmeff').experiment_id])] == [f"{run}-llama-tiny-tokenizer-512-seed-0/anchor-1M"]
    assert 'MLFLOW_TRACKING_URI' not in os.environ
