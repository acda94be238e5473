"The docs build: `show_doc` renders every exported function and class, the site's Quarto files list every notebook, and the docs command changes nothing in the environment."
import importlib, inspect, sys
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

def test_docs_command_never_installs(monkeypatch):
    sys.path.insert(0, str(ROOT/'tools'))
    import docs
    monkeypatch.setattr(docs.shutil, 'which', lambda _: None)   # no quarto: nbdev would sudo-install it and `pip install -e .[dev]`
    with pytest.raises(SystemExit, match='quarto is not installed'): docs._refuse_to_install()
