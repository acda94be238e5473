"Sweeps: papermill run notebooks per row x seed, isolation, resume, the Ray executor, the demo."
import json
from contextlib import nullcontext
import nbformat, papermill as pm, pandas as pd
import pytest
from lmeff.cli import main
from lmeff.config import COLUMNS, read_configs
from lmeff.sweep import run_notebook, sweep
from lmeff.runs import run_parameters
from lmeff.demo import demo
from conftest import run_cli

HDR = ','.join(COLUMNS) + '\n'
TINY = 'tiny,synthetic,5,16,1,32,"[0.004,0.008]",300\n' # a run of a few seconds
FULL = 'tiny,synthetic,1,16,1,32,[-1],300\n' # its full run: the final of the pair
PREP = ['--prep', 'synthetic:words=15000', '--prep', 'synthetic:n_pairs=10']

def injected(path)->str:
    "Source of the cell papermill injected into an executed notebook."
    cells = [c for c in nbformat.read(path, as_version=4).cells if 'injected-parameters' in c.metadata.get('tags', [])]
    assert len(cells) == 1
    return cells[0].source

def test_notebook_parameters_match_the_sweep(tmp_path):
    "The run notebook declares exactly the parameters a sweep injects, in its first cell."
    nb = nbformat.read(run_notebook(), as_version=4)
    assert 'parameters' in nb.cells[0].metadata.get('tags', [])
    assert sum('parameters' in c.metadata.get('tags', []) for c in nb.cells) == 1
    (tmp_path/'c.csv').write_text(HDR + TINY)
    p = run_parameters(read_configs(tmp_path/'c.csv')[0], 0, tmp_path/'o', tmp_path/'d')
    assert set(pm.inspect_notebook(str(run_notebook()))) == set(p)
    assert not any(line.startswith(('import', 'from')) for line in nb.cells[0].source.splitlines())

def test_sweep_isolation_records_and_resume(tmp_path, capsys):
    "A row failing mid-run does not stop the others; the summary says why; a second sweep skips what finished and retries the rest."
    bad_source = tmp_path/'not-tinystories'; bad_source.mkdir(); (bad_source/'notes.txt').write_text('no train or valid file here')
    csv = tmp_path/'configs.csv'
    csv.write_text(HDR + 'tiny,tinystories,5,16,1,32,"[0.004]",300\n' + TINY + FULL)
    out, data = tmp_path/'out', tmp_path/'data'
    rc = main(['sweep', str(csv), '--seeds', '0', '--out', str(out), '--data-dir', str(data), *PREP,
               '--source', f'tinystories={bad_source}', '--threads', '1'])
    assert rc == 1   # a run failed
    s = pd.read_csv(out/'sweep_summary.csv').set_index('run_id')
    bad, good = 'tinystories-tiny-tok300-seq32-seed0', 'synthetic-tiny-tok300-seq32-seed0'
    full = 'synthetic-tiny-tok300-seq32-seed0-full'
    assert s.loc[bad, 'status'] == 'failed' and s.loc[good, 'status'] == s.loc[full, 'status'] == 'ok'
    assert 'DataError' in s.loc[bad, 'reason'] and 'no train file' in s.loc[bad, 'reason'] and 'cell [' in s.loc[bad, 'reason']
    assert 0 <= s.loc[good, 'final_synthetic'] <= 1 and 0 <= s.loc[full, 'final_synthetic'] <= 1   # the anchor row's end point; the final
    assert json.loads((out/'sweep_summary.json').read_text())[0]['run_id'] in (bad, good)
    printed = capsys.readouterr().out
    assert 'failed' in printed and 'DataError' in printed
    # the executed notebooks are the lab records, with the row's values injected
    for rid in (bad, good): assert (out/'runs'/f'{rid}.ipynb').exists()
    src = injected(out/'runs'/f'{good}.ipynb')
    assert f'run_id = "{good}"' in src and 'seed = 0' in src and 'anchors = [0.004, 0.008]' in src and "'words': 15000" in src.replace('"', "'")
    assert (out/'runs'/f'{good}.done.json').exists() and not (out/'runs'/f'{bad}.done.json').exists()
    record = nbformat.read(out/'runs'/f'{good}.ipynb', as_version=4)   # the lab record: software and device, loss curves, learning curve
    texts = ''.join(o.get('text', '') for c in record.cells if c.cell_type == 'code' for o in c.outputs)
    assert 'torch 2.' in texts and 'transformers ' in texts and 'device: CPU' in texts and 'tracking:' in texts
    assert sum('image/png' in o.get('data', {}) for c in record.cells if c.cell_type == 'code' for o in c.outputs) >= 2
    run_dir = out/'models'/'synthetic'/'llama-tiny'/'tokenizer-300-seed-0'
    assert {'milestone-0.004M', 'milestone-0.008M', 'final'} <= {p.name for p in run_dir.iterdir()}
    summary = pd.read_csv(run_dir/'run_summary.csv', dtype={'milestone': str})
    assert summary['milestone'].tolist() == ['0.004', '0.008', 'final'] and summary['synthetic'].notna().all()
    assert (out/'results-synthetic'/'blimp'/'synthetic'/'tiny'/'seed-0'/'tok-300'/'final'/'blimp_results.json').exists()
    assert (out/'analysis-synthetic'/'overall.csv').exists()
    # second sweep: the finished run is skipped (its files untouched), the failed one retried
    stamp = (run_dir/'final'/'milestone_meta.json').stat().st_mtime_ns
    s2 = sweep(csv, [0], out, data, sources={'tinystories': str(bad_source)}, analysis=False, progress=False,
               data_options={'synthetic': {'words': 15000, 'n_pairs': 10}}, torch_threads=1).set_index('run_id')
    assert s2.loc[good, 'status'] == s2.loc[full, 'status'] == 'skipped' and s2.loc[bad, 'status'] == 'failed'
    assert (run_dir/'final'/'milestone_meta.json').stat().st_mtime_ns == stamp

def test_invalid_input_exit_2_before_any_run(tmp_path, capsys):
    "Every mistake that can be seen before the first run stops the sweep with exit status 2 and one line naming it."
    bad = tmp_path/'bad.csv'; bad.write_text(HDR + TINY + 'tiny,synthetic,5,16,1,32,"[0.01",300\n')
    r = run_cli('sweep', bad, '--out', tmp_path/'out')
    assert r.returncode == 2 and "row 2 (line 3), column 'anchors'" in r.stderr and 'Traceback' not in r.stderr, r.stderr
    ok = tmp_path/'ok.csv'; ok.write_text(HDR + TINY)
    twice = tmp_path/'twice.csv'; twice.write_text(HDR + TINY + TINY.replace('[0.004,0.008]', '[0.004]'))
    cases = [([str(tmp_path/'none.csv')], 'no such file'),
             ([str(ok), '--seeds', '0,a'], '--seeds'),
             ([str(ok), '--source', 'tinystories=x'], 'not in'),
             ([str(ok), '--source', f'synthetic={tmp_path/"missing"}'], 'no such file or folder'),
             ([str(ok), '--prep', 'words=10'], 'DATASET:KEY=VALUE'),
             ([str(ok), '--train-option', 'seed=3'], 'cannot be set per sweep'),
             ([str(ok), '--train-option', 'lr'], 'KEY=VALUE'),
             ([str(ok), '--notebook', str(tmp_path/'none.ipynb')], 'no such run notebook'),
             ([str(ok), '--blimp-dir', str(tmp_path/'none')], 'no such folder'),
             ([str(twice)], 'rows 1 and 2 would both train')]
    for args, msg in cases:
        assert main(['sweep', *args, '--out', str(tmp_path/'out')]) == 2, args
        err = capsys.readouterr().err
        assert msg in err and err.startswith('lmeff sweep: error:'), (args, err)
    assert not (tmp_path/'out'/'runs').exists()

def _toy_notebook(path):
    "A run notebook stand-in that fails for odd seeds and records the row it got."
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('seed: int = 0\nrun_id: str = ""\nout: str = "."', metadata={'tags': ['parameters']}),
        nbformat.v4.new_code_cell('import os\nassert seed % 2 == 0, f"odd seed {seed}"\nprint(os.environ.get("CUDA_VISIBLE_DEVICES"))')],
        metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}})
    nbformat.write(nb, path)
    return path

def test_local_parallel_with_any_notebook(tmp_path):
    "--max-parallel runs notebooks side by side; --notebook executes a user's own run notebook."
    (tmp_path/'c.csv').write_text(HDR + TINY)
    s = sweep(tmp_path/'c.csv', [0, 1, 2], tmp_path/'out', tmp_path/'data', max_parallel=2, notebook=_toy_notebook(tmp_path/'toy.ipynb'),
              progress=False).set_index('seed')
    assert s['status'].tolist() == ['ok', 'failed', 'ok']
    assert s.loc[1, 'reason'] == 'AssertionError: odd seed 1 (cell [3])'
    assert s.attrs['analysis'] == {}   # nothing scored: no analysis

@pytest.mark.slow
def test_ray_executor_on_cpu(tmp_path):
    "The same runs as Ray tasks on a local Ray instance: isolation and records as with the local executor."
    pytest.importorskip('ray')
    (tmp_path/'c.csv').write_text(HDR + TINY)
    s = sweep(tmp_path/'c.csv', [0, 1], tmp_path/'out', tmp_path/'data', executor='ray', notebook=_toy_notebook(tmp_path/'toy.ipynb'),
              progress=False).set_index('seed')
    assert s['status'].tolist() == ['ok', 'failed'] and 'odd seed 1' in s.loc[1, 'reason']
    assert 'seed = 1' in injected(tmp_path/'out'/'runs'/'synthetic-tiny-tok300-seq32-seed1.ipynb')
    s = sweep(tmp_path/'c.csv', [0, 1], tmp_path/'out', tmp_path/'data', executor='ray', notebook=tmp_path/'toy.ipynb', progress=False)
    assert s.set_index('seed')['status'].tolist() == ['skipped', 'failed']

@pytest.mark.slow
def test_ray_executor_real_run(tmp_path):
    "A real run notebook (data, training, scoring) as a Ray task."
    pytest.importorskip('ray')
    (tmp_path/'c.csv').write_text(HDR + TINY + FULL)
    r = main(['sweep', str(tmp_path/'c.csv'), '--out', str(tmp_path/'out'), '--data-dir', str(tmp_path/'data'), '--executor', 'ray',
              '--threads', '1', *PREP])
    assert r == 0
    assert (tmp_path/'out'/'results-synthetic'/'blimp'/'synthetic'/'tiny'/'seed-0'/'tok-300'/'final'/'blimp_results.json').exists()

@pytest.mark.slow
def test_run_notebook_defaults_top_to_bottom(tmp_path):
    "What a user gets opening the run notebook in JupyterLab and running all cells."
    pm.execute_notebook(str(run_notebook()), str(tmp_path/'executed.ipynb'), cwd=str(tmp_path), progress_bar=False)
    summary = pd.read_csv(tmp_path/'output'/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0'/'run_summary.csv', dtype={'milestone': str})
    assert summary['milestone'].tolist() == ['0.01', '0.03'] and summary['synthetic'].notna().all()   # anchor runs: no final of their own

@pytest.mark.slow
def test_demo_reduced_grid(tmp_path):
    "The demo end to end at a reduced size: every run ok, accuracies that rise, the analysis and its figures."
    s = demo(tmp_path/'demo', seeds=(0, 1), sizes=('tiny',), vocab_sizes=(300, 512), anchors=(0.01, 0.04), words=40_000, n_pairs=40,
             progress=False)
    assert (s['status'] == 'ok').all() and len(s) == 8                      # anchor rows and their full runs, two seeds
    figures = tmp_path/'demo'/'analysis-synthetic'/'figures'
    assert (figures/'learning_curves.png').exists() and (figures/'correlations.png').exists()
    overall = pd.read_csv(tmp_path/'demo'/'analysis-synthetic'/'overall.csv', dtype={'milestone': str})
    first, last = (overall[overall.milestone == m]['acc'].mean() for m in ('0.01', '0.04'))
    assert last > first
    again = demo(tmp_path/'demo', seeds=(0, 1), sizes=('tiny',), vocab_sizes=(300, 512), anchors=(0.01, 0.04), words=40_000, n_pairs=40,
                 progress=False)
    assert (again['status'] == 'skipped').all()

class FakeRay:
    "Just enough of Ray for `_ray`: records the task options, runs each task at once."
    def __init__(self, gpus): self.gpus, self.options, self.results = gpus, [], []
    def is_initialized(self): return False
    def init(self, **kw): pass
    def shutdown(self): pass
    def cluster_resources(self): return {'CPU': 4.0, 'GPU': float(self.gpus)}
    def remote(self, fn):
        fake = self
        class Task:
            def options(self, **kw): fake.options.append(kw); return self
            def remote(self, *a): return (len(fake.results), fake.results.append(fn(*a)))[0]   # an object ref: a hashable id
        return Task()
    def wait(self, refs, num_returns): return refs[:num_returns], refs[num_returns:]
    def get(self, ref): return self.results[ref]

@pytest.mark.parametrize('gpus,given,asked', [(1, 0.5, 0.5), (1, 1, 1), (2, 2, 2), (0, 0.5, 0)])
def test_gpus_per_run_reaches_ray(tmp_path, monkeypatch, gpus, given, asked):
    "`--gpus-per-run F` becomes each Ray task's num_gpus (on a cluster with GPUs): fractions share a GPU."
    import sys, lmeff.sweep as sw
    ray = FakeRay(gpus)
    monkeypatch.setitem(sys.modules, 'ray', ray)
    monkeypatch.setattr(sw, 'execute_run', lambda r, nb: dict(run_id=r, status='ok'))
    assert [r['run_id'] for r in sw._ray(['a', 'b', 'c'], 'nb.ipynb', None, None, given)] == ['a', 'b', 'c']
    assert ray.options == [{'num_gpus': asked, 'max_retries': 0}]

@pytest.mark.parametrize('value', ['0', '-1', '1.5', 'x'])
def test_gpus_per_run_invalid_exit_2(tmp_path, capsys, value):
    ok = tmp_path/'ok.csv'; ok.write_text(HDR + TINY)
    with pytest.raises(SystemExit) if value == 'x' else nullcontext():
        assert main(['sweep', str(ok), '--out', str(tmp_path/'out'), '--executor', 'ray', '--gpus-per-run', value]) == 2
    err = capsys.readouterr().err
    assert ('invalid float value' if value == 'x' else f"--gpus-per-run must be a fraction in (0, 1] or a whole number, got {float(value):g}") in err
    assert not (tmp_path/'out'/'runs').exists()


def test_sweep_shows_each_running_runs_progress(tmp_path):
    "While runs execute, a line per started, unfinished run says where its training is."
    import time
    from lmeff.sweep import plan, _watching
    (tmp_path/'c.csv').write_text(HDR + TINY + FULL)
    runs = plan(tmp_path/'c.csv', [0], tmp_path/'out', tmp_path/'data')
    for r in runs: r.record.parent.mkdir(parents=True, exist_ok=True); r.record.write_text('{}')   # both started
    log = tmp_path/'out'/'models'/'synthetic'/'llama-tiny'/'tokenizer-300-seed-0'/'anchor-0.008M'/'train_log.jsonl'
    log.parent.mkdir(parents=True); log.write_text(json.dumps(dict(step=12, tokens_seen=6144, train_loss=3.5, eval_loss=3.6, tokens_per_s=9000.0)) + '\n')
    lines = []
    class Bar:
        def write(self, s): lines.append(s)
    rows = [dict(run_id=runs[1].run_id)]   # the full run has finished: not shown
    with _watching(runs, rows, Bar(), 0.05): time.sleep(0.3)
    assert lines and set(lines) == {f"  {runs[0].run_id}: anchor-0.008M step 12 (0.01M tokens), loss 3.500, eval 3.600, 9,000 tok/s; 1 schedule(s) started"}

def test_downstream_options_checked_before_any_run(tmp_path, capsys):
    (tmp_path/'c.csv').write_text(HDR + TINY)
    base = ['sweep', str(tmp_path/'c.csv'), '--out', str(tmp_path/'out'), '--data-dir', str(tmp_path/'data')]
    assert main(base + ['--downstream', 'sst2,nosuchtask']) == 2 and "unknown task 'nosuchtask'" in capsys.readouterr().err
    assert main(base + ['--downstream', 'sst2', '--finetune-option', 'learning_rat=1']) == 2 and 'learning_rat' in capsys.readouterr().err
    assert main(base + ['--downstream', 'sst2', '--glue-dir', str(tmp_path/'none')]) == 2 and 'no such folder' in capsys.readouterr().err
    assert not (tmp_path/'out'/'runs').exists()
