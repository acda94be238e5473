"benchmarks/bench_gpu.py --cpu-smoke runs every code path (both training loops, compiled; BLiMP scoring) and writes its table."
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
    assert [r['method'] for r in rows] == ['reference', 'lmeff', 'blimp bf16', 'blimp fp32']
    ref, lm = rows[0], rows[1]
    assert int(ref['tokens_per_s']) > 0 and int(lm['tokens_per_s']) > 0 and int(lm['steps']) >= 1
    assert float(lm['ratio']) == round(int(lm['tokens_per_s']) / int(ref['tokens_per_s']), 2)
    assert lm['split'] == '1' and float(lm['compile_s']) > 0
    assert int(rows[2]['pairs_per_s']) > 0 and 0.5 <= float(rows[2]['same_decisions']) <= 1
    assert 'tokens/s' in r.stdout and 'bench_gpu.csv' in r.stdout

def test_needs_a_gpu_without_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'bench_gpu.py'), '--out', str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and 'needs a CUDA GPU' in r.stderr and 'Traceback' not in r.stderr
