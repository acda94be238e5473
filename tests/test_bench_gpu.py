"benchmarks/bench_gpu.py --cpu-smoke runs every code path (both training loops, compiled; the data loaders; the state saves; BLiMP scoring) and writes its table."
import csv, subprocess, sys
import pytest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

@pytest.mark.slow   # ~30-80 s: two compiled training loops and BLiMP scoring
def test_cpu_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_gpu.py'), '--cpu-smoke', '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = list(csv.DictReader(open(tmp_path/'bench_gpu.csv')))
    assert [r['method'] for r in rows] == ['reference', 'lmeff', 'data reference', 'data lmeff', 'state save reference', 'state save lmeff',
                                           'blimp bf16', 'blimp fp32']
    ref, lm = rows[0], rows[1]
    assert int(ref['tokens_per_s']) > 0 and int(lm['tokens_per_s']) > 0 and int(lm['steps']) >= 1
    assert float(lm['ratio']) == round(int(lm['tokens_per_s']) / int(ref['tokens_per_s']), 2)
    assert lm['split'] == '1' and float(lm['compile_s']) > 0
    data_ref, data = rows[2], rows[3]   # batches read from a prepared token stream, by lmeff's loader and by nanoGPT's get_batch
    assert data['batch'] == data_ref['batch'] == '4x33' and int(data['steps']) >= 1 and int(data_ref['steps']) >= 1
    assert float(data['ratio']) == round(int(data['tokens_per_s']) / int(data_ref['tokens_per_s']), 2)
    save_ref, save = rows[4], rows[5]   # seconds the loop waits for a resumable state
    assert 0 < float(save['save_s']) <= float(save['written_s']) and float(save_ref['save_s']) > 0 and save['batch'].endswith(' MB')
    assert float(save['ratio']) == round(float(save['save_s']) / float(save_ref['save_s']), 2)
    assert int(rows[6]['pairs_per_s']) > 0 and 0.5 <= float(rows[6]['same_decisions']) <= 1
    assert 'tokens/s' in r.stdout and 'state save' in r.stdout and 'bench_gpu.csv' in r.stdout
    assert not [p.name for p in tmp_path.iterdir() if p.name != 'bench_gpu.csv']   # the states were written into --out, then removed

def test_needs_a_gpu_without_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_gpu.py'), '--out', str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'needs a CUDA GPU' in r.stderr and 'Traceback' not in r.stderr
