"""Render README.md from nbs/index.ipynb (its markdown cells, in order).

nbdev's own `nbdev_readme` does the same through Quarto; this needs nothing but nbformat.
Usage: python tools/render_readme.py [--check]
"""
import sys
from pathlib import Path
import nbformat

root = Path(__file__).resolve().parents[1]

def render() -> str:
    nb = nbformat.read(root/'nbs'/'index.ipynb', as_version=4)
    return '\n\n'.join(c.source.strip('\n') for c in nb.cells if c.cell_type == 'markdown') + '\n'

if __name__ == '__main__':
    text = render()
    if '--check' in sys.argv[1:]:
        if (root/'README.md').read_text(encoding='utf-8') != text:
            sys.exit('README.md is out of date: edit nbs/index.ipynb and run python tools/render_readme.py')
    else: (root/'README.md').write_text(text, encoding='utf-8')
