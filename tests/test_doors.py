"""Every door of the `lmeff` command, as a user types it: each subcommand run once through `lmeff.cli.main` in this process, on tiny
data, with nothing it calls stubbed; and every command line of the README parsed by the real parser."""
import argparse, contextlib, importlib, importlib.util, io, json, pkgutil, re, shlex
import pandas as pd, pytest
import lmeff
from lmeff.cli import main, make_parser
from lmeff.config import COLUMNS
from lmeff.sweep import SWEEP_OPTIONS, sweep_options
from conftest import ROOT

HDR = ','.join(COLUMNS) + '\n'
ANCHORS = 'tiny,synthetic,5,16,1,32,"[0.004,0.008]",300\n'   # two anchor runs of a few steps each
FULL = 'tiny,synthetic,1,16,1,32,[-1],300\n'                 # their full run, whose best checkpoint is `final`
PREP = ['--prep', 'synthetic:words=15000', '--prep', 'synthetic:n_pairs=10']   # the corpus a sweep's runs make
GRID = ['--sizes', 'tiny', '--vocab-sizes', '300', '--anchors', '[0.004,0.008]', '--seq-length', '32', '--words', '15000', '--n-pairs', '10']
RUN_LINE = r'synthetic-tiny-tok300-seq32-seed0(-full)?: ok \(\d'   # the line a sweep prints as each run finishes

def lmeff_cli(*argv):
    "Run `lmeff ARGV` here as a user types it; its exit status and the lines it printed."
    out = io.StringIO()
    with contextlib.redirect_stdout(out): status = main([str(a) for a in argv])
    return status, out.getvalue().splitlines()

@pytest.fixture(scope='module')
def root(tmp_path_factory):
    "The folder every door of this file writes under, with the experiment table of a sweep (anchor runs and their full run)."
    d = tmp_path_factory.mktemp('doors')
    (d/'configs.csv').write_text(HDR + ANCHORS + FULL)
    (d/'anchors.csv').write_text(HDR + ANCHORS)
    return d

@pytest.fixture(scope='module')
def prepped(root):
    return lmeff_cli('prep', 'synthetic', '--out', root/'data', '--vocab-sizes', '300', '--words', '15000')

@pytest.fixture(scope='module')
def trained(root, prepped):
    assert prepped[0] == 0
    return lmeff_cli('train', '--model-config', 'tiny', '--dataset', 'synthetic', '--vocab-size', '300', '--seq-length', '32',
                     '--anchors', '[0.002,0.004]', '--data-dir', root/'data', '--out', root/'out', '--device', 'cpu', '--no-progress')

RUN_DIR = 'out/models/synthetic/llama-tiny/tokenizer-300-seed-0'

@pytest.fixture(scope='module')
def scored(root, trained):
    assert trained[0] == 0
    return lmeff_cli('blimp', '--run', root/RUN_DIR, '--results', root/'results', '--blimp-dir', root/'data'/'synthetic'/'blimp', '--device', 'cpu')

def test_door_check(root):
    status, lines = lmeff_cli('check', root/'configs.csv')
    assert status == 0 and lines[0].startswith('row 1: tiny (') and lines[-1] == f"{root/'configs.csv'}: 2 row(s) OK"

def test_door_init(root):
    status, lines = lmeff_cli('init', '--model-config', 'tiny', '--vocab-size', '300', '--seed', '1', '--out', root/'init')
    assert (status, lines) == (0, [f"random init of tiny (seed 1) in {root/'init'}"]) and (root/'init'/'model.safetensors').is_file()

def test_door_prep(root, prepped):
    status, lines = prepped
    assert status == 0 and re.match(r'synthetic: [\d,]+ train / [\d,]+ dev documents', lines[0])
    assert (root/'data'/'synthetic'/'tokens'/'train-tok300.bin').is_file() and any((root/'data'/'synthetic'/'blimp').glob('*.jsonl'))

def test_door_train(root, trained):
    status, lines = trained
    assert status == 0 and lines[0].startswith('tokenizer-300-seed-0: tracking: ') and lines[-1] == f"{root/RUN_DIR}: milestone-0.002M, milestone-0.004M"

def test_door_blimp(root, scored):
    status, lines = scored
    assert status == 0 and len(lines) == 2 and re.match(r'0\.002: accuracy 0\.\d{4} -> .*blimp_results\.json$', lines[0])

def test_door_finetune(root, trained):
    assert trained[0] == 0
    glue, rows = root/'glue', [dict(sentence=s, label=i % 2) for i, s in enumerate(['the cat sees the dogs', 'a dog runs', 'the girls like it'] * 8)]
    glue.mkdir()
    for split in ('train', 'valid'): (glue/f'sst2.{split}.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    status, lines = lmeff_cli('finetune', '--run', root/RUN_DIR, '--tasks', 'sst2', '--data-dir', glue, '--results', root/'results',
                              '--epochs', '1', '--batch-size', '8', '--device', 'cpu')
    assert status == 0 and len(lines) == 2, lines   # one line per snapshot, and nothing of the Trainer's own
    assert re.match(r'0\.002 sst2: acc 0\.\d{4} -> .*sst2_results\.json$', lines[0]), lines

def test_door_analyze(root, scored):
    assert scored[0] == 0
    status, lines = lmeff_cli('analyze', '--results', root/'results', '--out', root/'analysis', '--bootstrap', '0', '--no-png')
    assert status == 0 and lines[0] == '2 snapshots of 1 runs' and (root/'analysis'/'summary.md').is_file()

def test_door_sweep(root):
    status, lines = lmeff_cli('sweep', root/'configs.csv', '--out', root/'sweep', '--data-dir', root/'sweep-data', *PREP, '--threads', '1',
                              '--max-parallel', '2')
    assert status == 0 and re.match(RUN_LINE, lines[0]), lines
    assert (pd.read_csv(root/'sweep'/'sweep_summary.csv')['status'] == 'ok').all() and (root/'sweep'/'analysis-synthetic'/'summary.md').is_file()

def test_door_demo(root):
    "The README's main job at a reduced grid: one size, one vocabulary, one seed."
    status, lines = lmeff_cli('demo', '--out', root/'demo', '--seeds', '0', *GRID)
    assert status == 0 and re.match(RUN_LINE, lines[0]) and re.fullmatch(r'demo finished in \d+s', lines[-1]), lines
    summary = pd.read_csv(root/'demo'/'sweep_summary.csv')
    assert len(summary) == 2 and (summary['status'] == 'ok').all()
    assert (root/'demo'/'analysis-synthetic'/'summary.md').is_file() and (root/'demo'/'analysis-synthetic'/'figures'/'learning_curves.png').is_file()
    found = check_demo().problems(root/'demo')   # what CI checks after the full demo; one vocabulary size draws no vocab_sizes figure
    assert f"{root/'demo'/'analysis-synthetic'/'figures'/'vocab_sizes.png'}: missing" in found
    assert not [p for p in found if p.startswith('run ') or '/runs/' in p], found

def check_demo():
    "tools/check_demo.py, which CI runs on what `lmeff demo --out demo` leaves."
    spec = importlib.util.spec_from_file_location('check_demo', ROOT/'tools'/'check_demo.py')
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module

def test_check_demo_wants_accuracy_rising_from_chance(tmp_path):
    def overall(first, last, final):   # two runs, the same accuracies
        (tmp_path/'overall.csv').write_text('dataset,model_size,milestone,vocab_size,seed,acc\n' + ''.join(
            f"synthetic,tiny,{m},512,{seed},{a}\n" for seed in (0, 1) for m, a in (('0.0125', first), ('0.1', last), ('final', final))))
        return check_demo().learning_problems(tmp_path/'overall.csv')
    assert overall(0.5, 0.7, 0.8) == []
    assert [p.split(': ')[1] for p in overall(0.5, 0.52, 0.55)] == ['accuracy does not rise', 'final accuracy 0.550 is not clearly above chance (at least 0.6)']

def test_door_compare_schedules(root):
    status, lines = lmeff_cli('compare-schedules', '--out', root/'compare', '--seeds', '0', *GRID)
    assert status == 0 and re.match(RUN_LINE, lines[0]), lines
    assert '# Cosine anchor runs vs a warmup–stable–decay trunk (synthetic minimal pairs)' in lines
    assert (root/'compare'/'comparison'/'schedules.md').is_file() and not any((root/'compare'/'wsd'/'runs').glob('*-full.ipynb'))

def test_door_paper(root):
    "The study's grid planned (--dry-run), then a grid of the user's own run through the same sweep, every sweep option in place."
    status, lines = lmeff_cli('paper', '--out', root/'study', '--dry-run')
    assert status == 0 and lines[0].startswith('row 1: ') and lines[-1] == f"36 rows x 3 seed(s) = 108 runs into {root/'study'}"
    assert not (root/'study').exists()
    status, lines = lmeff_cli('paper', '--configs', root/'anchors.csv', '--out', root/'study', '--data-dir', root/'study-data', '--seeds', '0',
                              *PREP, '--threads', '1', '--watch', '0')
    assert status == 0 and lines[0].startswith('row 1: tiny (') and f"1 rows x 1 seed(s) = 1 runs into {root/'study'}" in lines, lines
    assert pd.read_csv(root/'study'/'sweep_summary.csv')['status'].tolist() == ['ok']

# ---------------------------------------------------------------- every door has its test

def _subcommands()->dict:
    sub = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices

def test_every_subcommand_has_a_door_and_every_handler_a_subcommand():
    doors = {name[len('test_door_'):].replace('_', '-') for name in globals() if name.startswith('test_door_')}
    assert set(_subcommands()) == doors
    handlers = {p.get_default('func') for p in _subcommands().values()}
    modules = [importlib.import_module(f'lmeff.{m.name}') for m in pkgutil.iter_modules(lmeff.__path__) if not m.name.startswith('_')]
    defined = {f for m in modules for n, f in vars(m).items() if n.startswith('cmd_') and callable(f) and f.__module__ == m.__name__}
    assert defined == handlers, {f.__qualname__ for f in defined ^ handlers}

@pytest.mark.parametrize('argv', [['sweep', 'configs.csv', '--out', 'o'], ['paper', '--out', 'o'], ['demo', '--out', 'o'],
                                  ['compare-schedules', '--out', 'o']], ids=lambda a: a[0])
def test_commands_that_sweep_carry_every_sweep_option(argv):
    "What each of these commands parses holds everything `sweep` reads, from the one definition of sweep's options."
    args = make_parser(argv[0]).parse_args(argv)
    assert set(SWEEP_OPTIONS) <= set(vars(args))
    assert set(sweep_options(args)) == set(SWEEP_OPTIONS)

# ---------------------------------------------------------------- the README's command lines

def readme_commands()->list[str]:
    "Every `lmeff ...` command line in the README's bash and text code blocks (after `$ `, `&&`, or `torchrun ...`)."
    found = []
    for block in re.findall(r'```(?:bash|text)\n(.*?)```', (ROOT/'README.md').read_text(), re.S):
        for line in block.splitlines():
            for part in line.removeprefix('$ ').split('&&'):
                if not part.strip().startswith(('lmeff ', 'torchrun ')): continue   # output, or another program
                words = shlex.split(part, comments=True)
                if 'lmeff' in words: found.append(words[words.index('lmeff'):])
    return found

def test_readme_commands_parse():
    commands = readme_commands()
    assert len(commands) >= 20 and {c[1] for c in commands} >= {'demo', 'check', 'prep', 'train', 'blimp', 'sweep', 'paper'}
    for words in commands:
        try: make_parser(words[1]).parse_args(words[1:])
        except SystemExit: pytest.fail(f"the README's `{shlex.join(words)}` does not parse")
