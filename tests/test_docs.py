"""The docs build: `show_doc` renders every exported function and class, the site's Quarto files list every notebook, and nbdev's own
`nbdev_proc_nbs` processes every notebook without an error, leaving the project's files as they are."""
import importlib, inspect, os, shutil, subprocess, sys
from pathlib import Path
import pytest
from nbdev.showdoc import show_doc
import lmeff
from conftest import ROOT

MODULES = sorted(p.stem for p in (ROOT/'lmeff').glob('*.py') if not p.stem.startswith('_'))

@pytest.mark.parametrize('name', MODULES)
def test_show_doc_renders_every_export(name):
    mod = importlib.import_module(f'lmeff.{name}')
    for sym in getattr(mod, '__all__', []):
        obj = getattr(mod, sym)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            md = show_doc(obj, name=sym)._repr_markdown_()   # resolves every annotation, as the docs build does
            assert sym in md, f'lmeff.{name}.{sym}'

def test_site_lists_every_notebook_in_order():
    nbs = ROOT/'nbs'
    assert 'nbdev.yml' in (nbs/'_quarto.yml').read_text() and 'sidebar.yml' in (nbs/'_quarto.yml').read_text() and (nbs/'styles.css').is_file()
    listed = [l.strip()[2:] for l in (nbs/'sidebar.yml').read_text().splitlines() if l.strip().startswith('- ')]
    assert listed == ['index.ipynb'] + sorted(p.name for p in nbs.glob('[0-9]*.ipynb'))

@pytest.fixture(scope='module')
def proc_nbs(tmp_path_factory):
    """`nbdev_proc_nbs`, the console script, run on a copy of the project (it writes `_proc/` and regenerates `nbs/sidebar.yml`,
    `nbs/nbdev.yml` and `lmeff/_modidx.py`). It never runs Quarto, it only looks for it on PATH, and where there is none it installs it
    (`sudo`, a download) and runs `pip install -e "PROJECT[dev]"` in the active environment: a stand-in that refuses to run keeps it from that."""
    proj, bin_dir = tmp_path_factory.mktemp('project'), tmp_path_factory.mktemp('bin')
    for name in ('nbs', 'lmeff'): shutil.copytree(ROOT/name, proj/name, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints'))
    shutil.copy(ROOT/'settings.ini', proj)
    quarto = bin_dir/'quarto'
    quarto.write_text(f'#!/bin/sh\necho "$@" >> "{bin_dir}/quarto-was-run"\nexit 1\n'); quarto.chmod(0o755)
    env = {**os.environ, 'PATH': f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run(['nbdev_proc_nbs'], cwd=proj, env=env, capture_output=True, text=True, timeout=1800)
    assert not (bin_dir/'quarto-was-run').exists(), "nbdev_proc_nbs ran quarto"
    return r, proj

@pytest.mark.slow   # ~1 min: executes every notebook's export, import and show_doc cells
def test_nbdev_proc_nbs_processes_every_notebook(proc_nbs):
    r, proj = proc_nbs
    err = r.stderr[r.stderr.rfind('Exception: Error in notebook'):] if 'Error in notebook' in r.stderr else r.stderr[-3000:]
    assert r.returncode == 0, f"nbdev_proc_nbs failed (exit {r.returncode}): {err}"
    notebooks = sorted(p.name for p in (ROOT/'nbs').glob('*.ipynb'))
    assert sorted(p.name for p in (proj/'_proc').glob('*.ipynb')) == notebooks

@pytest.mark.slow
def test_no_docs_cell_mixes_imports_with_other_code(proc_nbs):
    "nbdev runs a cell that imports anything, all of it, out of context (the cells before it do not run): imports go in cells of their own."
    r, _ = proc_nbs
    assert 'Found cells containing imports and other code' not in r.stderr, "split the imports into their own cell:\n" + \
        r.stderr[r.stderr.index('Found cells containing imports'):][:2000]

@pytest.mark.slow
def test_nbdev_proc_nbs_leaves_the_site_files_as_they_are(proc_nbs):
    "Running it in a checkout must not change a committed file (its CLI lists every file in nbs/ in sidebar.yml unless custom_sidebar = True)."
    _, proj = proc_nbs
    for f in ('nbs/sidebar.yml', 'nbs/nbdev.yml', 'nbs/_quarto.yml'):
        assert (proj/f).read_text() == (ROOT/f).read_text(), f"nbdev_proc_nbs rewrote {f}"
