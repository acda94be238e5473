import json, os, random, signal, subprocess, sys, time
from pathlib import Path
import pytest
from lmeff.config import MILESTONES, LmeffError
from lmeff.train_config import TrainConfig
from lmeff.schedule import planned_steps, logged_steps, branch_step
from lmeff.train import train
from conftest import run_cli

def cfg(data, out, **kw):
    base = dict(seq_length=32, anchors=(0.004, 0.008), milestones=(0.002, 0.006), batch_size=8, grad_accum=1, eval_every=5,
                eval_sequences=16, epochs=1, out=str(out), progress=False, device='cpu', schedule='wsd', decay_fraction=0.25)
    return TrainConfig.make('tiny', 'synthetic', data, 512, **(base | kw))

def meta(path): return json.loads((Path(path)/'milestone_meta.json').read_text())
def log(path): return [json.loads(l) for l in (Path(path)/'train_log.jsonl').read_text().splitlines()]

def test_standard_anchors_wsd_trains_under_0_4x_the_tokens():
    for size in ('20m', '60m', '180m'):
        rc = TrainConfig.make(size, 'tinystories', 'data', 8000, anchors=MILESTONES).run
        tps = rc.tokens_per_step()
        c, w = planned_steps(rc, tps, 'cosine') * tps, planned_steps(rc, tps, 'wsd', 0.2) * tps
        assert abs(c / 1e9 - 9.25) < 0.01 and abs(w / 1e9 - 3.45) < 0.01 and w / c <= 0.4
        assert abs(planned_steps(rc, tps, 'wsd', 0.1) * tps / 1e9 - 2.725) < 0.01

def test_trunk_and_branches(data, tmp_path):
    res = train(cfg(data, tmp_path))
    top = Path(res['run_dir'])
    assert res['snapshots'] == ['milestone-0.004M', 'milestone-0.008M']          # anchor results: the branches' end points only
    assert sorted(p.name for p in (top/'trunk').glob('milestone-*')) == ['milestone-0.002M', 'milestone-0.006M']
    t = meta(top/'trunk'/'milestone-0.002M')
    assert t['trunk'] is True and t['schedule'] == 'wsd' and t['anchor'] is None
    for a, end in ((0.004, 16), (0.008, 32)):
        m = meta(top/f'milestone-{a}M')
        b = branch_step(end, 0.25)
        assert (m['schedule'], m['decay_fraction'], m['decay_shape'], m['branch_step'], m['trunk']) == ('wsd', 0.25, 'linear', b, False)
        assert m['global_step'] == end and m['anchor'] == a
        lrs = [r['lr'] for r in log(top/f'anchor-{a}M')]
        assert [r['step'] for r in log(top/f'anchor-{a}M')] == list(range(b + 1, end + 1))   # the branch trains only its decay
        assert lrs[0] == 3e-3 and all(x > y for x, y in zip(lrs, lrs[1:])) and lrs[-1] == pytest.approx(3e-3 / (end - b))
    trunk = log(top/'trunk')
    assert [r['step'] for r in trunk] == list(range(1, 25))
    warmup = min(20, 16 // 2)
    assert all(r['lr'] == 3e-3 for r in trunk[warmup:])                           # constant after the warmup
    # tokens trained, counted from the logs, are the plan's
    assert logged_steps(top) == planned_steps(cfg(data, tmp_path).run, 256, 'wsd', 0.25) == 24 + 4 + 8
    # a finished run is never retrained
    written = lambda: {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in top.rglob('*') if p.name in ('state.pt', 'model.safetensors')}
    logs = lambda: {p: p.read_text() for p in top.rglob('train_log.jsonl')}
    before, before_logs = written(), logs()
    train(cfg(data, tmp_path))
    assert written() == before and logs() == before_logs
    assert logged_steps(top) == 36

def test_same_data_order_as_cosine(data, tmp_path, monkeypatch):
    from lmeff.tokens import Windows
    seen, batch = [], Windows.batch
    monkeypatch.setattr(Windows, 'batch', lambda self, rows: seen.append(list(rows)) or batch(self, rows))
    w = train(cfg(data, tmp_path/'w', anchors=(0.008,), milestones=()))
    wsd, seen[:] = list(seen), []
    c = train(cfg(data, tmp_path/'c', anchors=(0.008,), milestones=(), schedule='cosine'))
    assert wsd == seen and len(seen) == 32                                        # the same sequences at every step ...
    lw, lc = log(Path(w['run_dir'])/'trunk'), log(Path(c['run_dir'])/'anchor-0.008M')
    assert lw[0]['train_loss'] == lc[0]['train_loss']                             # ... from the same init
    assert [r['lr'] for r in lw] != [r['lr'] for r in lc[:len(lw)]]               # only the learning rate differs

def test_a_larger_anchor_extends_the_trunk(data, tmp_path):
    one = train(cfg(data, tmp_path, anchors=(0.004,)))
    top = Path(one['run_dir'])
    first = (top/'milestone-0.004M'/'model.safetensors').read_bytes()
    train(cfg(data, tmp_path, anchors=(0.004, 0.008)))   # same warmup (the smallest anchor sets it): the trunk goes on
    assert (top/'milestone-0.004M'/'model.safetensors').read_bytes() == first
    ref = train(cfg(data, tmp_path/'ref'))
    assert (top/'milestone-0.008M'/'model.safetensors').read_bytes() == (Path(ref['run_dir'])/'milestone-0.008M'/'model.safetensors').read_bytes()

def test_schedules_do_not_mix_in_one_folder(data, tmp_path):
    train(cfg(data, tmp_path, schedule='cosine', anchors=(0.004,), milestones=()))
    with pytest.raises(LmeffError, match='under the cosine schedule; the wsd one does not replace it'):
        train(cfg(data, tmp_path, anchors=(0.004,), milestones=()))

def test_options_are_checked(data, tmp_path):
    with pytest.raises(LmeffError, match='--decay-fraction must be in'): cfg(data, tmp_path, decay_fraction=1.5)
    with pytest.raises(LmeffError, match='--schedule must be one of cosine, wsd'): cfg(data, tmp_path, schedule='step')
    with pytest.raises(LmeffError, match='--decay-shape must be one of'): cfg(data, tmp_path, decay_shape='cosine')

def test_check_prints_the_token_budget(tmp_path):
    csv = tmp_path/'configs.csv'
    csv.write_text('model_config,dataset,epochs,batch_size,grad_accum,seq_length,anchors,tokenizer_vocab_size\n'
                   f'20m,tinystories,5,64,1,256,"{json.dumps(list(MILESTONES))}",8000\n20m,tinystories,5,64,1,256,[-1],8000\n')
    r = run_cli('check', csv)
    assert r.returncode == 0, r.stderr
    assert 'tokens: cosine 9.25B, wsd 3.45B at f=0.2 (0.37x; saves 5.8B)' in r.stdout
    assert 'a full run keeps its cosine schedule' in r.stdout
    r = run_cli('check', csv, '--decay-fraction', '0.1')
    assert 'wsd 2.725B at f=0.1' in r.stdout and 'total' in r.stdout

def _wait_lines(p, logf, n, deadline=300):
    end = time.time() + deadline
    while p.poll() is None and time.time() < end:
        if logf.exists() and len(logf.read_text().splitlines()) >= n: return
        time.sleep(0.02)

def test_bit_identical_after_sigkill_in_trunk_and_branch(data, tmp_path):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    args = ['train', '--model-config', 'tiny', '--dataset', 'synthetic', '--data-dir', data, '--vocab-size', '512',
            '--seq-length', '32', '--anchors', '[0.004,0.008,0.012]', '--milestones', '[0.002,0.006]', '--batch-size', '8',
            '--eval-every', '5', '--eval-sequences', '16', '--save-every', '3', '--epochs', '1', '--device', 'cpu', '--no-progress',
            '--schedule', 'wsd', '--decay-fraction', '0.25', '--decay-shape', 'sqrt']
    ref = run_cli(*args, '--out', tmp_path/'ref', env=env)
    assert ref.returncode == 0, ref.stderr
    assert 'tokenizer-512-seed-0: wsd schedule; tokens: cosine 24.32K, wsd 15.1K at f=0.25 (0.62x; saves 9.216K)' in ref.stdout   # 95 vs 35 + 4 + 8 + 12 steps
    exe = Path(sys.executable).with_name('lmeff')
    top = lambda root: root/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'
    rng = random.Random()
    kills = [(top(tmp_path/'killed')/'trunk'/'train_log.jsonl', rng.randint(2, 20)),            # inside the trunk
             (top(tmp_path/'killed')/'anchor-0.008M'/'train_log.jsonl', rng.randint(1, 6))]     # inside a branch
    for logf, n in kills:
        p = subprocess.Popen([str(exe), *map(str, args), '--out', str(tmp_path/'killed')], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_lines(p, logf, n)
        p.send_signal(signal.SIGKILL); p.wait()
        assert p.returncode == -signal.SIGKILL, f'the run ended before the kill at {logf.parent.name} line {n}'
    again = run_cli(*args, '--out', tmp_path/'killed', env=env)
    assert again.returncode == 0, again.stderr
    for a in ('0.004', '0.008', '0.012'):
        snap = lambda root: top(root)/f'milestone-{a}M'/'model.safetensors'
        assert snap(tmp_path/'killed').read_bytes() == snap(tmp_path/'ref').read_bytes(), f'anchor {a}M differs after kills {kills}'
    for m in ('0.002', '0.006'):
        snap = lambda root: top(root)/'trunk'/f'milestone-{m}M'/'model.safetensors'
        assert snap(tmp_path/'killed').read_bytes() == snap(tmp_path/'ref').read_bytes()
    assert logged_steps(top(tmp_path/'killed')) == logged_steps(top(tmp_path/'ref'))

def test_hub_branches_of_trunk_and_anchors(data, tmp_path, monkeypatch):
    from test_train import RecordingHub
    monkeypatch.setenv('HF_TOKEN', 'hf_x'); monkeypatch.setenv('HF_NAMESPACE', 'lab')
    hub = RecordingHub()
    train(cfg(data, tmp_path, store='hf'), hub_api=hub)
    assert [c[2] for c in hub.calls if c[0] == 'upload'] == ['seed-0-trunk-tokens-0.002M', 'seed-0-tokens-0.004M',
                                                              'seed-0-trunk-tokens-0.006M', 'seed-0-tokens-0.008M']

def test_ddp_two_processes_match_one(data, tmp_path):
    import torch
    from safetensors.torch import load_file
    from helpers import train_ddp_and_single
    common = ['--model-config', 'tiny', '--dataset', 'synthetic', '--data-dir', str(data), '--vocab-size', '512', '--seq-length', '32',
              '--anchors', '[0.004,0.008]', '--milestones', '[0.002]', '--grad-accum', '2', '--eval-every', '5', '--eval-sequences', '16',
              '--epochs', '1', '--device', 'cpu', '--no-progress', '--schedule', 'wsd']
    ddp, one = train_ddp_and_single(common, tmp_path, port_offset=100)
    for snap in ('trunk/milestone-0.002M', 'milestone-0.004M', 'milestone-0.008M'):
        a, b = meta(ddp/snap), meta(one/snap)
        assert (a['global_step'], a['branch_step'], a['world_size']) == (b['global_step'], b['branch_step'], 2)
        wa, wb = (load_file(r/snap/'model.safetensors') for r in (ddp, one))
        assert all(torch.allclose(wa[k], wb[k], atol=1e-4) for k in wa)        # the same global batches: the same training

def test_trunk_checkpoints_are_scored_apart_from_anchor_results(data, tmp_path):
    from lmeff.blimp import score_run
    from lmeff.analysis import gather
    res = train(cfg(data, tmp_path))
    top, results = Path(res['run_dir']), tmp_path/'results'
    score_run(top, results, data/'synthetic'/'blimp', progress=False)
    score_run(top/'trunk', results, data/'synthetic'/'blimp', progress=False)
    assert sorted(p.name for p in (results/'blimp-trunk'/'synthetic'/'tiny'/'seed-0'/'tok-512').glob('0*')) == ['0.002', '0.006']
    cfg_json = json.loads((results/'blimp-trunk'/'synthetic'/'tiny'/'seed-0'/'tok-512'/'0.002'/'blimp_results.json').read_text())['config']
    assert (cfg_json['schedule'], cfg_json['trunk']) == ('wsd', True)
    assert sorted(gather(results, progress=False).overall['milestone']) == ['0.004', '0.008']   # anchor results only
    assert sorted(gather(results/'blimp-trunk', progress=False).overall['milestone']) == ['0.002', '0.006']

def test_check_estimate(tmp_path):
    csv = tmp_path/'configs.csv'
    csv.write_text('model_config,dataset,epochs,batch_size,grad_accum,seq_length,anchors,tokenizer_vocab_size\n'
                   f'20m,tinystories,5,64,1,256,"{json.dumps(list(MILESTONES))}",8000\n20m,tinystories,5,64,1,256,[-1],8000\n'
                   '60m,tinystories,5,64,1,256,[-1],8000\n')
    bench = tmp_path/'bench_gpu.csv'
    bench.write_text('size,vocab,method,batch,split,steps,tokens_per_s,ratio,mfu,peak_gib,compile_s,pairs_per_s,same_decisions\n'
                     '20m,50257,lmeff,64x1x256,1,100,2000000,1.2,0.4,10,30,,\n20m,50257,reference,64x1x256,1,100,1600000,1.0,0.3,12,30,,\n')
    r = run_cli('check', csv, '--estimate', '--seeds', '3', '--throughput', bench)
    assert r.returncode == 0, r.stderr
    rows = [l for l in r.stdout.splitlines() if l.startswith('row ') and 'tokens,' in l]
    assert rows[0].startswith('row 1: 27.75B tokens,') and '234 snapshots' in rows[0]                  # 3 x (12 anchors + 66 passed milestones)
    assert f"{3 * 564580 * 16384 / 2e6 / 3600:,.1f} GPU-h" in rows[0]                       # at the lmeff row's 2M tokens/s
    assert rows[1].startswith('row 2: ≥ 6B tokens') and '3 snapshots' in rows[1]                          # paired: only its final
    assert 'GPU-h: no throughput for 60m' in rows[2] and rows[2].count('39 snapshots') == 1                 # unpaired: 12 milestones + final
    w = run_cli('check', csv, '--estimate', '--schedule', 'wsd', '--throughput', '1e6')
    assert 'row 1: 3.45B tokens' in w.stdout and '22 snapshots' in w.stdout
    bad = run_cli('check', csv, '--estimate', '--throughput', tmp_path/'none.csv')
    assert bad.returncode == 2 and 'neither tokens/s nor a bench_gpu.csv file' in bad.stderr

def test_finished_schedules_keep_no_weights(data, tmp_path):
    import torch
    res = train(cfg(data, tmp_path, schedule='cosine'))
    top = Path(res['run_dir'])
    for a in ('0.004', '0.008'):
        st = torch.load(top/f'anchor-{a}M'/'state.pt', weights_only=False)
        assert st['done'] and 'model' not in st and 'optimizer' not in st and st['summary']['anchor'] == float(a)
    w = train(cfg(data, tmp_path/'w'))
    assert 'model' in torch.load(Path(w['run_dir'])/'trunk'/'state.pt', weights_only=False)           # the trunk: a later anchor extends it
    assert all('model' not in torch.load(p, weights_only=False) for p in Path(w['run_dir']).glob('anchor-*/state.pt'))
