"Downstream fine-tuning: every snapshot of a run on real SST-2 and RTE, deterministic, resumable, clear errors, and early prediction of a downstream score."
import json, shutil
import numpy as np, pandas as pd, pytest
from lmeff.config import LmeffError
from lmeff.model import init_random
from lmeff.store import results_dir, write_hashes, write_json, RESULTS_FILE
from lmeff.downstream import (FinetuneConfig, GLUE_TASKS, encode_examples, finetune_run, glue_results, load_split, load_task, results_file,
                              split_file, TaskData)
from lmeff.report import analyze, load_downstream
from lmeff.cli import main
from conftest import SHARED_DATA
from helpers import tiny_tokenizer

CAPS = FinetuneConfig(epochs=1, batch_size=16, max_train_examples=64, max_eval_examples=48)   # seconds on a CPU

@pytest.fixture(scope='module')
def glue():
    if not (SHARED_DATA/'glue').is_dir(): pytest.skip(f"real data folder {SHARED_DATA} not present (set LMEFF_SHARED_DATA)")
    return SHARED_DATA/'glue'

@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory, glue):
    "A tiny random init whose BPE was trained on SST-2 and RTE sentences."
    d = tmp_path_factory.mktemp('model')
    texts = load_split('sst2', 'train', glue)[0].sentence[:3000].tolist() + load_split('rte', 'train', glue)[0].sentence1.tolist()
    return init_random('tiny', None, seed=0, out=d/'model', tokenizer=tiny_tokenizer(d/'tok.json', 1000, texts), seq_length=128)

def make_run(root, model_dir, seed=0, snapshots=(('milestone-0.05M', '0.05', 50_000), ('final', 'final', 120_000))):
    "A run folder whose snapshots are copies of `model_dir`, as the training stage lays them out."
    run = root/'models'/'synthetic'/'llama-tiny'/f'tokenizer-1000-seed-{seed}'
    for name, label, tokens in snapshots:
        shutil.copytree(model_dir, run/name)
        (run/name/'milestone_meta.json').write_text(json.dumps(dict(milestone=label, tokens_seen=tokens, dataset='synthetic', model_config='tiny',
                                                                    seed=seed, vocab_size=1000)))
        (run/name/'hashes.json').unlink(missing_ok=True); write_hashes(run/name)
    return run

def where(results, label, task, seed=0):
    return results_dir(results, dict(dataset='synthetic', model_config='tiny', seed=seed, vocab_size=1000, milestone=label), 'glue')/results_file(task)

# --- data ------------------------------------------------------------------------------------------

def test_real_glue_splits(glue):
    train, src = load_split('sst2', 'train', glue)
    assert len(train) == 67_349 and list(train.columns) == ['sentence', 'label'] and src.endswith('sst2/train.tsv')
    rte, src = load_split('rte', 'validation', glue)
    assert len(rte) == 139 and src.endswith('rte-subset/dev.tsv') and set(rte.label) == {0, 1}   # entailment / not_entailment -> ids
    raw = pd.read_csv(glue/'rte-subset'/'dev.tsv', sep='\t', quoting=3)
    assert (rte.label == (raw.label == 'not_entailment')).all()
    a, b = load_task('sst2', glue, CAPS), load_task('sst2', glue, CAPS)
    assert len(a.train) == 64 and len(a.valid) == 48 and a.n_valid == 872 and a.sha256 == b.sha256
    assert a.sha256 != load_task('sst2', glue, FinetuneConfig(max_train_examples=64, max_eval_examples=48, seed=13)).sha256   # another seeded subset

def test_jsonl_layout_and_templates(tmp_path, glue):
    "BabyLM's layout ({task}.train.jsonl beside each other) reads the same examples as GLUE's TSV."
    rte = load_split('rte', 'train', glue)[0]
    names = np.array(GLUE_TASKS['rte'].labels)
    rows = [dict(sentence1=r.sentence1, sentence2=r.sentence2, label=str(names[r.label]), idx=i) for i, r in enumerate(rte.itertuples())]
    for split in ('train', 'valid'): (tmp_path/f'rte.{split}.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    pd.testing.assert_frame_equal(load_split('rte', 'validation', tmp_path)[0], rte)
    (tmp_path/'boolq.train.jsonl').write_text(json.dumps(dict(question='is it', passage='it is', label=True)) + '\n')
    assert load_split('boolq', 'train', tmp_path)[0].label.tolist() == [1]

def test_encoding_truncates_longest_text_first(tiny_model, glue):
    rte = load_split('rte', 'train', glue)[0].head(50)
    ids = encode_examples(tiny_model, 'rte', rte, 32)
    assert max(map(len, ids)) == 32 and all(x[0] == 1 and x[-1] == 2 and x.count(2) == 2 for x in ids)

# --- errors ----------------------------------------------------------------------------------------

def test_errors_name_task_file_and_column(tmp_path, glue):
    with pytest.raises(LmeffError, match=r"unknown task 'sst3'; known: boolq, cola, mnli"): load_task('sst3', glue)
    (tmp_path/'SST-2').mkdir(); shutil.copy(glue/'sst2'/'dev.tsv', tmp_path/'SST-2'/'dev.tsv')
    with pytest.raises(LmeffError, match=r"no train split of task 'sst2' \(looked for sst2.train.jsonl"): load_task('sst2', tmp_path)
    with pytest.raises(LmeffError, match=r"no validation split of task 'rte'"): split_file(tmp_path, 'rte', 'validation')
    (tmp_path/'SST-2'/'train.tsv').write_text('sentence\tlabel\ngood\t1\nbad\t2\n')
    with pytest.raises(LmeffError, match=r"SST-2/train.tsv, row 2, column 'label': '2' is not a label of task sst2 \(negative, positive, or 0-1\)"):
        load_task('sst2', tmp_path)
    (tmp_path/'SST-2'/'train.tsv').write_text('text\tlabel\ngood\t1\n')
    with pytest.raises(LmeffError, match=r"SST-2/train.tsv: no column 'sentence' for task sst2 \(found text, label\)"): load_task('sst2', tmp_path)
    (tmp_path/'rte.train.jsonl').write_text('{"sentence1": "a", "sentence2": "b", "label": "neutral"}\n')
    with pytest.raises(LmeffError, match=r"rte.train.jsonl, row 1, column 'label': 'neutral' is not a label of task rte"): load_split('rte', 'train', tmp_path)

def test_cli_errors(tmp_path, glue, tiny_model, capsys):
    run = make_run(tmp_path, tiny_model)
    for args, msg in [(['--tasks', 'sst2,nope'], "unknown task 'nope'"),
                      (['--tasks', 'sst2', '--data-dir', tmp_path/'nothing'], "nothing: no such GLUE data folder"),
                      (['--tasks', 'sst2', '--max-train-examples', '0'], "max_train_examples must be >= 1"),
                      (['--tasks', 'sst2', '--out', tmp_path/'x'], "--revision and --out apply to --model")]:
        assert main(['finetune', '--run', str(run), '--results', str(tmp_path/'r'), *map(str, args)]) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path/'r').exists()

# --- runs ------------------------------------------------------------------------------------------

def test_run_on_sst2_and_rte_skip_determinism_and_staleness(tmp_path, glue, tiny_model, capsys):
    run, results = make_run(tmp_path, tiny_model), tmp_path/'results'
    done = finetune_run(run, 'sst2,rte', results, glue, CAPS, device='cpu', progress=False)
    assert [(s['milestone'], s['task'], s['status']) for s in done] == [('0.05', 'sst2', 'scored'), ('0.05', 'rte', 'scored'),
                                                                        ('final', 'sst2', 'scored'), ('final', 'rte', 'scored')]
    res = json.loads(where(results, 'final', 'sst2').read_text())
    r = res['results']['sst2']
    assert res['primary_metric'] == 'acc' and 0 <= r['acc,none'] <= 1 and {'acc_stderr,none', 'f1,none', 'mcc,none'} <= set(r)
    cfg = res['config']
    assert cfg['finetune_seed'] == 12 and cfg['hparams'] == CAPS.hparams() and cfg['hparams']['learning_rate'] == 5e-5 and cfg['n_train'] == 64
    assert cfg['milestone'] == 'final' and cfg['tokens_seen'] == 120_000 and res['n-samples']['sst2'] == {'original': 872, 'effective': 48}
    assert cfg['data']['validation'].endswith('sst2/dev.tsv') and 'babylm' in cfg['hparams_source']
    # the two snapshots are the same weights, fine-tuned the same way: the same scores (deterministic on a CPU)
    same = {s['task']: s['score'] for s in done if s['milestone'] == 'final'}
    assert same == {s['task']: s['score'] for s in done if s['milestone'] == '0.05'}
    preds_first = json.loads(where(results, '0.05', 'rte').read_text())['results']['rte']
    # rerun: everything is skipped, nothing rewritten
    stamp = where(results, 'final', 'sst2').stat().st_mtime_ns
    assert [s['status'] for s in finetune_run(run, ['sst2', 'rte'], results, glue, CAPS, device='cpu', progress=False)] == ['skipped'] * 4
    assert where(results, 'final', 'sst2').stat().st_mtime_ns == stamp
    # a missing file is made again, with the same numbers
    where(results, '0.05', 'rte').unlink()
    again = finetune_run(run, 'rte', results, glue, CAPS, device='cpu', progress=False)
    assert [s['status'] for s in again] == ['scored', 'skipped']
    assert {k: v for k, v in json.loads(where(results, '0.05', 'rte').read_text())['results']['rte'].items()} == preds_first
    # other hyper-parameters: redone, and the command line says why
    rc = main(['finetune', '--run', str(run), '--tasks', 'rte', '--data-dir', str(glue), '--results', str(results), '--epochs', '1',
               '--batch-size', '16', '--max-train-examples', '64', '--max-eval-examples', '48', '--learning-rate', '1e-4', '--device', 'cpu'])
    out = capsys.readouterr().out
    assert rc == 0 and out.count('redone: the results there were made from other hyper-parameters') == 2, out
    assert json.loads(where(results, 'final', 'rte').read_text())['config']['hparams']['learning_rate'] == 1e-4

def test_one_model_cli(tmp_path, glue, tiny_model, capsys):
    rc = main(['finetune', '--model', str(tiny_model), '--tasks', 'sst2', '--data-dir', str(glue), '--out', str(tmp_path/'one'),
               '--epochs', '1', '--max-train-examples', '32', '--max-eval-examples', '16', '--device', 'cpu'])
    assert rc == 0 and 'sst2: acc ' in capsys.readouterr().out
    assert json.loads((tmp_path/'one'/'sst2_results.json').read_text())['n-samples']['sst2']['effective'] == 16

# --- analysis --------------------------------------------------------------------------------------

def fake_results(root, runs=4, milestones=('25', '50', 'final')):
    "Downstream results (as `glue_results` writes them) and BLiMP results of `runs` runs: later milestones agree with the end."
    rng = np.random.default_rng(0)
    valid = pd.DataFrame(dict(sentence=['x'] * 100, label=[0, 1] * 50))
    for seed in range(runs):
        for i, m in enumerate(milestones):
            meta = dict(dataset='synthetic', model_config='tiny', seed=seed, vocab_size=1000, milestone=m, tokens_seen=(i + 1) * 1000)
            for task, quality in (('sst2', seed), ('cola', runs - seed)):   # cola ranks the runs the other way
                right = min(100, (50 if task == 'sst2' else 38) + 5 * quality + (i if m != 'final' else 3) + int(rng.integers(0, 2)))
                preds = np.where(np.arange(100) < right, valid.label, 1 - valid.label)
                d = TaskData(task, valid, valid, valid, 100, {}, '')
                write_json(results_dir(root, meta, 'glue')/results_file(task), glue_results(d, preds, meta))
            write_json(results_dir(root, meta)/RESULTS_FILE, {'results': {'blimp': {'acc,none': 0.6 + seed / 100 + i / 1000}}, 'config': meta})

def test_analyze_a_downstream_metric(tmp_path):
    fake_results(tmp_path/'results')
    r = analyze(tmp_path/'results', tmp_path/'sst2', n_boot=20, png=False, progress=False, metric='sst2')
    assert r['results'].metric == 'sst2' and len(r['results'].overall) == 12
    g = r['early_prediction'].query("scope == 'global'")
    assert g.milestone.tolist() == ['25', '50'] and (g.spearman > 0.9).all()
    md = (tmp_path/'sst2'/'summary.md').read_text()
    assert md.startswith('# Early prediction of the final sst2 accuracy') and '## BLiMP accuracy and sst2 accuracy' in md
    cross = pd.read_csv(tmp_path/'sst2'/'blimp_vs_sst2.csv', dtype={'milestone': str})
    assert cross.milestone.tolist() == ['25', '50', 'final'] and (cross.spearman > 0.9).all() and (cross.n_runs == 4).all()
    assert (tmp_path/'sst2'/'sst2_global_spearman.csv').is_file() and not (tmp_path/'sst2'/'blimp_global_spearman.csv').exists()
    # CoLA's Matthews correlation can be negative; BLiMP ranks the runs the other way round
    cola = analyze(tmp_path/'results', tmp_path/'cola', n_boot=0, png=False, progress=False, metric='cola')
    assert (cola['results'].overall.acc < 0).any() and (cola['blimp_correlation'].spearman < -0.9).all()
    # the mean over tasks, with the tasks as the task table
    mean = load_downstream(tmp_path/'results')
    assert mean.metric == 'downstream' and sorted(mean.tasks.task.unique()) == ['cola', 'sst2']
    # BLiMP, the default, is unchanged
    assert analyze(tmp_path/'results', tmp_path/'blimp', n_boot=0, png=False, progress=False)['results'].metric == 'blimp'
    assert (tmp_path/'blimp'/'blimp_global_spearman.csv').is_file()

def test_analyze_cli_metric(tmp_path, capsys):
    fake_results(tmp_path/'results')
    assert main(['analyze', '--results', str(tmp_path/'results'), '--out', str(tmp_path/'a'), '--metric', 'downstream', '--bootstrap', '0', '--no-png']) == 0
    assert '# Early prediction of the final downstream score (mean over cola, sst2)' in (tmp_path/'a'/'summary.md').read_text()
    assert main(['analyze', '--results', str(tmp_path/'results'), '--out', str(tmp_path/'b'), '--metric', 'mrpc', '--bootstrap', '0', '--no-png']) == 2
    assert 'no mrpc results (there are: cola, sst2)' in capsys.readouterr().err
    assert main(['analyze', '--results', str(tmp_path/'results'), '--out', str(tmp_path/'b'), '--metric', 'sst3']) == 2
    assert "unknown task 'sst3'" in capsys.readouterr().err

# --- the demo --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_demo_with_a_small_sst2_subset(tmp_path, glue):
    "The demo with --glue-dir: every snapshot of every run fine-tuned on a capped SST-2, and the downstream mean analysed beside BLiMP."
    from lmeff.demo import demo
    s = demo(tmp_path/'demo', seeds=(0, 1), sizes=('tiny',), vocab_sizes=(300,), anchors=(0.01, 0.04), words=40_000, n_pairs=40, progress=False,
             glue_dir=glue, finetune_options={'max_train_examples': 64, 'max_eval_examples': 48, 'epochs': 1})
    assert (s.status == 'ok').all(), s[['run_id', 'status', 'reason']]
    files = sorted((tmp_path/'demo'/'results-synthetic'/'glue').rglob('sst2_results.json'))
    assert len(files) == 6   # 2 seeds x (2 anchors + final)
    assert all(json.loads(f.read_text())['n-samples']['sst2']['effective'] == 48 for f in files)
    assert s.attrs['analysis']['synthetic-downstream'] == str(tmp_path/'demo'/'analysis-synthetic-downstream')
    md = (tmp_path/'demo'/'analysis-synthetic-downstream'/'summary.md').read_text()
    assert 'downstream score (mean over sst2)' in md and '## BLiMP accuracy and downstream score' in md
