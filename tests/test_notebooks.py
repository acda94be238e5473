"The notebooks are the source: README and library must match them."
import subprocess, sys, json
import nbformat
from pathlib import Path
from conftest import ROOT

def test_readme_is_rendered_from_index():
    r = subprocess.run([sys.executable, ROOT/'tools'/'render_readme.py', '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

def test_every_module_comes_from_one_notebook():
    mods = {}
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        cells = nbformat.read(nb, as_version=4).cells
        exp = [c.source.split('default_exp')[1].split()[0] for c in cells if c.cell_type == 'code' and '#| default_exp' in c.source]
        if exp: mods.setdefault(exp[0], []).append(nb.name)
    assert all(len(v) == 1 for v in mods.values()), mods
    for m in mods: assert (ROOT/'lmeff'/f'{m}.py').exists()

def test_run_notebook_ships_clean_with_its_parameters_tag(tmp_path):
    "The run notebook lives in the package (outside nbs/, where `nbdev_clean` does not look): it must stay as `nbdev_clean` leaves it."
    from lmeff.sweep import run_notebook
    nb = run_notebook()
    assert nb == ROOT/'lmeff'/'run_config.ipynb' and not (ROOT/'nbs'/'run').exists()
    copy = tmp_path/nb.name; copy.write_bytes(nb.read_bytes())
    r = subprocess.run([Path(sys.executable).parent/'nbdev_clean', '--fname', str(copy)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert copy.read_bytes() == nb.read_bytes(), "lmeff/run_config.ipynb is not clean: run `nbdev_clean --fname lmeff/run_config.ipynb`"
    cells = nbformat.read(nb, as_version=4).cells
    assert 'parameters' in cells[0].metadata.get('tags', []) and not any(c.get('outputs') for c in cells)
