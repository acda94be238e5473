import json, os, random, signal, subprocess, sys, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM
from lmeff.config import LmeffError
from lmeff.train_config import TrainConfig, steps_to_reach, milestone_steps
from lmeff.train import train, save_snapshot
from lmeff.state import save_state
from lmeff.store import SnapshotMeta, verify_snapshot
from lmeff.hub import read_env
from lmeff.tokens import load_tokenizer
from lmeff.cli import main
from conftest import run_cli
from helpers import train_ddp_and_single

def cfg(data, out, **kw):
    base = dict(seq_length=32, anchors=(-1.0,), milestones=(0.002, 0.004), batch_size=8, grad_accum=1, eval_every=5,
                eval_sequences=32, epochs=1, out=str(out), progress=False, device='cpu')
    return TrainConfig.make('tiny', 'synthetic', data, 512, **(base | kw))

def meta(path): return json.loads((Path(path)/'milestone_meta.json').read_text())
def log(path): return [json.loads(l) for l in (Path(path)/'train_log.jsonl').read_text().splitlines()]

@pytest.mark.parametrize('batch,accum,seq,world', [(64, 1, 256, 1), (128, 2, 256, 1), (256, 2, 256, 8), (8, 4, 128, 2), (3, 7, 100, 3)])
def test_milestone_steps(batch, accum, seq, world):
    tps = batch * accum * seq * world
    steps = milestone_steps([25, 50, 2000], tps)
    for step, ms in steps.items():
        for m in ms:
            assert step * tps >= m * 1e6 > (step - 1) * tps       # the first step reaching it
    assert steps_to_reach(0.000001, tps) == 1
    assert TrainConfig.make('20m', 'tinystories', 'd', 8000, batch_size=batch, grad_accum=accum, seq_length=seq).run.tokens_per_step(world) == tps

def test_full_run_snapshots_and_final_is_lowest_eval(data, tmp_path):
    res = train(cfg(data, tmp_path, eval_every=3))
    top = Path(res['run_dir'])
    assert res['snapshots'] == ['final', 'milestone-0.002M', 'milestone-0.004M']
    m = meta(top/'milestone-0.002M')
    tps = 8*32
    assert m['global_step'] == steps_to_reach(0.002, tps) and m['tokens_seen'] == m['global_step'] * tps >= 2000
    assert {'tokens_seen', 'global_step', 'milestone', 'dataset', 'model_config', 'seed', 'vocab_size'} <= set(m)
    assert (m['milestone'], m['dataset'], m['model_config'], m['seed'], m['vocab_size']) == ('0.002', 'synthetic', 'tiny', 0, 512)
    evals = [r for r in log(top) if 'eval_loss' in r]
    best = min(evals, key=lambda r: r['eval_loss'])
    assert meta(top/'final')['global_step'] == best['step'] and meta(top/'final')['eval_loss'] == best['eval_loss']
    assert evals[-1]['eval_loss'] < evals[0]['eval_loss'] - 0.5              # it learns
    for snap in ('milestone-0.002M', 'final'):
        files = {p.name for p in (top/snap).iterdir()}
        assert {'config.json', 'model.safetensors', 'tokenizer.json', 'milestone_meta.json', 'hashes.json'} <= files
        assert verify_snapshot(top/snap)
        AutoModelForCausalLM.from_pretrained(top/snap)
        assert load_tokenizer(top/snap).bos_token_id == 1
    (top/'final'/'config.json').write_text('{}')                               # tampering is detected
    assert not verify_snapshot(top/'final')

def test_anchor_runs_are_independent(data, tmp_path):
    res = train(cfg(data, tmp_path, anchors=(0.004, 0.008), milestones=(0.002,)))
    top = Path(res['run_dir'])
    assert res['snapshots'] == ['milestone-0.004M', 'milestone-0.008M']                # no final: that is the full run's
    a, b = top/'anchor-0.004M'/'milestone-0.002M', top/'anchor-0.008M'/'milestone-0.002M'
    assert meta(a)['global_step'] == meta(b)['global_step']                    # same tokens ...
    assert load_file(a/'model.safetensors')['lm_head.weight'].ne(load_file(b/'model.safetensors')['lm_head.weight']).any()  # ... other schedules
    assert meta(top/'milestone-0.008M')['tokens_seen'] == steps_to_reach(0.008, 256) * 256
    lrs = [r['lr'] for r in log(top/'anchor-0.004M')]
    assert len(lrs) == steps_to_reach(0.004, 256) == 16                        # the 4k-token run's schedule ends at its anchor
    assert lrs[8] == max(lrs) == 3e-3 and lrs[-1] < 0.05 * max(lrs)            # warmup (capped at half), then cosine to ~0
    assert all(a > b for a, b in zip(lrs[8:], lrs[9:]))

def test_same_seed_same_weights(data, tmp_path):
    a = train(cfg(data, tmp_path/'a', anchors=(0.004,), milestones=()))
    b = train(cfg(data, tmp_path/'b', anchors=(0.004,), milestones=()))
    pa, pb = (Path(r['run_dir'])/'milestone-0.004M'/'model.safetensors' for r in (a, b))
    assert pa.read_bytes() == pb.read_bytes()

def test_early_stopping(data, tmp_path):
    res = train(cfg(data, tmp_path/'stop', early_stop_after=0.001, patience=2, min_delta=100.0, eval_every=2))
    seg = res['schedules'][0]
    assert seg['stopped_early'] and seg['steps'] == 2*2 + 2                  # 3 evaluations without enough improvement
    res = train(cfg(data, tmp_path/'nostop', early_stop_after=1000, patience=2, min_delta=100.0, eval_every=2))
    assert not res['schedules'][0]['stopped_early']                            # never before early_stop_after tokens

def test_resume_continues_where_it_stopped(data, tmp_path):
    full = train(cfg(data, tmp_path/'full', anchors=(0.006,), milestones=(0.002,), save_every=2))
    part = train(cfg(data, tmp_path/'part', anchors=(0.006,), milestones=(0.002,), save_every=2, max_steps=9))
    assert part['schedules'][0]['steps'] == 9
    st = torch.load(Path(part['run_dir'])/'anchor-0.006M'/'state.pt', weights_only=False)
    st['done'] = False; save_state(Path(part['run_dir'])/'anchor-0.006M'/'state.pt', **st)   # as if killed after step 9
    resumed = train(cfg(data, tmp_path/'part', anchors=(0.006,), milestones=(0.002,), save_every=2))
    f = lambda r: (Path(r['run_dir'])/'milestone-0.006M'/'model.safetensors').read_bytes()
    assert f(resumed) == f(full)
    assert [r['step'] for r in log(Path(resumed['run_dir'])/'anchor-0.006M')] == list(range(1, steps_to_reach(0.006, 256) + 1))

def test_bit_identical_after_sigkill(data, tmp_path):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    args = ['train', '--model-config', 'tiny', '--dataset', 'synthetic', '--data-dir', data, '--vocab-size', '512',
            '--seq-length', '32', '--anchors', '[0.012]', '--milestones', '[0.004]', '--batch-size', '8', '--eval-every', '5',
            '--eval-sequences', '16', '--save-every', '1', '--epochs', '1', '--device', 'cpu', '--no-progress']
    ref = run_cli(*args, '--out', tmp_path/'ref', env=env)
    assert ref.returncode == 0, ref.stderr
    exe = Path(sys.executable).with_name('lmeff')
    logf = tmp_path/'killed'/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'/'anchor-0.012M'/'train_log.jsonl'
    kill_at = random.Random().randint(3, 40)
    p = subprocess.Popen([str(exe), *map(str, args), '--out', str(tmp_path/'killed')], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while p.poll() is None and time.time() < deadline:
        if logf.exists() and len(logf.read_text().splitlines()) >= kill_at: break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    again = run_cli(*args, '--out', tmp_path/'killed', env=env)
    assert again.returncode == 0, again.stderr
    snap = lambda root: root/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'/'milestone-0.012M'/'model.safetensors'
    assert snap(tmp_path/'killed').read_bytes() == snap(tmp_path/'ref').read_bytes(), f'killed after {kill_at} log lines'
    assert [json.loads(l)['step'] for l in logf.read_text().splitlines()] == list(range(1, steps_to_reach(0.012, 256) + 1))

def test_killed_snapshot_write_keeps_previous(data, tmp_path, monkeypatch):
    res = train(cfg(data, tmp_path, anchors=(0.004,), milestones=()))
    dest = Path(res['run_dir'])/'milestone-0.004M'
    before = (dest/'model.safetensors').read_bytes()
    model = AutoModelForCausalLM.from_pretrained(dest)
    def boom(*a, **k): raise KeyboardInterrupt('killed mid-write')
    import lmeff.train
    monkeypatch.setattr(lmeff.train, 'save_tokenizer_files', boom)
    with pytest.raises(KeyboardInterrupt): save_snapshot(model, dest/'tokenizer.json', dest, SnapshotMeta.read(dest))
    assert verify_snapshot(dest) and (dest/'model.safetensors').read_bytes() == before
    assert not [p for p in dest.parent.iterdir() if p.name.startswith('.milestone')]

def test_state_write_is_atomic(tmp_path, monkeypatch):
    p = tmp_path/'state.pt'
    save_state(p, step=1)
    def boom(obj, f): Path(f).write_bytes(b'partial'); raise OSError('disk full')
    monkeypatch.setattr(torch, 'save', boom)
    with pytest.raises(OSError): save_state(p, step=2)
    monkeypatch.undo()
    assert torch.load(p, weights_only=False)['step'] == 1

class RecordingHub:
    "Stands in for huggingface_hub.HfApi: records calls; can fail the first n uploads."
    def __init__(self, fail=0): self.calls, self.fail = [], fail
    def whoami(self): return {'name': 'lab', 'orgs': []}
    def create_repo(self, repo_id, exist_ok=False): self.calls.append(('create_repo', repo_id))
    def create_branch(self, repo_id, branch, exist_ok=False): self.calls.append(('create_branch', repo_id, branch))
    def upload_folder(self, repo_id, folder_path, revision, commit_message=None):
        if self.fail: self.fail -= 1; raise ConnectionError('hub unreachable')
        self.calls.append(('upload', repo_id, revision, sorted(p.name for p in Path(folder_path).iterdir())))

def test_hub_branches_and_files(data, tmp_path, monkeypatch):
    monkeypatch.setenv('HF_TOKEN', 'hf_x'); monkeypatch.setenv('HF_NAMESPACE', 'lab')
    hub = RecordingHub()
    train(cfg(data, tmp_path, store='hf', anchors=(0.004,), milestones=(0.002,)), hub_api=hub)
    uploads = [c for c in hub.calls if c[0] == 'upload']
    assert {c[1] for c in uploads} == {'lab/synthetic-tiny-tok512'}
    assert [c[2] for c in uploads] == ['seed-0-tokens-0.002M', 'seed-0-tokens-0.004M']
    assert all({'model.safetensors', 'config.json', 'tokenizer.json', 'milestone_meta.json'} <= set(c[3]) for c in uploads)
    hub = RecordingHub()
    train(cfg(data, tmp_path, store='hf', milestones=()), hub_api=hub)          # the full run of the same configuration: final
    assert {c[2] for c in hub.calls if c[0] == 'upload'} == {'seed-0'} and ('create_branch', 'lab/synthetic-tiny-tok512', 'seed-0') in hub.calls

def test_hub_upload_retried_then_reported(data, tmp_path, monkeypatch):
    monkeypatch.setenv('HF_TOKEN', 'hf_x'); monkeypatch.setenv('HF_NAMESPACE', 'lab')
    hub = RecordingHub(fail=1)
    train(cfg(data, tmp_path/'a', store='hf', anchors=(0.004,), milestones=(0.002,)), hub_api=hub)
    assert [c[2] for c in hub.calls if c[0] == 'upload'] == ['seed-0-tokens-0.002M', 'seed-0-tokens-0.004M']
    hub = RecordingHub(fail=100)
    with pytest.raises(LmeffError, match='saved locally, but these uploads failed'):
        train(cfg(data, tmp_path/'b', store='hf', anchors=(0.004,), milestones=(0.002,)), hub_api=hub)

def test_hub_needs_token_before_training(data, tmp_path, monkeypatch):
    monkeypatch.delenv('HF_TOKEN', raising=False); monkeypatch.delenv('HF_NAMESPACE', raising=False)
    monkeypatch.chdir(tmp_path)
    import lmeff.hub
    monkeypatch.setattr(lmeff.hub, '_known_token', lambda: None)                 # no `huggingface-cli login` either
    with pytest.raises(LmeffError, match='needs a Hugging Face token'): train(cfg(data, tmp_path/'out', store='hf'), hub_api=RecordingHub())
    assert not (tmp_path/'out').exists()
    monkeypatch.setenv('HF_TOKEN', 'hf_secret'); monkeypatch.setenv('HF_NAMESPACE', 'not-mine')
    with pytest.raises(LmeffError, match="'not-mine' is not the token's user") as e: train(cfg(data, tmp_path/'out', store='hf'), hub_api=RecordingHub())
    assert 'hf_secret' not in str(e.value) and not (tmp_path/'out').exists()
    class Refusing(RecordingHub):
        def whoami(self): raise PermissionError('401 for token hf_secret')
    with pytest.raises(LmeffError, match='refused the token') as e: train(cfg(data, tmp_path/'out', store='hf'), hub_api=Refusing())
    assert 'hf_secret' not in str(e.value)
    monkeypatch.delenv('HF_NAMESPACE')
    assert lmeff.hub.HubStore('d', 'tiny', 512, 0, api=RecordingHub()).repo_id == 'lab/d-tiny-tok512'   # the namespace of the token's user
    monkeypatch.delenv('HF_TOKEN')
    (tmp_path/'.env').write_text('# secrets\nHF_TOKEN="hf_abc"\nexport HF_NAMESPACE=lab\n')
    assert read_env() == {'HF_TOKEN': 'hf_abc', 'HF_NAMESPACE': 'lab'}

def test_ddp_two_processes_on_cpu(data, tmp_path):
    common = ['--model-config', 'tiny', '--dataset', 'synthetic', '--data-dir', str(data), '--vocab-size', '512', '--seq-length', '32',
              '--anchors', '[0.008]', '--milestones', '[0.002,0.004]', '--grad-accum', '2', '--eval-every', '5', '--eval-sequences', '16',
              '--epochs', '1', '--device', 'cpu', '--no-progress']
    ddp, one = train_ddp_and_single(common, tmp_path)
    for snap in ('anchor-0.008M/milestone-0.002M', 'anchor-0.008M/milestone-0.004M', 'milestone-0.008M'):
        a, b = meta(ddp/snap), meta(one/snap)
        assert (a['global_step'], a['tokens_seen']) == (b['global_step'], b['tokens_seen'])
        assert a['world_size'] == 2 and a['tokens_per_step'] == 4*2*32*2
    wa, wb = (load_file(r/'milestone-0.008M'/'model.safetensors') for r in (ddp, one))
    assert all(torch.allclose(wa[k], wb[k], atol=1e-4) for k in wa)           # the same global batch: the same training

def test_cli_config_row_and_errors(data, tmp_path, capsys):
    csv = tmp_path/'configs.csv'
    csv.write_text('model_config,dataset,epochs,batch_size,grad_accum,seq_length,anchors,tokenizer_vocab_size\n'
                   'tiny,synthetic,1,8,1,32,"[0.002]",512\n')
    rc = main(['train', '--config', str(csv), '--row', '1', '--data-dir', str(data), '--out', str(tmp_path/'o'), '--use-row-batch',
               '--milestones', '[0.001]', '--eval-every', '3', '--eval-sequences', '8', '--no-progress'])
    assert rc == 0 and 'milestone-0.002M' in capsys.readouterr().out
    assert meta(tmp_path/'o'/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'/'milestone-0.002M')['tokens_per_step'] == 8*32
    one = ['--epochs', '1']
    for args, msg in ((['--config', str(csv), '--row', '5'], 'out of range'), (['--config', str(csv)], 'needs --row'),
                      (['--config', str(csv), '--row', '1', *one], 'takes the run from the row: drop --epochs'),
                      (['--model-config', 'tiny', '--dataset', 'synthetic', '--vocab-size', '999', *one], 'not prepared'),
                      (['--model-config', 'tiny', '--dataset', 'synthetic', '--vocab-size', '512', '--anchors', '[900]', *one], 'more than 1 epoch'),
                      (['--model-config', '7b', '--dataset', 'synthetic', '--vocab-size', '512'], "--model-config: unknown model size '7b'"),
                      (['--model-config', 'tiny'], '--dataset')):
        assert main(['train', *args, '--data-dir', str(data), '--out', str(tmp_path/'e'), '--no-progress']) == 2
        err = capsys.readouterr().err
        assert msg in err and 'Traceback' not in err, (args, err)

def test_train_help_is_generated_from_the_config(capsys):
    "Every option of the training config has a flag whose help shows its default; per-size defaults are named."
    from dataclasses import fields
    from lmeff.config import RunConfig
    from lmeff.train_config import GROUPS
    with pytest.raises(SystemExit): main(['train', '--help'])
    out = ' '.join(capsys.readouterr().out.split())
    for cls in (RunConfig, *GROUPS.values()):
        for f in fields(cls):
            if f.name in ('row', 'use_row_batch'): continue
            flag = f.metadata.get('flag') or '--' + f.name.replace('_', '-')
            assert flag in out, flag
    for shown in ('(default: per size: tiny 0.003, mini 0.003, 20m 0.0005, 60m 0.0004, 180m 0.0003)',
                  '(default: per size: tiny 16, mini 16, 20m 64, 60m 128, 180m 256)', '(default: 256)', '(default: [-1])',
                  '(default: 50)', '(default: auto)', '(default: 2000.0)', '(default: [25, 50, 75, 100, 250, 500, 750, 1000, 1250, 1500, 1750, 2000])'):
        assert shown in out, shown
    with pytest.raises(SystemExit): main(['train', '--model-config', 'tiny', '--lr', 'fast', '--data-dir', 'd'])
    assert "argument --lr: could not convert string to float: 'fast'" in capsys.readouterr().err
    with pytest.raises(SystemExit): main(['train', '--model-config', 'tiny', '--anchors', '[1,', '--data-dir', 'd'])
    assert "argument --anchors: not a JSON list" in capsys.readouterr().err

def test_early_stopping_counts_from_the_threshold(data, tmp_path, monkeypatch):
    "The reference's rule: constant eval loss, patience 3, an evaluation every 2 steps, threshold reached at step 10 -> stop at 14."
    import lmeff.train
    monkeypatch.setattr(lmeff.train, 'evaluate', lambda *a, **k: 2.0)
    threshold = steps_to_reach(0.0025, 256)                                  # 0.0025M tokens at 256 tokens/step: step 10
    assert threshold == 10
    res = train(cfg(data, tmp_path, early_stop_after=0.0025, patience=3, min_delta=0.002, eval_every=2, milestones=()))
    assert res['schedules'][0]['steps'] == 14 and res['schedules'][0]['stopped_early']
    res = train(cfg(data, tmp_path/'b', early_stop_after=0.0025, patience=3, min_delta=0.002, eval_every=2, milestones=(), max_steps=13))
    assert res['schedules'][0]['steps'] == 13                                # not before 14

def test_full_run_and_anchor_runs_share_a_run_folder(data, tmp_path):
    "The full run adds the study's final; a schedule never replaces another schedule's snapshot, and says so before training."
    anchors = train(cfg(data, tmp_path, anchors=(0.004,), milestones=()))
    before = (Path(anchors['run_dir'])/'milestone-0.004M'/'model.safetensors').read_bytes()
    with pytest.raises(LmeffError, match=r'milestone-0\.004M is a snapshot of the anchor run 0\.004M; the full run does not replace it'):
        train(cfg(data, tmp_path, milestones=(0.004,)))
    assert not (Path(anchors['run_dir'])/'state.pt').exists()                 # refused before any training
    full = train(cfg(data, tmp_path, milestones=()))
    assert full['snapshots'] == ['final', 'milestone-0.004M']
    assert meta(Path(full['run_dir'])/'final')['anchor'] == -1 and meta(Path(full['run_dir'])/'milestone-0.004M')['anchor'] == 0.004
    assert (Path(anchors['run_dir'])/'milestone-0.004M'/'model.safetensors').read_bytes() == before

def test_snapshot_provenance(data, tmp_path):
    import transformers, tokenizers
    from lmeff.store import sha256_file
    res = train(cfg(data, tmp_path, anchors=(0.004,), milestones=()))
    snap = Path(res['run_dir'])/'milestone-0.004M'
    m = meta(snap)
    assert (m['torch_version'], m['transformers_version'], m['tokenizers_version']) == (torch.__version__, transformers.__version__, tokenizers.__version__)
    assert (m['device'], m['dtype'], m['batch_source']) == ('cpu', 'float32', 'row')
    assert m['weights_sha256'] == sha256_file(snap/'model.safetensors') and m['tokenizer_sha256'] == sha256_file(snap/'tokenizer.json')

def test_options_that_restore_the_reference(data, tmp_path):
    "warmup without the cap, the reference's data order (one data seed for every run) and its eval sets."
    from lmeff.train import _setup
    from lmeff.tokens import eval_windows
    uncapped = train(cfg(data, tmp_path/'u', anchors=(0.004,), milestones=(), warmup_cap=False, warmup_steps=20))
    lrs = [r['lr'] for r in log(Path(uncapped['run_dir'])/'anchor-0.004M')]
    assert all(a < b for a, b in zip(lrs, lrs[1:]))                          # 16 steps, all inside the 20-step warmup
    a = _setup(cfg(data, tmp_path, seed=1, data_seed=42)); b = _setup(cfg(data, tmp_path, seed=2, data_seed=42))
    assert (a.train.batch(range(8)) == b.train.batch(range(8))).all()     # the seed varies only the init
    c = _setup(cfg(data, tmp_path, seed=1))
    assert not (a.train.batch(range(8)) == c.train.batch(range(8))).all()
    n = a.dev.n
    assert len(eval_windows(cfg(data, tmp_path, eval_set='full'), a.dev)) == n
    tenth = eval_windows(cfg(data, tmp_path, eval_set='0.1'), a.dev)
    assert len(tenth) == -(-n // 10) and len(set(tenth)) == len(tenth) and (tenth == eval_windows(cfg(data, tmp_path, eval_set='0.1'), a.dev)).all()
    assert list(eval_windows(cfg(data, tmp_path), a.dev)) == list(range(min(32, n)))
    with pytest.raises(LmeffError, match='--eval-set'): cfg(data, tmp_path, eval_set='most')

def test_snapshot_tokenizer_is_the_data_stages_byte_for_byte(data, tmp_path):
    "The tokenizer.json a snapshot carries is the one its training streams were encoded with, whatever transformers is installed."
    from lmeff.tokens import tokenizer_path
    res = train(cfg(data, tmp_path, anchors=(0.004,), milestones=()))
    snap = Path(res['run_dir'])/'milestone-0.004M'
    assert (snap/'tokenizer.json').read_bytes() == tokenizer_path(Path(data)/'synthetic', 512).read_bytes()
    assert load_tokenizer(snap)(' the cat', add_special_tokens=False)['input_ids'] == load_tokenizer(tokenizer_path(Path(data)/'synthetic', 512))(' the cat', add_special_tokens=False)['input_ids']

def test_a_capped_run_does_not_block_the_real_one(data, tmp_path):
    "max_steps stops a run short; the same command without it continues to the end, bit-identical to an uninterrupted run."
    full = train(cfg(data, tmp_path/'full', anchors=(0.006,), milestones=(0.002,), save_every=3))
    capped = train(cfg(data, tmp_path/'cap', anchors=(0.006,), milestones=(0.002,), save_every=3, max_steps=10))
    assert capped['schedules'][0]['capped'] and capped['snapshots'] == []
    again = train(cfg(data, tmp_path/'cap', anchors=(0.006,), milestones=(0.002,), save_every=3, max_steps=10))
    assert again['schedules'][0]['steps'] == 10                               # the same cap: nothing more to do
    done = train(cfg(data, tmp_path/'cap', anchors=(0.006,), milestones=(0.002,), save_every=3))
    assert not done['schedules'][0]['capped'] and done['snapshots'] == ['milestone-0.006M']
    f = lambda r: (Path(r['run_dir'])/'milestone-0.006M'/'model.safetensors').read_bytes()
    assert f(done) == f(full)
    assert [r['step'] for r in log(Path(done['run_dir'])/'anchor-0.006M')] == list(range(1, steps_to_reach(0.006, 256) + 1))

def test_torn_log_line_and_damaged_state(data, tmp_path):
    "A log line cut by a kill is dropped on resume; a damaged state file is refused with a message naming it."
    part = train(cfg(data, tmp_path, anchors=(0.006,), milestones=(), save_every=3, max_steps=9))
    folder = Path(part['run_dir'])/'anchor-0.006M'
    with open(folder/'train_log.jsonl', 'a') as f: f.write('{"step": 10, "tokens_se')      # a kill mid-line
    res = train(cfg(data, tmp_path, anchors=(0.006,), milestones=(), save_every=3, max_steps=12))
    assert [r['step'] for r in log(folder)] == list(range(1, 13)) and res['schedules'][0]['steps'] == 12
    state = folder/'state.pt'
    st = torch.load(state, weights_only=False)
    st['model']['lm_head.weight'][0, :4] += 1.0; torch.save(st, state)           # bytes changed under an intact file format
    with pytest.raises(LmeffError, match=r'state\.pt: .*damaged'): train(cfg(data, tmp_path, anchors=(0.006,), milestones=(), save_every=3))
    state.write_bytes(b'garbage')
    r = run_cli('train', '--model-config', 'tiny', '--dataset', 'synthetic', '--data-dir', data, '--vocab-size', '512', '--seq-length', '32',
                '--anchors', '[0.006]', '--milestones', '[]', '--batch-size', '8', '--eval-every', '5', '--eval-sequences', '32',
                '--save-every', '3', '--epochs', '1', '--device', 'cpu', '--no-progress', '--out', tmp_path)
    assert r.returncode == 2 and 'state.pt: cannot read this training state' in r.stderr and 'Traceback' not in r.stderr

def test_failed_uploads_are_kept_with_the_run_and_retried(data, tmp_path, monkeypatch):
    monkeypatch.setenv('HF_TOKEN', 'hf_x'); monkeypatch.setenv('HF_NAMESPACE', 'lab')
    with pytest.raises(LmeffError, match='uploads_pending.json'):
        train(cfg(data, tmp_path, store='hf', anchors=(0.004,), milestones=()), hub_api=RecordingHub(fail=100))
    pending = Path(tmp_path)/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'/'uploads_pending.json'
    assert json.loads(pending.read_text())[0][1] == 'seed-0-tokens-0.004M'
    with pytest.raises(LmeffError, match='uploads failed'):                  # the same command again: still failing, still said
        train(cfg(data, tmp_path, store='hf', anchors=(0.004,), milestones=()), hub_api=RecordingHub(fail=100))
    hub = RecordingHub()
    train(cfg(data, tmp_path, store='hf', anchors=(0.004,), milestones=()), hub_api=hub)   # nothing left to train; the upload goes
    assert [c[2] for c in hub.calls if c[0] == 'upload'] == ['seed-0-tokens-0.004M'] and not pending.exists()

def test_one_owner_per_run_folder(data, tmp_path):
    "A second training command on a run folder that is being written stops at once, naming the holder; a killed holder blocks nothing."
    import lmeff.store
    top = tmp_path/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'
    with lmeff.store.hold(top, '.train-anchor-runs.lock', what='lmeff train: anchor runs'):
        r = run_cli('train', '--model-config', 'tiny', '--dataset', 'synthetic', '--data-dir', data, '--vocab-size', '512', '--seq-length', '32',
                    '--anchors', '[0.004]', '--batch-size', '8', '--epochs', '1', '--device', 'cpu', '--no-progress', '--out', tmp_path, '--lr', '0.001')
        assert r.returncode == 2 and f'is being written by pid {os.getpid()}' in r.stderr and 'Traceback' not in r.stderr, r.stderr
        assert not (top/'anchor-0.004M').exists()
        train(cfg(data, tmp_path, milestones=()))                              # the full run of the pair is another owner
    killed = subprocess.Popen([sys.executable, '-c', f"import lmeff.store, time\nwith lmeff.store.hold({str(top)!r}, '.train-anchor-runs.lock'): time.sleep(60)"])
    time.sleep(2); killed.kill(); killed.wait()
    assert train(cfg(data, tmp_path, anchors=(0.004,), milestones=()))['snapshots'] == ['final', 'milestone-0.004M']

def test_the_step_does_not_wait_for_the_device(data, tmp_path, monkeypatch):
    "The train loss stays on the device: read once every log_every steps, and once per evaluation (not once per batch)."
    reads = []
    item, tolist = torch.Tensor.item, torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, 'item', lambda self: reads.append('item') or item(self))
    monkeypatch.setattr(torch.Tensor, 'tolist', lambda self: reads.append('tolist') or tolist(self))
    res = train(cfg(data, tmp_path, anchors=(0.008,), milestones=(), eval_every=100, save_every=100, log_every=8, eval_sequences=32))
    steps = res['schedules'][0]['steps']
    assert steps == 32 and reads.count('item') == 1 and reads.count('tolist') == steps // 8   # one evaluation (at the end), 4 log reads
    rows = log(Path(res['run_dir'])/'anchor-0.008M')
    assert [r['step'] for r in rows] == list(range(1, 33)) and all(isinstance(r['train_loss'], float) for r in rows)

def test_micro_batch_split_keeps_every_count(data, tmp_path, monkeypatch):
    "A micro-batch trained in parts: the same sequences, steps, tokens and milestones; the same weights up to float rounding."
    one = train(cfg(data, tmp_path/'one', anchors=(0.008,), milestones=(0.004,)))
    two = train(cfg(data, tmp_path/'two', anchors=(0.008,), milestones=(0.004,), micro_split=2))
    for snap in ('anchor-0.008M/milestone-0.004M', 'milestone-0.008M'):
        a, b = meta(Path(one['run_dir'])/snap), meta(Path(two['run_dir'])/snap)
        assert (a['global_step'], a['tokens_seen'], a['batch_size'], a['grad_accum']) == (b['global_step'], b['tokens_seen'], b['batch_size'], b['grad_accum'])
        wa, wb = (load_file(Path(r['run_dir'])/snap/'model.safetensors') for r in (one, two))
        assert all(torch.allclose(wa[k], wb[k], atol=1e-5) for k in wa)
    import lmeff.train as T
    monkeypatch.setattr(T, 'memory_budget', lambda device: 1)        # as if the device had almost no memory: the estimator splits
    monkeypatch.setattr(T, 'split_for_memory', lambda *a, **kw: 4)
    auto = train(cfg(data, tmp_path/'auto', anchors=(0.008,), milestones=()))
    assert json.loads((Path(auto['run_dir'])/'anchor-0.008M'/'train_config.json').read_text())['micro_split'] == 4
    assert meta(Path(auto['run_dir'])/'milestone-0.008M')['tokens_seen'] == meta(Path(one['run_dir'])/'milestone-0.008M')['tokens_seen']
    with pytest.raises(LmeffError, match='--micro-split 3 does not divide the micro-batch of 8 sequences'):
        train(cfg(data, tmp_path/'bad', anchors=(0.008,), milestones=(), micro_split=3))

@pytest.mark.parametrize('options', [dict(loss='chunked'), dict(compile=True), dict(compile=True, loss='chunked')])
def test_gpu_path_pieces_train_like_the_eager_plain_path_on_cpu(data, tmp_path, options):
    "The chunked loss and torch.compile (inductor on CPU) give the eager plain path's losses within float tolerance."
    ref = train(cfg(data, tmp_path/'ref', anchors=(0.004,), milestones=()))
    new = train(cfg(data, tmp_path/'new', anchors=(0.004,), milestones=(), **options))
    la, lb = (torch.tensor([r['train_loss'] for r in log(Path(r['run_dir'])/'anchor-0.004M')]) for r in (ref, new))
    assert len(la) == len(lb) == 16 and torch.allclose(la, lb, rtol=1e-4, atol=1e-4), (la - lb).abs().max()
    cfg_json = json.loads((Path(new['run_dir'])/'anchor-0.004M'/'train_config.json').read_text())
    assert (cfg_json['loss'], cfg_json['compiled']) == (options.get('loss', 'plain'), options.get('compile', False))

def test_every_file_of_a_run_is_readable_as_the_umask_allows(data, tmp_path):
    "Under umask 022 every file lmeff writes (init, snapshots, states, logs, locks, BLiMP results) is group/other-readable, every folder listable."
    out, results, old = tmp_path/'out', tmp_path/'out'/'results', os.umask(0o022)
    try:
        train(cfg(data, out, anchors=(0.004,), milestones=(0.002,)))
        train(cfg(data, out, milestones=(0.002,)))
        top = out/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'
        assert main(['blimp', '--run', str(top), '--blimp-dir', str(data/'synthetic'/'blimp'), '--results', str(results), '--device', 'cpu']) == 0
    finally: os.umask(old)
    paths = [out, *out.rglob('*')]
    assert any(p.name == 'model.safetensors' for p in paths) and any(p.name == 'blimp_results.json' for p in paths)
    assert (out/'models'/'random').is_dir() and len([p for p in paths if p.name == 'model.safetensors']) >= 4   # the init and the snapshots
    bad = [f"{p.relative_to(out)} {p.stat().st_mode & 0o777:o}" for p in paths if p.stat().st_mode & 0o044 != 0o044 or p.stat().st_mode & 0o022]
    assert not bad, bad
    assert all(p.stat().st_mode & 0o111 == 0o111 for p in paths if p.is_dir())

def test_a_refused_train_changes_nothing_in_the_run(data, tmp_path, capsys):
    "A `lmeff train` that is refused (another process owns the run folder; its states or snapshots are another configuration's) leaves every file as it was."
    top = tmp_path/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'
    args = ['train', '--model-config', 'tiny', '--dataset', 'synthetic', '--data-dir', str(data), '--vocab-size', '512', '--seq-length', '32',
            '--batch-size', '8', '--epochs', '1', '--device', 'cpu', '--no-progress', '--out', str(tmp_path)]
    anchors = ['--anchors', '[0.004,0.008]', '--milestones', '[0.002]']
    assert main([*args, *anchors, '--lr', '0.001']) == 0
    files = lambda: {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(tmp_path.rglob('*'))   # a lock records who took it last
                     if p.is_file() and not p.name.endswith('.lock')}
    def refused(argv, msg):
        before = files()
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert msg in err and err.startswith('lmeff train: error:') and 'Traceback' not in err, err
        assert files() == before
    holder = subprocess.Popen([sys.executable, '-c', "import sys, time, lmeff.store\nwith lmeff.store.hold(sys.argv[1], '.train-anchor-runs.lock', "
                               "what='lmeff train: anchor runs'):\n    print('held', flush=True); time.sleep(120)", str(top)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'held\n'
        refused([*args, *anchors, '--lr', '0.002'], f'is being written by pid {holder.pid}')
        assert f'pid {holder.pid} ' in (top/'.train-anchor-runs.lock').read_text()
    finally: holder.kill(); holder.wait()
    refused([*args, *anchors, '--lr', '0.002'], "state.pt was written by a different configuration {'lr': (0.001, 0.002)}")
    assert main([*args, '--anchors', '[-1]', '--milestones', '[0.012]', '--lr', '0.001']) == 0   # the full run owns milestone-0.012M
    capsys.readouterr()
    refused([*args, '--anchors', '[0.004,0.012]', '--milestones', '[0.002]', '--lr', '0.001'], 'milestone-0.012M is a snapshot of the full run')
    assert not (top/'anchor-0.012M').exists()
    assert {json.loads((top/d/'train_config.json').read_text())['optim']['lr'] for d in ('anchor-0.004M', 'anchor-0.008M')} == {0.001}
