import os, sys, subprocess
from pathlib import Path
import pytest, torch

# The models under test are tiny: one thread is fastest and avoids oversubscribing a small shared machine.
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get('LMEFF_SHARED_DATA', ROOT.parent/'shared'/'data'))

@pytest.fixture
def shared_data():
    "The folder of real public data (BLiMP, corpus samples, reference results) kept beside the repo; skip when absent."
    if not SHARED_DATA.is_dir(): pytest.skip(f"real data folder {SHARED_DATA} not present (set LMEFF_SHARED_DATA)")
    return SHARED_DATA

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "A small prepared synthetic corpus (vocabulary 512), once per test module: what the training, schedule, state and tracker tests train on."
    from lmeff.tokens import prepare
    d = tmp_path_factory.mktemp('data')
    prepare('synthetic', d, [512], words=12_000, n_pairs=4, progress=False)
    return d

def run_cli(*args, cwd=None, env=None, timeout=600):
    "Run the installed `lmeff` console script; return the CompletedProcess."
    exe = Path(sys.executable).with_name('lmeff')
    cmd = [str(exe)] if exe.exists() else [sys.executable, '-m', 'lmeff.cli']
    return subprocess.run(cmd + [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)

@pytest.fixture(autouse=True)
def _no_waits_between_upload_attempts(monkeypatch):
    "A failed Hub upload is tried again at once in tests (lmeff waits seconds to minutes between attempts)."
    import lmeff.hub
    monkeypatch.setattr(lmeff.hub, 'RETRY_WAITS', (0, 0, 0))
