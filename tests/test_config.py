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

OK_ROW = 'tiny,synthetic,1,8,1,32,"[0.004]",512\n' # tiny's own batch: 16 x 1 x 32 = 512 tokens per step
CANNOT_RUN = [('anchors', 'tiny,synthetic,1,8,1,32,"[0.004,1e300]",512\n', '<= 1,000,000'),
              ('epochs', 'tiny,synthetic,99999999999999999999999,8,1,32,"[0.004]",512\n', '<= 10000'),
              ('tokenizer_vocab_size', 'tiny,synthetic,1,8,1,32,"[0.004]",５１２\n', 'ASCII'),
              ('anchors', 'tiny,synthetic,1,8,1,32,"[0.00000001]",512\n', 'one optimizer step'),
              ('seq_length', 'tiny,synthetic,1,8,1,99999999,"[0.004]",512\n', '<= 131072')]

@pytest.mark.parametrize('col,bad,msg', CANNOT_RUN)
def test_rows_that_cannot_run_are_refused_naming_row_and_column(tmp_path, col, bad, msg):
    e = error(tmp_path, HDR + OK_ROW + bad)
    assert (e.row, e.column) == (2, col) and msg in str(e), str(e)

@pytest.mark.parametrize('col,bad,msg', CANNOT_RUN)
def test_check_and_sweep_refuse_them_before_any_work(tmp_path, capsys, col, bad, msg):
    "`lmeff check` and `lmeff sweep` stop with status 2 and one line naming the row and column; the sweep writes nothing."
    from lmeff.cli import main
    p = write(tmp_path, HDR + OK_ROW + bad)
    for verb, extra in (('check', []), ('sweep', ['--out', str(tmp_path/'out'), '--data-dir', str(tmp_path/'data')])):
        assert main([verb, str(p), *extra]) == 2
        err = capsys.readouterr().err
        assert f"row 2 (line 3), column '{col}'" in err and msg in err and err.startswith(f'lmeff {verb}: error:') and 'Traceback' not in err, err
    assert not (tmp_path/'out').exists() and not (tmp_path/'data').exists()

def test_the_bounds_themselves_are_valid(tmp_path):
    runs = read_configs(write(tmp_path, HDR + 'tiny,synthetic,10000,8,1,131072,"[1000000]",65536\n' + 'tiny,synthetic,1,8,1,32,"[0.000512]",512\n'))
    assert (runs[0].epochs, runs[0].seq_length, runs[0].anchors, runs[1].anchors) == (10000, 131072, (1e6,), (0.000512,))
    assert error(tmp_path, HDR + 'tiny,synthetic,1,8,1,32,"[0.000511]",512\n').column == 'anchors'   # 511 tokens: less than a step of 512

def test_one_optimizer_step_is_the_batch_that_will_run(tmp_path):
    "The smallest anchor is one step of the batch the run uses: the size's default, the row's with use_row_batch, or a --batch-size."
    from lmeff.train_config import TrainConfig
    p = write(tmp_path, HDR + 'tiny,synthetic,1,1,1,32,"[0.0001]",512\n')           # 100 tokens: 3 steps of the row's 1 x 32
    assert read_configs(p, use_row_batch=True)[0].anchors == (0.0001,)
    with pytest.raises(ConfigError, match='one optimizer step'): read_configs(p)      # tiny's own batch: 512 tokens a step
    assert TrainConfig.make('tiny', 'synthetic', 'd', 512, seq_length=32, anchors=(0.0001,), batch_size=1).run.anchors == (0.0001,)
    with pytest.raises(LmeffError, match=r'--anchors: anchor 0.0001M \(100 tokens\) is less than one optimizer step \(512 tokens'):
        TrainConfig.make('tiny', 'synthetic', 'd', 512, seq_length=32, anchors=(0.0001,))
    rc = read_configs(p, use_row_batch=True)[0]
    with pytest.raises(LmeffError, match='one optimizer step'): TrainConfig.from_row(rc, 0, 'd', batch_size=8)

def test_check_and_sweep_help_give_the_valid_values(capsys):
    from lmeff.cli import main
    for verb in ('check', 'sweep'):
        with pytest.raises(SystemExit): main([verb, '--help'])
        text = ' '.join(capsys.readouterr().out.split())
        for rule in ('epochs: an integer 1..10000', 'seq_length: an integer 8..131072', 'tokenizer_vocab_size: an integer 256..65536',
                     'at most 1,000,000', 'one optimizer step', 'ASCII digits'):
            assert rule in text, (verb, rule)
