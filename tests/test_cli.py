import json
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
