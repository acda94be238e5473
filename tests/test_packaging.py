"The package people install (about 20 s: two builds, a venv, one tiny run): sdist and wheel build, and an installed wheel runs a sweep from any folder, without a checkout."
import os, subprocess, sys, sysconfig, tarfile, zipfile
from pathlib import Path
import pytest
from conftest import ROOT

def sh(*cmd, cwd, **kw):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout

@pytest.fixture(scope='module')
def dist(tmp_path_factory):
    "`python -m build`: the sdist, then a wheel built from that sdist (not from the checkout)."
    out = tmp_path_factory.mktemp('dist')
    sh(sys.executable, '-m', 'build', '--no-isolation', '--outdir', out, ROOT, cwd=ROOT)   # no isolation: no downloads, the venv's setuptools
    (sdist,), (wheel,) = out.glob('lmeff-*.tar.gz'), out.glob('lmeff-*.whl')
    return sdist, wheel

def test_sdist_and_wheel_hold_what_an_install_needs(dist):
    sdist, wheel = dist
    names = {n.split('/', 1)[1] for n in tarfile.open(sdist).getnames() if '/' in n}
    assert {'settings.ini', 'README.md', 'LICENSE', 'setup.py', 'lmeff/run_config.ipynb', 'lmeff/paper_configs.csv', 'lmeff/cli.py'} <= names
    names = zipfile.ZipFile(wheel).namelist()
    assert 'lmeff/run_config.ipynb' in names and any(n.endswith('licenses/LICENSE') for n in names)
    assert 'lmeff/paper_configs.csv' in names   # the study's grid, for `lmeff paper`
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode()
    assert 'Classifier: Development Status :: 3 - Alpha' in meta
    assert '](https://raw.githubusercontent.com/lmeff/lmeff/main/docs/images/' in meta   # images show on a package index page

def test_installed_wheel_runs_a_sweep_from_another_folder(dist, tmp_path):
    "Install the wheel (no deps) into a fresh venv that sees this venv's packages, then run `lmeff` where there is no checkout."
    venv = tmp_path/'venv'
    sh(sys.executable, '-m', 'venv', venv, cwd=tmp_path)
    py = venv/'bin'/'python'
    site = Path(sh(py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])', cwd=tmp_path).strip())
    (site/'deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')   # torch & co. from this venv; lmeff from the wheel
    sh(py, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', dist[1], cwd=tmp_path)
    work = tmp_path/'elsewhere'; work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')} | {'PATH': f"{venv/'bin'}{os.pathsep}{os.environ['PATH']}"}
    assert Path(sh(py, '-c', 'import lmeff; print(lmeff.__file__)', cwd=work, env=env).strip()).is_relative_to(site)
    assert sh(venv/'bin'/'lmeff', '--version', cwd=work, env=env).strip().startswith('lmeff ')
    from lmeff.config import COLUMNS
    (work/'configs.csv').write_text(','.join(COLUMNS) + '\ntiny,synthetic,1,16,1,32,[-1],300\n')
    sh(venv/'bin'/'lmeff', 'sweep', 'configs.csv', '--seeds', '0', '--out', 'out', '--data-dir', 'data', '--threads', '1', '--no-analysis',   # one run: nothing to compare
       '--prep', 'synthetic:words=15000', '--prep', 'synthetic:n_pairs=10', cwd=work, env=env)
    assert len(list((work/'out'/'runs').glob('*.done.json'))) == 1
