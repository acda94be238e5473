"The original study's assets: its full grid shipped as a configs.csv, `lmeff paper`, and scoring the checkpoints it released (every branch of a Hub repo) against a local stand-in for the Hub."
import json, shutil
from pathlib import Path
from types import SimpleNamespace as NS
import pandas as pd, pytest
from lmeff.config import LmeffError, read_configs
from lmeff.cli import main
from lmeff.model import init_random
from lmeff.paper import PAPER_ANCHORS, paper_configs
from lmeff.store import RESULTS_FILE, milestone_label
from conftest import SHARED_DATA, run_cli
from helpers import tiny_tokenizer
from test_blimp import TOY, write_toy

def test_the_grid_is_the_published_one():
    grid = pd.read_csv(paper_configs())
    runs = read_configs(paper_configs())                               # what lmeff check validates
    assert len(runs) == 36 and paper_configs().parent.name == 'lmeff'
    keys = lambda rows: sorted({(r.dataset, r.model_config, r.tokenizer_vocab_size) for r in rows})
    anchor_rows, full_rows = [r for r in runs if not r.full_run], [r for r in runs if r.full_run]
    assert keys(anchor_rows) == keys(full_rows) and len(keys(runs)) == 18   # each configuration: anchor runs and the full run
    assert all(list(r.anchors) == PAPER_ANCHORS for r in anchor_rows)
    assert set(grid.seq_length) == {256} and set(grid.epochs) == {50}
    ref = pd.read_csv(SHARED_DATA/'reference-results'/'blimp_all_overall.csv') if SHARED_DATA.is_dir() else None
    if ref is not None:
        assert keys(runs) == sorted({(d, s, int(v)) for d, s, v in ref[['dataset', 'model_size', 'vocab_size']].values})
        assert {milestone_label(m) for m in ref.milestone} == {milestone_label(a) for a in PAPER_ANCHORS} | {'final'}

def test_check_and_paper_dry_run(tmp_path):
    r = run_cli('check', paper_configs())
    assert r.returncode == 0 and '36 row(s) OK' in r.stdout
    r = run_cli('paper', '--out', tmp_path/'study', '--data-dir', tmp_path/'data', '--dry-run')
    assert r.returncode == 0, r.stderr
    assert 'row 36: 180m' in r.stdout and 'cosine 166.5B' in r.stdout and '36 rows x 3 seed(s) = 108 runs' in r.stdout
    assert not (tmp_path/'study'/'runs').exists()

def test_paper_runs_the_sweep_on_the_shipped_grid(tmp_path, capsys):
    "Without --dry-run, lmeff paper is lmeff sweep of the shipped grid with every sweep option: sweep's checks of the grid run before any run."
    study = tmp_path/'study'
    assert main(['paper', '--out', str(study), '--seeds', '0', '--prep', 'synthetic:words=1000']) == 2
    err = capsys.readouterr().err
    assert err.startswith('lmeff paper: error: --prep: dataset(s) synthetic not in ') and str(paper_configs()) in err and 'babylm3, hybrid_3.7B, tinystories' in err
    assert main(['paper', '--out', str(study), '--train-option', 'lr=abc', '--watch', '0', '--downstream', 'sst2']) == 2
    assert "--train-option: --lr: expected a number, got 'abc'" in capsys.readouterr().err
    assert not (study/'runs').exists()

# --- released checkpoints ----------------------------------------------------------------------------

BRANCHES = ['main', 'seed-0-tokens-25M', 'seed-0-tokens-50M', 'seed-0', 'seed-1-tokens-25M', 'seed-1']

class FakeHub:
    "Stands in for huggingface_hub.HfApi: lists the branches of the study's repos; `snapshot_download` gives a local model folder per branch."
    def __init__(self, models:dict, branches=BRANCHES): self.models, self.branches, self.downloads = models, branches, []
    def list_repo_refs(self, repo_id):
        if repo_id not in self.models: raise OSError(f'404: {repo_id}')
        return NS(branches=[NS(name=b, target_commit=f'{b}-c1') for b in self.branches], tags=[])
    def snapshot_download(self, repo_id, revision=None, allow_patterns=None):
        self.downloads.append(revision)
        return str(self.models[repo_id][revision])

@pytest.fixture(scope='module')
def released(tmp_path_factory):
    "Tiny models, one per branch (different seeds: different weights), as a repo of the study would hold them."
    d = tmp_path_factory.mktemp('released')
    tok = tiny_tokenizer(d/'tok.json', 300, [s for _, ps in TOY for p in ps for s in p] * 10)
    folders = {b: init_random('tiny', None, seed=i, out=d/b, tokenizer=tok, seq_length=64) for i, b in enumerate(BRANCHES[1:])}
    return {'paraskeva/tinystories-60m-tok8000': folders}

def test_score_every_branch_of_a_released_repo(tmp_path, released):
    from lmeff.blimp import score_revisions
    hub, blimp = FakeHub(released), write_toy(tmp_path/'blimp')
    done = score_revisions('paraskeva/tinystories-60m-tok8000', tmp_path/'results', blimp, api=hub, progress=False)
    assert [(s['revision'], s['status']) for s in done] == [('seed-0-tokens-25M', 'scored'), ('seed-0-tokens-50M', 'scored'), ('seed-0', 'scored'),
                                                             ('seed-1-tokens-25M', 'scored'), ('seed-1', 'scored')]
    root = tmp_path/'results'/'blimp'/'tinystories'/'60m'
    assert sorted(str(p.parent.relative_to(root)) for p in root.rglob(RESULTS_FILE)) == [
        'seed-0/tok-8000/25', 'seed-0/tok-8000/50', 'seed-0/tok-8000/final', 'seed-1/tok-8000/25', 'seed-1/tok-8000/final']
    cfg = json.loads((root/'seed-0'/'tok-8000'/'50'/RESULTS_FILE).read_text())['config']
    assert (cfg['model'], cfg['revision'], cfg['commit'], cfg['dataset'], cfg['model_config'], cfg['vocab_size'], cfg['seed'], cfg['milestone']) == \
        ('paraskeva/tinystories-60m-tok8000', 'seed-0-tokens-50M', 'seed-0-tokens-50M-c1', 'tinystories', '60m', 8000, 0, '50')
    hub.downloads.clear()
    again = score_revisions('paraskeva/tinystories-60m-tok8000', tmp_path/'results', blimp, api=hub, progress=False)
    assert {s['status'] for s in again} == {'skipped'} and hub.downloads == []   # done branches: not even downloaded
    moved = FakeHub(released); moved.list_repo_refs = lambda repo_id: NS(branches=[NS(name='seed-1', target_commit='seed-1-c2')])
    assert [s['status'] for s in score_revisions('paraskeva/tinystories-60m-tok8000', tmp_path/'results', blimp, api=moved, progress=False)] == ['scored']
    from lmeff.analysis import gather
    res = gather(tmp_path/'results', progress=False)                     # what lmeff analyze reads
    assert len(res.overall) == 5 and set(res.overall.milestone) == {'25', '50', 'final'}

def test_released_repo_errors(tmp_path, released):
    from lmeff.blimp import score_revisions
    blimp = write_toy(tmp_path/'blimp')
    with pytest.raises(LmeffError, match=r'needs a Hub repo named \{namespace\}/\{dataset\}-\{size\}-tok\{V\}'):
        score_revisions('paraskeva/some-model', tmp_path/'r', blimp, api=FakeHub(released))
    with pytest.raises(LmeffError, match=r'none of its branches \(dev, main\) is named seed-\{S\}-tokens-\{M\}M or seed-\{S\}'):
        score_revisions('paraskeva/tinystories-60m-tok8000', tmp_path/'r', blimp, api=FakeHub(released, ['main', 'dev']))
    with pytest.raises(LmeffError, match=r'paraskeva/babylm3-20m-tok16000: cannot list its branches .*404'):
        score_revisions('paraskeva/babylm3-20m-tok16000', tmp_path/'r', blimp, api=FakeHub(released))

def test_cli_all_revisions(tmp_path, released, monkeypatch, capsys):
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, 'HfApi', lambda *a, **k: FakeHub(released))   # what `lmeff blimp` makes when it runs
    blimp = write_toy(tmp_path/'blimp')
    args = ['blimp', '--model', 'paraskeva/tinystories-60m-tok8000', '--all-revisions', '--results', str(tmp_path/'results'),
            '--blimp-dir', str(blimp), '--device', 'cpu', '-q']
    assert main(args) == 0
    out = capsys.readouterr().out
    assert 'seed-0-tokens-25M: accuracy' in out and 'seed-1: accuracy' in out
    assert main(args) == 0 and capsys.readouterr().out.count('already scored') == 5
    assert main(args[:4] + ['--revision', 'seed-0']) == 2 and '--all-revisions goes with --model REPO' in capsys.readouterr().err
