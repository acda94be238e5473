import argparse, json
from pathlib import Path
import pytest
from transformers import AutoModelForCausalLM
from lmeff.config import COLUMNS
from conftest import run_cli, ROOT
from helpers import tiny_tokenizer

HDR = ','.join(COLUMNS) + '\n'

def test_help_on_every_subcommand():
    r = run_cli('--help'); assert r.returncode == 0 and 'check' in r.stdout and 'init' in r.stdout
    for cmd in ('check', 'init'):
        r = run_cli(cmd, '--help'); assert r.returncode == 0 and 'usage: lmeff ' + cmd in r.stdout

def test_check_ok(tmp_path):
    r = run_cli('check', ROOT/'configs.csv')
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if l.startswith('row ')]
    assert len(lines) == sum(1 for _ in open(ROOT/'configs.csv')) - 1
    assert '21.14M params' in r.stdout or '15M params' in r.stdout
    assert 'tokens/step' in r.stdout

def test_check_bad_row_exit_2(tmp_path):
    p = tmp_path/'configs.csv'
    p.write_text(HDR + 'tiny,synthetic,1,8,1,64,[0.1],512\n20m,tinystories,50,64,1,256,"[25,50",8000\n')
    r = run_cli('check', p)
    assert r.returncode == 2
    assert "row 2 (line 3), column 'anchors'" in r.stderr and 'Traceback' not in r.stderr

def test_check_missing_file_exit_2(tmp_path):
    r = run_cli('check', tmp_path/'none.csv')
    assert r.returncode == 2 and 'no such file' in r.stderr and 'Traceback' not in r.stderr

def test_usage_error_exit_2():
    r = run_cli('init', '--vocab-size', '512')
    assert r.returncode == 2 and '--model-config' in r.stderr

def test_init_writes_loadable_folder(tmp_path):
    r = run_cli('init', '--model-config', 'tiny', '--vocab-size', '512', '--seed', '0', '--out', tmp_path/'m')
    assert r.returncode == 0, r.stderr
    model = AutoModelForCausalLM.from_pretrained(tmp_path/'m')
    assert model.config.vocab_size == 512

def test_init_with_tokenizer(tmp_path):
    tj = tiny_tokenizer(tmp_path/'tokenizer_300.json', 300)
    r = run_cli('init', '--model-config', 'tiny', '--tokenizer', tj, '--out', tmp_path/'m')
    assert r.returncode == 0, r.stderr
    assert (tmp_path/'m'/'tokenizer.json').exists()
    from transformers import AutoTokenizer
    assert json.loads((tmp_path/'m'/'config.json').read_text())['vocab_size'] == len(AutoTokenizer.from_pretrained(tmp_path/'m'))

def test_init_errors_exit_2(tmp_path):
    for args in (['--model-config', 'huge', '--vocab-size', '512'], ['--model-config', 'tiny'],
                 ['--model-config', 'tiny', '--vocab-size', '100'], ['--model-config', 'tiny', '--tokenizer', tmp_path/'nope.json']):
        r = run_cli('init', *args, '--out', tmp_path/'m')
        assert r.returncode == 2 and 'error' in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr)

def bad_inputs(root):
    "Every input the user-mistake cases below need, built under `root`."
    import numpy as np, shutil, zipfile
    from lmeff.tokens import prepare, tokens_path
    (root/'dup.csv').write_text(HDR.strip() + ',model_config\ntiny,synthetic,1,8,1,64,[0.1],512,20m\n')
    (root/'extra.csv').write_text(HDR.strip() + ',notes\ntiny,synthetic,1,8,1,64,[0.1],512,first try\n')
    (root/'ok.csv').write_text(HDR + 'tiny,synthetic,1,8,1,64,[0.1],512\n')
    (root/'afile').write_text('')
    for name, train in (('utf16', 'A cat sat.<|endoftext|>A dog ran.'.encode('utf-16')), ('random', bytes(range(128, 256)) * 20)):
        (root/name).mkdir(); (root/name/'x-train.txt').write_bytes(train); (root/name/'x-valid.txt').write_text('The end.')
    (root/'junk.zip').write_bytes(bytes(range(256)) * 10)
    with zipfile.ZipFile(root/'crc.zip', 'w', zipfile.ZIP_STORED) as z:
        z.writestr('x-train.txt', 'A cat sat on the mat. ' * 50); z.writestr('x-valid.txt', 'The end.')
    b = bytearray((root/'crc.zip').read_bytes()); b[b.find(b'A cat') + 100] ^= 0x20; (root/'crc.zip').write_bytes(bytes(b))
    (root/'hybrid'/'c4').mkdir(parents=True); (root/'hybrid'/'c4'/'a.jsonl.gz').write_bytes(b'{"text": "not gzip"}\n')
    prepare('synthetic', root/'cut', [300], words=2000, progress=False)
    shutil.copytree(root/'cut', root/'foreign')
    text = root/'cut'/'synthetic'/'text'/'train.jsonl'; text.write_bytes(text.read_bytes()[:-30])   # killed while copying
    stream = tokens_path(root/'foreign'/'synthetic', 300, 'train')
    arr = np.fromfile(stream, np.uint16); arr[::7] = 4000; arr.tofile(stream)                    # ids of a larger vocabulary

PREP = ['prep', 'tinystories', '--vocab-sizes', '300', '--out', '{tmp}/out']
TRAIN = ['train', '--model-config', 'tiny', '--vocab-size', '300', '--max-steps', '1', '--device', 'cpu', '--out', '{tmp}/out']

MISTAKES = {   # id: (arguments, exit status, what stderr says, a path that must not appear)
    'csv-column-twice': (['check', '{tmp}/dup.csv'], 2, "dup.csv, row 0 (line 1), column 'model_config': this column appears twice", None),
    'csv-unknown-column-warns': (['check', '{tmp}/extra.csv'], 0, "warning: {tmp}/extra.csv: column(s) notes not used", None),
    'check-world-size-0': (['check', '{tmp}/extra.csv', '--world-size', '0'], 2, "--world-size must be >= 1, got 0", None),
    'utf16-corpus': (PREP + ['--source', '{tmp}/utf16'], 2, "utf16/x-train.txt, line 1: not UTF-8 text (byte 0xff at offset 0)", '{tmp}/out'),
    'random-bytes-corpus': (PREP + ['--source', '{tmp}/random'], 2, "random/x-train.txt, line 1: not UTF-8 text (byte 0x80 at offset 0)", '{tmp}/out'),
    'zip-not-an-archive': (PREP + ['--source', '{tmp}/junk.zip'], 2, "junk.zip: not a zip archive", '{tmp}/out'),
    'zip-bad-crc': (PREP + ['--source', '{tmp}/crc.zip'], 2, "crc.zip, member x-train.txt: damaged or unreadable archive (Bad CRC-32", '{tmp}/out'),
    'gz-not-gzip': (['prep', 'hybrid_3.7B', '--source', '{tmp}/hybrid', '--vocab-sizes', '300', '--out', '{tmp}/out'], 2,
                    "c4/a.jsonl.gz: damaged or unreadable archive (Not a gzipped file", '{tmp}/out'),
    'prep-words-0': (['prep', 'synthetic', '--words', '0', '--vocab-sizes', '300', '--out', '{tmp}/out'], 2, "--words must be >= 1, got 0", '{tmp}/out'),
    'prep-words-negative': (['prep', 'synthetic', '--words', '-5', '--vocab-sizes', '300', '--out', '{tmp}/out'], 2, "--words must be >= 1, got -5", '{tmp}/out'),
    'prep-no-vocab-sizes': (['prep', 'synthetic', '--vocab-sizes', '', '--out', '{tmp}/out'], 2, "--vocab-sizes: expected comma-separated integers", '{tmp}/out'),
    'prep-out-is-a-file': (['prep', 'synthetic', '--vocab-sizes', '300', '--out', '{tmp}/afile'], 2, "--out {tmp}/afile: is a file, not a folder", '{tmp}/afile/synthetic'),
    'init-out-is-a-file': (['init', '--model-config', 'tiny', '--vocab-size', '300', '--out', '{tmp}/afile'], 2, "--out {tmp}/afile: is a file, not a folder", '{tmp}/afile/config.json'),
    'text-cut-off': (['prep', 'synthetic', '--words', '2000', '--vocab-sizes', '400', '--out', '{tmp}/cut'], 2,
                     "cut/synthetic/text/train.jsonl, line ", '{tmp}/cut/synthetic/tokenizers/tokenizer_400.json'),
    'tokens-of-another-tokenizer': (TRAIN + ['--dataset', 'synthetic', '--data-dir', '{tmp}/foreign'], 2, "train-tok300.bin: token id 4000 in a vocabulary of 300", '{tmp}/out'),
    'train-unknown-dataset': (TRAIN + ['--dataset', 'foo', '--data-dir', '{tmp}/foreign'], 2, "unknown dataset 'foo'; known: babylm3, hybrid_3.7B, synthetic, tinystories", '{tmp}/out'),
    'train-batch-size-0': (TRAIN + ['--dataset', 'synthetic', '--data-dir', '{tmp}/cut'] + ['--batch-size', '0'], 2, "--batch-size must be an integer >= 1, got 0", '{tmp}/out'),
    'train-grad-accum-0': (TRAIN + ['--dataset', 'synthetic', '--data-dir', '{tmp}/cut'] + ['--grad-accum', '0'], 2, "--grad-accum must be an integer >= 1, got 0", '{tmp}/out'),
    'train-eval-every-0': (TRAIN + ['--dataset', 'synthetic', '--data-dir', '{tmp}/cut'] + ['--eval-every', '0'], 2, "--eval-every must be >= 1, got 0", '{tmp}/out'),
    'train-negative-lr': (TRAIN + ['--dataset', 'synthetic', '--data-dir', '{tmp}/cut'] + ['--lr', '-1'], 2, "--lr must be > 0, got -1.0", '{tmp}/out'),
    'train-device-banana': (TRAIN + ['--dataset', 'synthetic', '--data-dir', '{tmp}/cut'] + ['--device', 'banana'], 2, "--device: not a device: 'banana'", '{tmp}/out'),
    'train-cuda-on-cpu-torch': (TRAIN + ['--dataset', 'synthetic', '--data-dir', '{tmp}/cut'] + ['--device', 'cuda'], 2, "--device cuda: this PyTorch", '{tmp}/out'),
    'sweep-train-option-not-a-number': (['sweep', '{tmp}/ok.csv', '--train-option', 'lr=abc', '--out', '{tmp}/out'], 2,
                                        "--train-option: --lr: expected a number, got 'abc'", '{tmp}/out/runs'),
    'train-out-is-a-file': (TRAIN[:-1] + ['{tmp}/afile', '--dataset', 'synthetic', '--data-dir', '{tmp}/cut'], 2, "--out {tmp}/afile: is a file, not a folder", None),
    'analyze-out-is-a-file': (['analyze', '--results', '{tmp}/ok.csv', '--out', '{tmp}/afile'], 2, "--out {tmp}/afile: is a file, not a folder", None),
    'demo-out-is-a-file': (['demo', '--out', '{tmp}/afile'], 2, "--out {tmp}/afile: is a file, not a folder", None),
    'sweep-out-is-a-file': (['sweep', '{tmp}/ok.csv', '--out', '{tmp}/afile'], 2, "--out {tmp}/afile: is a file, not a folder", None),
    'blimp-results-is-a-file': (['blimp', '--run', '{tmp}/cut', '--results', '{tmp}/afile'], 2, "--results {tmp}/afile: is a file, not a folder", None),
    'sweep-max-parallel-0': (['sweep', '{tmp}/ok.csv', '--max-parallel', '0', '--out', '{tmp}/out'], 2, "--max-parallel must be >= 1, got 0", '{tmp}/out/runs'),
}

@pytest.mark.parametrize('args,status,message,out', MISTAKES.values(), ids=MISTAKES)
def test_user_mistakes_one_line_exit_2_nothing_written(tmp_path, args, status, message, out):
    bad_inputs(tmp_path)
    fill = lambda s: s.replace('{tmp}', str(tmp_path))
    r = run_cli(*map(fill, args))
    assert r.returncode == status, r.stderr
    assert fill(message) in r.stderr and 'Traceback' not in r.stderr, r.stderr
    said = [l for l in r.stderr.splitlines() if 'error:' in l or 'warning:' in l]
    assert len(said) == 1, r.stderr
    if out: assert not Path(fill(out)).exists()

# ---------------------------------------------------------------- --quiet / --verbose

@pytest.fixture(scope='module')
def scorable(tmp_path_factory):
    "A tiny random model and a one-task BLiMP-format folder it can be scored on."
    from lmeff.model import init_random
    d = tmp_path_factory.mktemp('verbosity')
    pairs = [("The cat runs.", "The cat run."), ("The dogs run.", "The dogs runs.")]
    (d/'pairs').mkdir()
    (d/'pairs'/'agreement.jsonl').write_text(''.join(json.dumps(dict(sentence_good=g, sentence_bad=b, UID='agreement', pairID=str(i))) + '\n'
                                                     for i, (g, b) in enumerate(pairs)))
    model = init_random('tiny', None, seed=0, out=d/'model', tokenizer=tiny_tokenizer(d/'tok.json', 300, [s for p in pairs for s in p] * 10), seq_length=64)
    return model, d/'pairs'

def test_every_subcommand_has_quiet_and_verbose():
    from lmeff.cli import make_parser
    sub = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        flags = {s for a in parser._actions for s in a.option_strings}
        assert {'-q', '--quiet', '-v', '--verbose'} <= flags, name
        assert parser.get_default('verbosity') == 'normal', name

def test_library_progress_bars_only_with_verbose(scorable, tmp_path):
    model, pairs = scorable
    args = ['blimp', '--model', model, '--blimp-dir', pairs, '--device', 'cpu']
    loud = run_cli(*args, '--out', tmp_path/'v.json', '--verbose')
    assert loud.returncode == 0 and 'Loading weights' in loud.stderr   # the bar the libraries draw, shown on request
    normal = run_cli(*args, '--out', tmp_path/'n.json')
    assert normal.returncode == 0 and 'Loading weights' not in normal.stderr and 'BLiMP accuracy' in normal.stdout
    quiet = run_cli(*args, '--out', tmp_path/'q.json', '-q')
    assert quiet.returncode == 0 and quiet.stderr == '' and quiet.stdout.count('\n') == 1 and 'BLiMP accuracy' in quiet.stdout
    bad = run_cli(*args, '--out', tmp_path/'q.json', '--batch-size', '0', '--quiet')
    assert bad.returncode == 2 and bad.stderr.startswith('lmeff blimp: error: --batch-size')   # quiet still says what went wrong

TORCH_LOG_PROBE = '''
import sys, torch
from lmeff.cli import set_verbosity
set_verbosity(sys.argv[1])   # as `lmeff COMMAND` does, after its stage module has imported torch
@torch.compile(backend='eager')
def f(x):
    x = x * 2
    print(end='')   # a graph break
    return x + 1
f(torch.ones(3)); f(torch.ones(3, dtype=torch.float64))   # a recompile
'''

@pytest.mark.parametrize('level', ['quiet', 'normal', 'verbose'])
def test_torch_logs_wins_over_the_verbosity(level):
    "TORCH_LOGS=recompiles,graph_breaks shows torch.compile's recompiles and graph breaks at every verbosity; without it they stay hidden."
    import os, subprocess, sys
    run = lambda env: subprocess.run([sys.executable, '-c', TORCH_LOG_PROBE, level], env=env, capture_output=True, text=True, timeout=300)
    shown = run({**os.environ, 'TORCH_LOGS': 'recompiles,graph_breaks'})
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert 'Recompiling function f' in shown.stderr and 'Graph break in user code' in shown.stderr
    hidden = run({k: v for k, v in os.environ.items() if k != 'TORCH_LOGS'})
    assert hidden.returncode == 0 and 'Recompiling function' not in hidden.stderr and 'Graph break in user code' not in hidden.stderr
