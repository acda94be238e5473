import pytest
from lmeff.config import read_configs, ConfigError, LmeffError, parse_anchors, COLUMNS, describe, register_dataset

HDR = ','.join(COLUMNS) + '\n'
GOOD = '20m,tinystories,50,64,1,256,"[25,50,75,100]",8000\n'

def write(tmp_path, text, name='configs.csv'):
    p = tmp_path/name; p.write_text(text); return p

def error(tmp_path, text):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e: read_configs(p)
    assert str(p) in str(e.value)
    return e.value

def test_valid_rows(tmp_path):
    runs = read_configs(write(tmp_path, HDR + GOOD + 'tiny,synthetic,1,8,2,64,[-1],512\n60m,babylm3,10,32,4,128,"[0.1,0.05]",16000\n'))
    assert [r.row for r in runs] == [1, 2, 3]
    assert runs[0].anchors == (25.0, 50.0, 75.0, 100.0) and not runs[0].full_run
    assert runs[1].full_run and runs[1].anchors == (-1.0,)
    assert runs[2].anchors == (0.05, 0.1)
    assert isinstance(runs[0].epochs, int) and isinstance(runs[0].tokenizer_vocab_size, int)

def test_batch_defaults_unless_opted_in(tmp_path):
    p = write(tmp_path, HDR + '60m,tinystories,50,32,4,256,[25],8000\n')
    r = read_configs(p)[0]
    assert (r.effective_batch_size, r.effective_grad_accum, r.batch_source) == (128, 2, 'size-default')
    assert r.tokens_per_step() == 128*2*256 and r.tokens_per_step(world_size=4) == 128*2*256*4
    r = read_configs(p, use_row_batch=True)[0]
    assert (r.effective_batch_size, r.effective_grad_accum, r.batch_source) == (32, 4, 'row')
    assert 'size-default' not in describe(r) and '32x4 (row)' in describe(r)

def test_unknown_model_size(tmp_path):
    e = error(tmp_path, HDR + GOOD + '7b,tinystories,50,64,1,256,[25],8000\n')
    assert (e.row, e.column) == (2, 'model_config') and "'7b'" in str(e) and 'row 2 (line 3)' in str(e)

def test_unknown_dataset(tmp_path):
    e = error(tmp_path, HDR + '20m,tinystorys,50,64,1,256,[25],8000\n')
    assert (e.row, e.column) == (1, 'dataset')

def test_registered_dataset_is_valid(tmp_path):
    register_dataset('my_corpus')
    assert read_configs(write(tmp_path, HDR + '20m,my_corpus,50,64,1,256,[25],8000\n'))[0].dataset == 'my_corpus'

@pytest.mark.parametrize('anchors', ['"[25,50"', 'abc', '[]', '"[-1,25]"', '[0]', '"[25,25]"', '"{""a"": 1}"', '"[""25""]"'])
def test_bad_anchors(tmp_path, anchors):
    e = error(tmp_path, HDR + f'20m,tinystories,50,64,1,256,{anchors},8000\n')
    assert (e.row, e.column) == (1, 'anchors')

@pytest.mark.parametrize('col,value', [('epochs', 'abc'), ('epochs', '2.5'), ('batch_size', 'x'), ('grad_accum', '0'),
                                       ('seq_length', '4'), ('tokenizer_vocab_size', 'big'), ('epochs', '')])
def test_non_numeric_or_out_of_range(tmp_path, col, value):
    vals = dict(zip(COLUMNS, ['20m', 'tinystories', '50', '64', '1', '256', '[25]', '8000']))
    vals[col] = value
    e = error(tmp_path, HDR + ','.join(vals.values()) + '\n')
    assert (e.row, e.column) == (1, col)

def test_vocab_too_small_and_too_large(tmp_path):
    e = error(tmp_path, HDR + '20m,tinystories,50,64,1,256,[25],255\n')
    assert e.column == 'tokenizer_vocab_size' and '>= 256' in str(e)
    e = error(tmp_path, HDR + '20m,tinystories,50,64,1,256,[25],70000\n')
    assert e.column == 'tokenizer_vocab_size' and 'uint16' in str(e)

def test_missing_column(tmp_path):
    e = error(tmp_path, HDR.replace(',seq_length', '') + '20m,tinystories,50,64,1,"[25]",8000\n')
    assert e.column == 'seq_length' and 'missing column' in str(e)

def test_empty_file_and_header_only(tmp_path):
    assert 'empty' in str(error(tmp_path, ''))
    assert 'no data rows' in str(error(tmp_path, HDR))

def test_duplicate_rows(tmp_path):
    e = error(tmp_path, HDR + GOOD + 'tiny,synthetic,1,8,2,64,[-1],512\n' + GOOD)
    assert e.row == 3 and 'duplicate of row 1' in str(e)

def test_too_many_values_names_the_row(tmp_path):
    e = error(tmp_path, HDR + '20m,tinystories,50,64,1,256,[25,50],8000\n')
    assert e.row == 1 and 'quote anchors' in str(e)

def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match='no such file'): read_configs(tmp_path/'nope.csv')

def test_errors_are_user_errors():
    assert issubclass(ConfigError, LmeffError)

def test_repo_configs_csv_is_valid():
    from pathlib import Path
    runs = read_configs(Path(__file__).resolve().parents[1]/'configs.csv')
    assert runs and all(r.model_config in ('20m', '60m', '180m') for r in runs)

def test_column_named_twice_is_an_error(tmp_path):
    e = error(tmp_path, HDR.strip() + ',model_config\n' + GOOD.strip() + ',60m\n')   # csv would keep the later value
    assert (e.row, e.column) == (0, 'model_config') and 'twice' in str(e)
    e = error(tmp_path, HDR.replace('epochs', ' epochs ').strip() + ',epochs\n' + GOOD.strip() + ',7\n')
    assert e.column == 'epochs'

def test_unknown_column_is_a_warning_naming_it(tmp_path, capsys):
    runs = read_configs(write(tmp_path, HDR.strip() + ',notes,\n' + GOOD.strip() + ',first try,\n'))
    assert runs[0].model_config == '20m'
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith('warning: ') and 'notes' in err[0] and '#10 (unnamed)' in err[0]
    read_configs(write(tmp_path, HDR + GOOD))
    assert capsys.readouterr().err == ''
