"""Build lmeff's docs with nbdev without changing the environment.

nbdev 2.4's `nbdev_docs` and `nbdev_proc_nbs` both start with `_ensure_quarto()`: when `quarto` is not on PATH they install it
(`sudo`, a download) and then run `pip install -e ".[dev]"` in whatever environment is active. This script runs the same steps
with that one replaced by a check. It also leaves out of the docs build the example cells that mix imports with other code
(nbdev runs them, warns, and fails on names an earlier, unexecuted cell defines); `nbdev_test` still runs them.

    python tools/docs.py            # process the notebooks for the renderer (nbdev_proc_nbs): _proc/, no quarto needed
    python tools/docs.py --render   # and render the site into _docs/ with quarto (nbdev_docs); stops if quarto is missing
"""
import argparse, ast, shutil, sys
import nbdev.processors, nbdev.quarto

def _refuse_to_install():
    if shutil.which('quarto') is None:
        sys.exit("docs: quarto is not installed; install it from https://quarto.org/docs/get-started/ (nothing was changed)")

_do_eval = nbdev.processors._do_eval

def _eval_for_docs(cell):
    "nbdev's choice of cells to run for the docs, less the cells that mix imports with other code."
    if not _do_eval(cell): return False
    trees = cell.parsed_()
    return cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'} or all(isinstance(t, (ast.Import, ast.ImportFrom)) for t in trees) \
        or not any(isinstance(n, (ast.Import, ast.ImportFrom)) for t in trees for n in ast.walk(t))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--render', action='store_true', help='also render the site with quarto (nbdev_docs)')
    p.add_argument('--n-workers', type=int, default=0, help='notebooks processed in parallel (default: 0, one process)')
    args = p.parse_args(argv)
    nbdev.processors._do_eval = _eval_for_docs
    if args.render:
        nbdev.quarto._ensure_quarto = _refuse_to_install
        nbdev.quarto.nbdev_docs.__wrapped__(n_workers=args.n_workers)
    else:
        nbdev.quarto._ensure_quarto = lambda: None   # processing needs no renderer
        nbdev.quarto.nbdev_proc_nbs.__wrapped__(n_workers=args.n_workers)
    print(f"docs: {'rendered into _docs/' if args.render else 'notebooks processed into _proc/'}")

if __name__ == '__main__':
    main()
