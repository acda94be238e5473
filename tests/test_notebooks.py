"The notebooks are the source: README and library must match them."
import subprocess, sys, json
import nbformat
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
