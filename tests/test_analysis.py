"Early-prediction analysis (lmeff.analysis, lmeff.figures, lmeff.report): hand-computable statistics, the gatherer, figures, the command line, the published tables."
import hashlib, json, math, urllib.error
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from lmeff.config import LmeffError
from lmeff.analysis import (OVERALL_COLUMNS, TASK_COLUMNS, RUN, Results, PairScores, bootstrap_runs, check_table, compared_milestones,
                            correlations, decision_accuracy, early_prediction, earliest_milestone, end_point, find_copies, gather,
                            load_results, missing_snapshots, pair_bootstrap_acc, read_table, reference_tables, spearman_rows, write_table)
from lmeff.blimp_tasks import BLIMP_PHENOMENON, BLIMP_TASKS, PHENOMENA, phenomenon
from lmeff.figures import plot_correlations, plot_learning_curves, plot_phenomena, plot_tasks, save_chart
import lmeff.report
from lmeff.report import analyze, fetch_reference, reference_cache, reference_results, summary_markdown
from lmeff.store import RESULTS_FILE, PAIRS_FILE, results_dir
from lmeff.cli import main
from conftest import run_cli

def table(rows, columns=OVERALL_COLUMNS): return check_table(pd.DataFrame(rows, columns=columns), 'test.csv')

def runs_table(accs:dict, milestones=('25', '50', 'final'), dataset='d', size='20m', vocab=8000):
    "accs: seed -> accuracies by milestone (None: missing)."
    return table([(dataset, size, m, vocab, s, a) for s, row in accs.items() for m, a in zip(milestones, row) if a is not None])

def write_snapshot(root, dataset, size, seed, vocab, milestone, acc, tasks=None, tokens=None, pairs=None, folder=None, anchor=None):
    "A `blimp_results.json` (and per-pair scores) where the BLiMP stage puts it, or in `folder` under the seed's folder."
    meta = dict(dataset=dataset, model_config=size, seed=seed, vocab_size=vocab, milestone=milestone)
    d = results_dir(root, meta) if folder is None else results_dir(root, meta).parent/folder
    d.mkdir(parents=True, exist_ok=True)
    res = {'blimp': {'acc,none': acc, 'acc_stderr,none': 0.01, 'alias': 'blimp'}}
    res.update({f'blimp_{k}': {'acc,none': v, 'acc_stderr,none': 0.01, 'alias': f' - blimp_{k}'} for k, v in (tasks or {}).items()})
    cfg = {'dataset': dataset, 'model_config': size, 'seed': seed, 'vocab_size': vocab, 'milestone': milestone, 'tokens_seen': tokens, 'anchor': anchor}
    (d/RESULTS_FILE).write_text(json.dumps({'results': res, 'groups': {'blimp': res['blimp']}, 'config': cfg}))
    if pairs is not None:
        task, good, bad = pairs
        np.savez(d/PAIRS_FILE, task=np.array(task), pairID=np.array([str(i) for i in range(len(task))]),
                 logp_good=np.asarray(good, float), logp_bad=np.asarray(bad, float))
    return d

# ---------------------------------------------------------------- one milestone, by hand

def test_perfect_agreement():
    c = correlations([.5, .6, .7, .8], [.6, .65, .7, .9])
    assert (c['spearman'], c['kendall_tau_b']) == (pytest.approx(1), pytest.approx(1)) and (c['decision_accuracy'], c['n_runs'], c['note']) == (1.0, 4, '')
    assert c['r2'] == pytest.approx(stats.pearsonr([.5, .6, .7, .8], [.6, .65, .7, .9])[0]**2)

def test_reversed_order_and_r2_is_squared_pearson():
    c = correlations([.1, .2, .3, .4], [.4, .3, .2, .1])
    assert c['spearman'] == pytest.approx(-1) and c['kendall_tau_b'] == pytest.approx(-1) and c['r2'] == pytest.approx(1) and c['decision_accuracy'] == 0

def test_ties_get_average_ranks():
    # ranks (1.5, 1.5, 3, 4) vs (1, 2, 3, 4): rho = 4.5 / sqrt(4.5 * 5); tau-b = (5 - 0) / sqrt(5 * 6); the tied pair counts 1/2
    c = correlations([.5, .5, .7, .8], [.6, .65, .7, .9])
    assert c['spearman'] == pytest.approx(math.sqrt(0.9))
    assert c['kendall_tau_b'] == pytest.approx(5/math.sqrt(30))
    assert c['decision_accuracy'] == pytest.approx(5.5/6)

def test_decision_accuracy_leaves_out_pairs_tied_at_the_end():
    # pairs: (0,1) tied at the end -> out; (0,2) milestone says 0 > 2, end says 2 > 0 -> wrong; (1,2) right
    assert decision_accuracy([.9, .1, .5], [.7, .7, .8]) == 0.5
    assert math.isnan(decision_accuracy([.1, .2], [.5, .5]))

def test_decision_accuracy_is_half_of_one_plus_tau_without_ties():
    rng = np.random.default_rng(0)
    x, y = rng.random(12), rng.random(12)
    assert decision_accuracy(x, y) == pytest.approx((1 + stats.kendalltau(x, y).statistic) / 2)

def test_single_run_and_no_runs():
    for x, y in [([.6], [.7]), ([], [])]:
        c = correlations(x, y)
        assert all(math.isnan(c[k]) for k in ('spearman', 'r2', 'kendall_tau_b', 'decision_accuracy'))
        assert 'no correlation' in c['note']

def test_two_runs():
    c = correlations([.5, .6], [.7, .8])
    assert c['spearman'] == pytest.approx(1) and c['r2'] == pytest.approx(1) and c['decision_accuracy'] == 1

def test_constant_accuracies_give_nan_with_a_note():
    c = correlations([.6, .6, .6], [.7, .8, .9])
    assert math.isnan(c['spearman']) and math.isnan(c['r2']) and math.isnan(c['kendall_tau_b'])
    assert 'same accuracy at this milestone' in c['note'] and c['decision_accuracy'] == 0.5
    c = correlations([.6, .7, .8], [.9, .9, .9])
    assert math.isnan(c['spearman']) and 'same accuracy at the end point' in c['note'] and math.isnan(c['decision_accuracy'])

# ---------------------------------------------------------------- the reference tables

def test_reference_tables_by_hand():
    # Finals .4 .3 .2 .1 for seeds 0-3. At 25: the exact reverse (rho -1, R2 1). At 50: ranks (1,3,2,4) vs (4,3,2,1),
    # d^2 = 18, rho = 1 - 6*18/(4*15) = -0.8. At 100 seed 3 is missing: 3 runs, reversed. Seed 4 has no final: it counts nowhere.
    # Milestones sort numerically (100 after 50).
    t = runs_table({0: [.1, .1, .1, .4], 1: [.2, .3, .2, .3], 2: [.3, .2, .3, .2], 3: [.4, .4, None, .1], 4: [.9, .9, .9, None]},
                   milestones=('25', '50', '100', 'final'))
    sp, r2 = reference_tables(t)
    assert list(sp.columns) == ['milestone', 'global'] and list(r2.columns) == ['milestone', 'global']
    assert list(sp.milestone) == ['25', '50', '100']
    assert sp['global'].tolist() == pytest.approx([-1, -0.8, -1])
    assert r2['global'][0] == pytest.approx(1)
    assert r2['global'][1] == pytest.approx(stats.pearsonr([.1, .3, .2, .4], [.4, .3, .2, .1])[0]**2)
    ep = early_prediction(t, by=(), n_boot=0, progress=False)
    assert ep.n_runs.tolist() == [4, 4, 3]

def test_reference_tables_degenerate():
    sp, r2 = reference_tables(runs_table({0: [.5, .6, .7]}))   # a single run
    assert sp['global'].isna().all() and r2['global'].isna().all()
    sp, _ = reference_tables(runs_table({0: [.5, .6, .7], 1: [.5, .65, .8]}))   # constant at 25
    assert math.isnan(sp['global'][0]) and sp['global'][1] == pytest.approx(1)

def test_missing_snapshots():
    t = runs_table({0: [.5, .6, .7], 1: [.5, None, .8], 2: [.4, .5, None]})
    m = missing_snapshots(t)
    assert m[['seed', 'milestone']].values.tolist() == [[1, '50'], [2, 'final']]

# ---------------------------------------------------------------- all milestones, groups, bootstrap

def two_datasets():
    a = runs_table({0: [.50, .60, .70], 1: [.55, .65, .75], 2: [.60, .62, .72]}, dataset='a')
    b = runs_table({0: [.52, .58, .66], 1: [.53, .59, .68]}, dataset='b', size='60m')
    return pd.concat([a, b], ignore_index=True)

def test_early_prediction_scopes_and_values():
    t = two_datasets()
    ep = early_prediction(t, n_boot=200, progress=False)
    assert ep[['scope', 'group']].drop_duplicates().values.tolist() == [
        ['global', 'all'], ['dataset', 'a'], ['dataset', 'b'], ['model_size', '20m'], ['model_size', '60m']]
    g = ep[ep.scope == 'global'].set_index('milestone')
    x25 = [.50, .55, .60, .52, .53]; y = [.70, .75, .72, .66, .68]
    assert g.loc['25', 'spearman'] == pytest.approx(stats.spearmanr(x25, y)[0])
    assert g.loc['25', 'kendall_tau_b'] == pytest.approx(stats.kendalltau(x25, y)[0])
    assert g.loc['50', 'n_runs'] == 5 and g.loc['50', 'budget_share'] == 1.0 and g.loc['25', 'budget_share'] == 0.5
    b = ep[ep.group == 'b'].set_index('milestone')
    assert b.loc['25', 'spearman'] == pytest.approx(1) and b.loc['50', 'decision_accuracy'] == 1
    assert (ep.spearman_ci_low <= ep.spearman + 1e-12).all() and (ep.spearman <= ep.spearman_ci_high + 1e-12).all()

def test_bootstrap_is_deterministic_and_seeded():
    rng = np.random.default_rng(0)
    t = pd.concat([runs_table({s: rng.random(3).tolist() for s in range(12)}, dataset=d) for d in ('a', 'b')], ignore_index=True)
    a = early_prediction(t, n_boot=100, seed=1, progress=False)
    b = early_prediction(t, n_boot=100, seed=1, progress=False)
    c = early_prediction(t, n_boot=100, seed=2, progress=False)
    pd.testing.assert_frame_equal(a, b)
    assert not a.spearman_ci_low.equals(c.spearman_ci_low)
    # a statistic's interval does not depend on what else is computed
    alone = early_prediction(t, by=(), n_boot=100, seed=1, progress=False)
    pd.testing.assert_frame_equal(alone, a[a.scope == 'global'].reset_index(drop=True))

def test_bootstrap_runs_interval():
    rng = np.random.default_rng(3)
    x = rng.random(30); y = x + rng.normal(0, .1, 30)
    lo, hi = bootstrap_runs(x, y, 500, np.random.default_rng(0))
    rho = stats.spearmanr(x, y)[0]
    assert -1 <= lo < rho < hi <= 1
    assert all(math.isnan(v) for v in bootstrap_runs([.5], [.6], 100))
    assert all(math.isnan(v) for v in bootstrap_runs([.5, .5, .5], [.6, .7, .8], 100))   # constant: no rho in any resample

def test_spearman_rows_matches_scipy():
    rng = np.random.default_rng(0)
    X, Y = rng.integers(0, 4, (20, 9)).astype(float), rng.random((20, 9))   # many ties in X
    r = spearman_rows(X, Y)
    for i in range(20):
        want = stats.spearmanr(X[i], Y[i]).statistic if np.ptp(X[i]) else math.nan
        assert (math.isnan(r[i]) and math.isnan(want)) or r[i] == pytest.approx(want)

def test_constant_milestone_in_early_prediction_has_a_note():
    t = runs_table({0: [.5, .6, .7], 1: [.5, .7, .8], 2: [.5, .65, .75]})
    ep = early_prediction(t, by=(), n_boot=50, progress=False).set_index('milestone')
    assert math.isnan(ep.loc['25', 'spearman']) and 'same accuracy' in ep.loc['25', 'note']
    assert math.isnan(ep.loc['25', 'spearman_ci_low']) and ep.loc['50', 'spearman'] == pytest.approx(1)

def test_earliest_milestone():
    ep = pd.DataFrame({'scope': 'global', 'group': 'all', 'milestone': ['25', '50', '100', '200'], 'tokens_m': [25., 50, 100, 200],
                       'spearman': [.5, .92, .88, .95], 'spearman_ci_low': [.2, .8, .7, .91], 'budget_share': [.125, .25, .5, 1.]})
    e = earliest_milestone(ep).set_index('criterion')
    assert e.loc['spearman', 'milestone'] == '50' and e.loc['spearman', 'compute_saving'] == .75
    assert not e.loc['spearman', 'stays_above'] and e.loc['spearman', 'stays_from'] == '200'
    assert e.loc['spearman_ci_low', 'milestone'] == '200' and e.loc['spearman_ci_low', 'stays_above']
    assert earliest_milestone(ep, 0.8).set_index('criterion').loc['spearman', 'stays_from'] == '50'
    none = earliest_milestone(ep, 0.99)
    assert none.milestone.isna().all() and none.stays_from.isna().all()

def test_budget_from_final_tokens():
    t = runs_table({0: [.5, .6, .7], 1: [.55, .65, .75]})
    res = Results(t, None, missing_snapshots(t), 'x', final_tokens=pd.DataFrame({**{k: [t[k][0]] * 2 for k in ('dataset', 'model_size', 'vocab_size')},
                                                                               'seed': [0, 1], 'tokens_seen': [90e6, 110e6]}))
    ep = early_prediction(res, by=(), n_boot=0, progress=False)
    assert ep.budget_m.tolist() == [100, 100] and ep.budget_share.tolist() == [.25, .5]
    assert ep.spearman_ci_low.isna().all()

# ---------------------------------------------------------------- tables from CSV: validation

def write_csv(path, rows, columns=OVERALL_COLUMNS):
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False); return path

def test_read_table_ok(tmp_path):
    p = write_csv(tmp_path/'o.csv', [('d', '20m', '1000', 8000, 0, .6), ('d', '20m', 'final', 8000, 0, .7), ('d', '20m', '250.0', 8000, 0, .5)])
    t = read_table(p)
    assert t.milestone.tolist() == ['250', '1000', 'final'] and t.vocab_size.dtype == np.int64

@pytest.mark.parametrize('rows,columns,msg', [
    ([('d', '20m', 'final', 8000, 0)], OVERALL_COLUMNS[:-1], "missing column(s) acc"),
    ([('d', '20m', 'final', 8000, 0, 'high')], OVERALL_COLUMNS, "line 2, column 'acc': not an accuracy"),
    ([('d', '20m', 'final', 8000, 0, 1.5)], OVERALL_COLUMNS, "line 2, column 'acc'"),
    ([('d', '20m', 'half', 8000, 0, .5)], OVERALL_COLUMNS, "line 2, column 'milestone'"),
    ([('d', '20m', 'final', 'big', 0, .5)], OVERALL_COLUMNS, "line 2, column 'vocab_size': not an integer"),
    ([('d', '', 'final', 8000, 0, .5)], OVERALL_COLUMNS, "line 2, column 'model_size': empty value"),
    ([('d', '20m', '25', 8000, 0, .5), ('d', '20m', '25', 8000, 1, .6)], OVERALL_COLUMNS, "no 'final' rows in column 'milestone' and only one milestone (25)"),
    ([('d', '20m', 'final', 8000, 0, .5), ('d', '20m', 'final', 8000, 0, .6)], OVERALL_COLUMNS, "line 3: duplicate of line 2"),
])
def test_read_table_errors_name_file_and_column(tmp_path, rows, columns, msg):
    p = write_csv(tmp_path/'overall.csv', rows, columns)
    with pytest.raises(LmeffError) as e: read_table(p)
    assert str(p) in str(e.value) and msg in str(e.value)

def test_read_table_missing_and_empty_files(tmp_path):
    with pytest.raises(LmeffError, match='no such file'): read_table(tmp_path/'none.csv')
    (tmp_path/'empty.csv').write_text('')
    with pytest.raises(LmeffError, match='the file is empty'): read_table(tmp_path/'empty.csv')
    with pytest.raises(LmeffError, match='no such results folder or CSV'): load_results(tmp_path/'none')

def test_task_table_needs_task_column(tmp_path):
    p = write_csv(tmp_path/'tasks.csv', [('d', '20m', 'final', 8000, 0, .5)])
    with pytest.raises(LmeffError, match=r"tasks.csv: missing column\(s\) task"): read_table(p, TASK_COLUMNS)

# ---------------------------------------------------------------- gathering a results tree

def make_tree(root, pairs=False):
    "2 datasets x 2 seeds x milestones 25, 50, final; one snapshot never scored; per-pair scores if asked."
    rng = np.random.default_rng(0)
    task = ['anaphor_gender_agreement'] * 20 + ['wh_island'] * 20
    for dataset, base in [('synthetic', .55), ('tinystories', .6)]:
        for seed in (0, 1):
            for k, m in enumerate(['25', '50', 'final']):
                if (dataset, seed, m) == ('tinystories', 1, '50'): continue
                acc = base + .05*k + .01*seed
                tasks = {'anaphor_gender_agreement': acc + .1, 'wh_island': acc - .1}
                sc = None
                if pairs:
                    good = rng.normal(acc, .2, 40); sc = (task, good, np.full(40, .5))
                write_snapshot(root, dataset, 'tiny', seed, 512, m, acc, tasks, tokens=1.2e6 if m == 'final' else None, pairs=sc)
    return root

def test_gather_tree(tmp_path):
    r = gather(make_tree(tmp_path), progress=False)
    assert len(r.overall) == 11 and list(r.overall.columns) == OVERALL_COLUMNS
    assert len(r.tasks) == 22 and set(r.tasks.task) == {'anaphor_gender_agreement', 'wh_island'}
    assert r.missing.to_dict('records') == [{'dataset': 'tinystories', 'model_size': 'tiny', 'vocab_size': 512, 'seed': 1, 'milestone': '50'}]
    assert r.overall.query("dataset == 'synthetic' and seed == 1 and milestone == 'final'").acc.item() == pytest.approx(.66)
    assert r.final_tokens.tokens_seen.tolist() == [1.2e6] * 4 and r.pairs is None
    # the blimp/ folder itself works too
    assert len(gather(tmp_path/'blimp', progress=False).overall) == 11

def test_gather_with_pair_scores(tmp_path):
    r = gather(make_tree(tmp_path, pairs=True), progress=False)
    assert r.pairs.correct.shape == (11, 40) and set(r.pairs.task) == {'anaphor_gender_agreement', 'wh_island'}
    ep = early_prediction(r, n_boot=100, progress=False)
    assert {'spearman_pair_ci_low', 'spearman_pair_ci_high'} <= set(ep.columns)
    ok = ep.dropna(subset=['spearman_pair_ci_low'])
    assert len(ok) and (ok.spearman_pair_ci_low <= ok.spearman_pair_ci_high).all() and ok.spearman_pair_ci_low.between(-1, 1).all()
    assert ep.budget_m.eq(1.2).all()   # median tokens_seen of the finals, in millions
    # a snapshot without per-pair scores: no pair bootstrap at all
    (tmp_path/'blimp'/'synthetic'/'tiny'/'seed-0'/'tok-512'/'25'/PAIRS_FILE).unlink()
    assert gather(tmp_path, progress=False).pairs is None

def test_gather_bad_inputs(tmp_path):
    with pytest.raises(LmeffError, match='no blimp_results.json found'): gather(tmp_path)
    with pytest.raises(LmeffError, match='no such folder'): gather(tmp_path/'nope')
    d = write_snapshot(tmp_path, 'd', 'tiny', 0, 512, '25', .5)
    with pytest.raises(LmeffError, match="no 'final' rows"): gather(tmp_path, progress=False)
    write_snapshot(tmp_path, 'd', 'tiny', 0, 512, 'final', .6)
    (d/RESULTS_FILE).write_text('{"results": {"blimp": {}}}')
    with pytest.raises(LmeffError) as e: gather(tmp_path, progress=False)
    assert str(d/RESULTS_FILE) in str(e.value) and "acc,none" in str(e.value)
    (d/RESULTS_FILE).write_text('{not json')
    with pytest.raises(LmeffError, match='cannot read as JSON'): gather(tmp_path, progress=False)

def test_gather_bad_layout_and_pairs(tmp_path):
    bad = tmp_path/'blimp'/'d'/'tiny'/'seed0'/'tok-512'/'final'
    bad.mkdir(parents=True); (bad/RESULTS_FILE).write_text('{}')
    with pytest.raises(LmeffError) as e: gather(tmp_path, progress=False)
    assert f"{bad}: not in the layout" in str(e.value) and 'seed-{S}' in str(e.value)
    other = tmp_path/'r2'
    d = write_snapshot(other, 'd', 'tiny', 0, 512, 'final', .6)
    np.savez(d/PAIRS_FILE, task=np.array(['a']), logp_good=np.array([1.]))
    with pytest.raises(LmeffError, match='missing array'): gather(other, progress=False)

def test_load_results_dispatch(tmp_path):
    make_tree(tmp_path/'res')
    with pytest.raises(LmeffError, match='goes with an overall CSV'): load_results(tmp_path/'res', tasks=tmp_path/'t.csv')
    r = load_results(tmp_path/'res', progress=False)
    r.overall.to_csv(tmp_path/'o.csv', index=False); r.tasks.to_csv(tmp_path/'t.csv', index=False)
    r2 = load_results(tmp_path/'o.csv', tmp_path/'t.csv')
    pd.testing.assert_frame_equal(r2.overall, r.overall); pd.testing.assert_frame_equal(r2.tasks, r.tasks)
    pd.testing.assert_frame_equal(r2.missing, r.missing)

def test_gather_reads_what_the_store_writes(tmp_path):
    "The layout is the store's: `gather` reads exactly the folders `results_dir` makes, model_config becoming model_size."
    for m, acc in [('0.05', .5), ('12.5', .55), ('final', .6)]:
        write_snapshot(tmp_path, 'babylm3', '60m', 3, 16000, m, acc)
    assert sorted(p.parent for p in tmp_path.rglob(RESULTS_FILE)) == sorted(
        results_dir(tmp_path, dict(dataset='babylm3', model_config='60m', seed=3, vocab_size=16000, milestone=m)) for m in ('0.05', '12.5', 'final'))
    o = gather(tmp_path, progress=False).overall
    assert o[['dataset', 'model_size', 'milestone', 'vocab_size', 'seed']].values.tolist() == [
        ['babylm3', '60m', m, 16000, 3] for m in ('0.05', '12.5', 'final')]

def test_analysis_writes_tables_atomically(tmp_path):
    t = runs_table({0: [.5, .6, .7]})
    p = write_table(t, tmp_path/'t.csv')
    pd.testing.assert_frame_equal(read_table(p), t)
    assert [f.name for f in tmp_path.iterdir()] == ['t.csv']   # no temporary file left

# ---------------------------------------------------------------- the end point: a real final, or the last anchor

ANCHORS = ('0.025', '0.05', '0.1')
# 4 runs (vocab x seed). At 0.05 and 0.1 they rank alike; a real final (a full run) ranks them otherwise.
ACC = {(512, 0): (.50, .55, .60, .70), (512, 1): (.52, .57, .62, .69), (1024, 0): (.51, .60, .66, .73), (1024, 1): (.53, .58, .64, .74)}

def anchor_tree(root, final:str, pairs:bool=True, runs=ACC):
    """An anchor grid's results. `final`: 'copy' (anchor mode as it was: the 0.1 snapshot scored again, nothing recording an anchor),
    'anchor' (the same, with config.anchor recorded), 'none' (an anchor-only grid) or 'real' (a full run's: anchor -1, more tokens)."""
    task = ['wh_island'] * 50 + ['passive_1'] * 50
    def scores(acc): return task, (np.arange(100) < round(acc * 100)).astype(float), np.full(100, .5)
    for (vocab, seed), accs in runs.items():
        for m, acc in zip(ANCHORS, accs):
            write_snapshot(root, 'synthetic', 'tiny', seed, vocab, m, acc, {'wh_island': acc + .02, 'passive_1': acc - .02}, tokens=float(m) * 1e6,
                           pairs=scores(acc) if pairs else None, anchor=None if final == 'copy' else float(m))
        if final == 'none': continue
        acc, tokens, anchor = (accs[3], 2e5, -1) if final == 'real' else (accs[2], 1e5, None if final == 'copy' else .1)
        write_snapshot(root, 'synthetic', 'tiny', seed, vocab, 'final', acc, {'wh_island': acc + .02, 'passive_1': acc - .02}, tokens=tokens,
                       pairs=scores(acc) if pairs else None, anchor=anchor)
    return root

@pytest.mark.parametrize('final,reason', [('copy', 'same tokens_seen and per-pair decisions'), ('anchor', 'config.anchor = 0.1'), ('none', None)])
def test_last_anchor_is_the_end_point_without_a_real_final(tmp_path, final, reason):
    "A `final` that is the last anchor's checkpoint (or none at all): no row compares a checkpoint with itself, and the summary says why."
    out = tmp_path/'out'
    r = analyze(anchor_tree(tmp_path/'res', final), out, n_boot=50, png=False, progress=False)
    res = r['results']
    assert end_point(res.overall) == '0.1' and 'final' not in set(res.overall.milestone) and 'final' not in set(res.tasks.milestone)
    assert res.copies.reason.tolist() == ([reason] * 4 if reason else [])
    assert len(pd.read_csv(out/'final_copies.csv')) == (4 if reason else 0)
    ep = pd.read_csv(out/'early_prediction.csv', dtype={'milestone': str})
    assert set(ep.milestone) == {'0.025', '0.05'}   # the end point is compared with nothing
    sp = pd.read_csv(out/'blimp_global_spearman.csv', dtype={'milestone': str})
    assert sp.milestone.tolist() == ['0.025', '0.05'] and sp['global'].tolist() == pytest.approx([stats.spearmanr([.50, .52, .51, .53], [.60, .62, .66, .64])[0], 1])
    g = ep[ep.scope == 'global'].set_index('milestone')
    assert g.budget_m.eq(0.1).all() and g.budget_share.tolist() == pytest.approx([.25, .5])   # shares of the end point's budget
    em = pd.read_csv(out/'earliest_milestone.csv', dtype={'milestone': str}).set_index(['scope', 'group', 'criterion'])
    assert em.loc[('global', 'all', 'spearman'), 'milestone'] == '0.05' and em.loc[('global', 'all', 'spearman'), 'compute_saving'] == pytest.approx(.5)
    md = (out/'summary.md').read_text()
    assert 'No run has a final checkpoint of its own' in md and 'so the last anchor, 100K tokens, is the end point: it is left out of the tables below' in md
    assert (reason in md) if reason else 'from a separate full run' in md
    assert 'ρ first reaches 0.9 at **50K** tokens' in md and '50.0% of the token budget of the end point (100K)' in md and '| 100K |' not in md

def test_real_final_is_the_end_point(tmp_path):
    "A full run's `final` (anchor -1, more tokens seen) is used: every anchor, the last one too, is compared with it."
    r = analyze(anchor_tree(tmp_path/'res', 'real'), tmp_path/'out', n_boot=50, png=False, progress=False)
    res, ep = r['results'], r['early_prediction']
    assert end_point(res.overall) == 'final' and res.copies.empty and res.final_tokens.tokens_seen.eq(2e5).all()
    g = ep[ep.scope == 'global'].set_index('milestone')
    assert g.index.tolist() == list(ANCHORS) and g.budget_m.eq(0.2).all()
    assert g.loc['0.1', 'spearman'] == pytest.approx(stats.spearmanr([.60, .62, .66, .64], [.70, .69, .73, .74])[0]) and g.loc['0.1', 'spearman'] < 1
    md = (tmp_path/'out'/'summary.md').read_text()
    assert 'end point' not in md and 'milestones 25K to 100K tokens and final.' in md and '| 100K | 4 | 0.60 |' in md

def test_some_finals_copies_others_real(tmp_path, capsys):
    "Runs whose `final` is a copy have no final of their own: they are left out, the others compared with their real finals."
    anchor_tree(tmp_path/'res', 'real', runs={k: v for k, v in ACC.items() if k[0] == 512})
    anchor_tree(tmp_path/'res', 'copy', runs={k: v for k, v in ACC.items() if k[0] == 1024})
    r = analyze(tmp_path/'res', tmp_path/'out', n_boot=20, png=False, progress=False)
    res, ep = r['results'], r['early_prediction']
    assert end_point(res.overall) == 'final' and res.copies.vocab_size.tolist() == [1024, 1024]
    assert ep[ep.scope == 'global'].n_runs.eq(2).all()
    assert "The `final` of 2 run(s) is the same checkpoint as its 100K milestone (same tokens_seen and per-pair decisions; see `final_copies.csv`), " \
           "so those runs have no final of their own and are left out of the statistics." in (tmp_path/'out'/'summary.md').read_text()
    assert main(['analyze', '--results', str(tmp_path/'res'), '--out', str(tmp_path/'o2'), '--bootstrap', '0', '--no-png']) == 0
    assert '2 final(s) set aside as copies of a milestone' in capsys.readouterr().out

def test_copies_found_by_per_task_scores_in_tables(tmp_path, capsys):
    "Tables say nothing of tokens or anchors: a `final` equal to a milestone on every task is a copy; an overall accuracy alone decides nothing."
    res = gather(anchor_tree(tmp_path/'res', 'none', pairs=False), progress=False)
    fin = res.overall[res.overall.milestone == '0.1'].assign(milestone='final')
    overall = pd.concat([res.overall, fin]); tasks = pd.concat([res.tasks, res.tasks[res.tasks.milestone == '0.1'].assign(milestone='final')])
    write_table(overall, tmp_path/'o_overall.csv'); write_table(tasks, tmp_path/'o_tasks.csv')
    r = load_results(tmp_path/'o_overall.csv', tmp_path/'o_tasks.csv')
    assert r.copies.reason.tolist() == ['same per-task accuracies'] * 4 and end_point(r.overall) == '0.1'
    assert load_results(tmp_path/'o_overall.csv').copies.empty   # overall accuracies alone: no evidence, the final is kept
    assert main(['analyze', '--results', str(tmp_path/'o_overall.csv'), '--out', str(tmp_path/'o'), '--bootstrap', '0', '--no-png']) == 0
    assert 'the last anchor, 100K tokens, is the end point' in capsys.readouterr().out

def test_find_copies_rules():
    t = runs_table({0: [.5, .6, .6], 1: [.5, .7, .7]})
    tasks = t.assign(task='x')[TASK_COLUMNS]
    meta = t[RUN + ['milestone']].assign(tokens_seen=[25e6, 50e6, 50e6] * 2, anchor=math.nan)
    assert find_copies(t, tasks).milestone.tolist() == ['50', '50']
    assert find_copies(t, tasks, meta.assign(tokens_seen=[25e6, 50e6, 60e6] * 2)).empty   # the final saw more tokens
    assert find_copies(t, tasks, meta.assign(anchor=[25., 50., -1.] * 2)).empty   # a full run's final vs an anchor run's milestone
    assert find_copies(t, tasks.assign(acc=[.5, .6, .61, .5, .7, .71])).empty   # a task differs
    assert find_copies(t, meta=meta).reason.tolist() == ['same tokens_seen and accuracy'] * 2
    assert find_copies(t).empty

# ---------------------------------------------------------------- phenomena

def test_phenomenon_groups():
    assert len(BLIMP_PHENOMENON) == 67 and len(PHENOMENA) == 12 and set(BLIMP_PHENOMENON.values()) == set(PHENOMENA)
    assert BLIMP_TASKS == tuple(sorted(BLIMP_PHENOMENON))   # one task list: the grouping's
    assert phenomenon('blimp_complex_np_island') == 'island_effects'   # lm-eval lower-cases task names
    assert phenomenon('animate_subject_trans') == 'argument_structure' and phenomenon('synthetic_agreement') == 'other'

def test_phenomenon_groups_match_blimp_files(shared_data):
    seen = {}
    for f in sorted((shared_data/'blimp').glob('*.jsonl')):
        row = json.loads(f.open().readline())
        term = row['linguistics_term'].replace('s-selection', 'argument_structure')   # the paper counts s-selection under argument structure
        seen[row['UID']] = term
    assert seen == BLIMP_PHENOMENON

# ---------------------------------------------------------------- figures, summary, analyze, CLI

def test_figures_are_valid_files(tmp_path):
    r = gather(make_tree(tmp_path/'res'), progress=False)
    ep = early_prediction(r, n_boot=20, progress=False)
    for name, chart in [('curves', plot_learning_curves(r.overall)), ('rho', plot_correlations(ep)),
                        ('phen', plot_phenomena(r.tasks)), ('tasks', plot_tasks(r.tasks))]:
        html, png = save_chart(chart, tmp_path/'fig'/name)
        assert '"$schema": "https://vega.github.io/schema/vega-lite' in html.read_text()
        data = png.read_bytes()
        assert data[:8] == b'\x89PNG\r\n\x1a\n' and len(data) > 1000

def test_summary_states_the_numbers():
    t = two_datasets()
    ep = early_prediction(t, n_boot=50, progress=False); em = earliest_milestone(ep)
    md = summary_markdown(Results(t, None, missing_snapshots(t), 'x.csv'), ep, em, n_boot=50)
    g = ep[ep.scope == 'global'].set_index('milestone')
    assert md.startswith('# Early prediction') and 'missing' not in md and '15 snapshots of 5 runs' in md
    assert f"ρ first reaches 0.9 at **50M** tokens (ρ = {g.loc['50', 'spearman']:.2f}" in md
    assert f"At the first milestone (25M) ρ = {g.loc['25', 'spearman']:.2f}" in md
    assert '- **a** (3 runs)' in md and '- **60m** (2 runs)' in md
    md = summary_markdown(Results(t, None, missing_snapshots(t), 'x.csv'), ep, earliest_milestone(ep, 1.01), 1.01, 50)
    assert 'ρ never reaches 1.01; the highest is ρ = ' in md

def test_analyze_writes_everything(tmp_path):
    out = tmp_path/'out'
    analyze(make_tree(tmp_path/'res'), out, n_boot=50, png=False, progress=False)
    for name in ['overall.csv', 'tasks.csv', 'missing.csv', 'blimp_global_spearman.csv', 'blimp_global_r2.csv',
                 'early_prediction.csv', 'earliest_milestone.csv', 'summary.md',
                 'figures/learning_curves.html', 'figures/correlations.html', 'figures/phenomena.html', 'figures/tasks.html']:
        assert (out/name).is_file(), name
    assert not (out/'figures'/'vocab_sizes.html').exists()   # one vocabulary size: no comparison to draw
    sp = pd.read_csv(out/'blimp_global_spearman.csv', dtype={'milestone': str})
    assert list(sp.columns) == ['milestone', 'global'] and sp.milestone.tolist() == ['25', '50']
    assert pd.read_csv(out/'missing.csv').seed.tolist() == [1]
    assert 'tinystories/tiny/vocab 512/seed 1 at 50' in (out/'summary.md').read_text()

def test_cli_in_process(tmp_path, capsys):
    make_tree(tmp_path/'res')
    rc = main(['analyze', '--results', str(tmp_path/'res'), '--out', str(tmp_path/'out'), '--bootstrap', '20', '--no-png'])
    out = capsys.readouterr().out
    assert rc == 0 and '11 snapshots of 4 runs; 1 missing' in out and 'earliest milestone with ρ >= 0.9' in out
    assert (tmp_path/'out'/'summary.md').exists() and not list((tmp_path/'out'/'figures').glob('*.png'))
    # the overall CSV with its per-task table found beside it
    o = pd.read_csv(tmp_path/'out'/'overall.csv'); o.to_csv(tmp_path/'my_overall.csv', index=False)
    pd.read_csv(tmp_path/'out'/'tasks.csv').to_csv(tmp_path/'my_tasks.csv', index=False)
    rc = main(['analyze', '--results', str(tmp_path/'my_overall.csv'), '--out', str(tmp_path/'out2'), '--bootstrap', '0', '--no-png'])
    assert rc == 0 and 'my_tasks.csv (beside the overall table)' in capsys.readouterr().out
    assert (tmp_path/'out2'/'figures'/'tasks.html').exists()

def test_cli_errors(tmp_path, capsys):
    p = write_csv(tmp_path/'overall.csv', [('d', '20m', '25', 8000, 0, .5)])
    assert main(['analyze', '--results', str(p), '--out', str(tmp_path/'o')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('lmeff analyze: error: ') and str(p) in err and "no 'final' rows" in err
    assert main(['analyze', '--results', str(tmp_path), '--out', str(tmp_path/'o')]) == 2
    assert 'no blimp_results.json found' in capsys.readouterr().err
    assert main(['analyze', '--results', str(p), '--out', str(tmp_path/'o'), '--threshold', '2']) == 2

def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e: main(['analyze', '--help'])
    out = capsys.readouterr().out
    assert e.value.code == 0 and 'usage: lmeff analyze' in out and '--threshold' in out and '--bootstrap' in out

def test_cli_subprocess(tmp_path):
    r = run_cli('analyze', '--results', tmp_path/'none.csv', '--out', tmp_path/'o')
    assert r.returncode == 2 and 'no such results folder or CSV' in r.stderr and 'Traceback' not in r.stderr

# ---------------------------------------------------------------- the published tables (not shipped: read from a folder, or downloaded and cached)
# No test touches the network: `cache` makes every download fail unless a test serves the files itself.

OVERALL, TASKS = 'blimp_all_overall.csv', 'blimp_all_tasks.csv'

@pytest.fixture
def published(shared_data):
    "The workplace's copy of the original study's tables (skipped where ../shared is absent)."
    return shared_data/'reference-results'

_real_download = lmeff.report._download

@pytest.fixture
def downloads(monkeypatch):
    "The URLs downloaded; every download fails (no network in the tests) unless a test `serve`s the files."
    calls = []
    def offline(url, timeout=60): calls.append(url); raise urllib.error.URLError('no network in the tests')
    monkeypatch.setattr(lmeff.report, '_download', offline)
    return calls

@pytest.fixture
def cache(tmp_path, monkeypatch, downloads):
    "An empty per-user cache (`$LMEFF_CACHE`), offline."
    monkeypatch.setenv('LMEFF_CACHE', str(tmp_path/'lmeff-cache'))
    return reference_cache()

def serve(monkeypatch, downloads:list, files:dict):
    "Downloads answer from `files` (name -> bytes), recorded in `downloads`."
    def download(url, timeout=60):
        downloads.append(url)
        return files[url.rsplit('/', 1)[1]]
    monkeypatch.setattr(lmeff.report, '_download', download)

def in_cache(cache): return sorted(p.name for p in cache.iterdir()) if cache.exists() else []

def test_reference_is_pinned():
    assert lmeff.report.REFERENCE_COMMIT == 'e93c1e11d0b8f85a86b80a65e8affcf23d79c5ef'
    assert lmeff.report.REFERENCE_URL == ('https://raw.githubusercontent.com/andreasparaskeva/lm-efficient-analysis/'
                                         'e93c1e11d0b8f85a86b80a65e8affcf23d79c5ef/results/data/')
    assert lmeff.report.REFERENCE_SHA256 == {OVERALL: '89fef53db5e2920725002a511ed93ef341e519d128e62719f727befbcb3dd6b9',
                                             TASKS: 'd8b9c381a2c2cf691f89694763db40098bf956ac1566f692b10644b5895671c3'}

def test_reference_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv('LMEFF_CACHE', str(tmp_path))
    assert reference_cache() == tmp_path/'reference'
    monkeypatch.delenv('LMEFF_CACHE'); monkeypatch.setenv('HOME', str(tmp_path/'home'))
    assert reference_cache() == tmp_path/'home'/'.cache'/'lmeff'/'reference'

def test_the_tables_are_not_shipped():
    "The upstream repository has no licence: its tables must not be in the package or its build files."
    from conftest import ROOT
    assert not (ROOT/'lmeff'/'reference').exists() and not list((ROOT/'lmeff').rglob('blimp_all_*'))
    assert 'lmeff/reference' not in (ROOT/'MANIFEST.in').read_text() and 'lmeff.reference' not in (ROOT/'setup.py').read_text()

def test_fetch_downloads_checks_and_caches(cache, monkeypatch, downloads):
    "A table that is not cached is downloaded from the pinned commit once, checked against its sha256 and written to the cache."
    data = b'dataset,model_size,milestone,vocab_size,seed,acc\n'
    monkeypatch.setitem(lmeff.report.REFERENCE_SHA256, OVERALL, hashlib.sha256(data).hexdigest())
    serve(monkeypatch, downloads, {OVERALL: data})
    p = fetch_reference(OVERALL)
    assert p == cache/OVERALL and p.read_bytes() == data and in_cache(cache) == [OVERALL]   # no temporary file left
    assert downloads == [lmeff.report.REFERENCE_URL + OVERALL]
    assert fetch_reference(OVERALL) == p and len(downloads) == 1   # cached: not downloaded again
    p.write_bytes(b'damaged')   # a cached copy with the wrong bytes is fetched again
    with pytest.warns(UserWarning, match='cached copy is not the published file'): assert fetch_reference(OVERALL).read_bytes() == data
    assert len(downloads) == 2

def test_a_tampered_download_is_refused_and_not_cached(cache, monkeypatch, downloads):
    serve(monkeypatch, downloads, {OVERALL: b'dataset,model_size,milestone,vocab_size,seed,acc\nd,20m,final,8000,0,0.99\n', TASKS: b''})
    for name in (OVERALL, TASKS):
        with pytest.raises(LmeffError) as e: fetch_reference(name)
        msg = str(e.value)
        assert (lmeff.report.REFERENCE_URL + name in msg and f'not the published {name}' in msg and lmeff.report.REFERENCE_SHA256[name] in msg
                and 'not cached' in msg and '--reference PATH' in msg and 'reference_results(path=PATH)' in msg)
    assert in_cache(cache) == []
    with pytest.raises(LmeffError, match='not the published blimp_all_overall.csv'): reference_results()
    assert in_cache(cache) == []

def test_a_failed_download_is_a_clear_error(cache, tmp_path, capsys):
    with pytest.raises(LmeffError) as e: reference_results()
    msg = str(e.value)
    assert msg.startswith(f"could not download the original study's {OVERALL} from {lmeff.report.REFERENCE_URL}{OVERALL}")
    assert 'no network in the tests' in msg and '--reference PATH' in msg and in_cache(cache) == []
    assert main(['analyze', '--reference', '--out', str(tmp_path/'o'), '--bootstrap', '0', '--no-png']) == 2
    err = capsys.readouterr().err
    assert 'lmeff analyze: error: could not download' in err and 'Traceback' not in err and not (tmp_path/'o').exists()

def test_reference_results_reads_the_given_folder(cache, published, tmp_path, downloads):
    "With a folder, the tables are read from there: no download, nothing cached."
    res = reference_results(published)
    assert len(res.overall) == 694 and len(res.tasks) == 46498 and Path(res.source) == published/OVERALL
    assert downloads == [] and in_cache(cache) == []
    (tmp_path/'only').mkdir(); (tmp_path/'only'/OVERALL).write_bytes((published/OVERALL).read_bytes())
    with pytest.warns(UserWarning, match='no blimp_all_tasks.csv there'): res = reference_results(tmp_path/'only')
    assert res.tasks is None and len(res.overall) == 694
    assert reference_results(tmp_path/'only', tasks=False).tasks is None   # nothing asked for, nothing to warn about
    with pytest.raises(LmeffError, match='no blimp_all_overall.csv there'): reference_results(tmp_path/'none')
    with pytest.raises(LmeffError, match='give the folder that holds it'): reference_results(published/OVERALL)
    (tmp_path/'edited').mkdir(); (tmp_path/'edited'/OVERALL).write_text((published/OVERALL).read_text().replace('0.', '0.0', 1))
    with pytest.warns(UserWarning, match="not the published file.*not the original study's"): reference_results(tmp_path/'edited', tasks=False)

def test_reference_results_downloads_into_the_cache(cache, published, monkeypatch, downloads):
    "Without a folder: the published files are downloaded once (here served from ../shared), verified and cached."
    serve(monkeypatch, downloads, {n: (published/n).read_bytes() for n in (OVERALL, TASKS)})
    res = reference_results()
    assert downloads == [lmeff.report.REFERENCE_URL + n for n in (OVERALL, TASKS)] and in_cache(cache) == [OVERALL, TASKS]
    assert all((cache/n).read_bytes() == (published/n).read_bytes() for n in (OVERALL, TASKS))
    assert len(res.overall) == 694 and len(res.tasks) == 46498
    again = reference_results()
    assert len(downloads) == 2 and Path(again.source) == cache/OVERALL   # from the cache
    pd.testing.assert_frame_equal(again.tasks, res.tasks)
    assert reference_results(tasks=False).tasks is None and len(downloads) == 2

def test_reference_download_by_urllib_from_a_file_url(cache, published, monkeypatch):
    "The real download function (urllib.request), pointed at a file:// copy of the repository's folder."
    monkeypatch.setattr(lmeff.report, '_download', _real_download)
    monkeypatch.setattr(lmeff.report, 'REFERENCE_URL', published.as_uri() + '/')
    assert fetch_reference(OVERALL).read_bytes() == (published/OVERALL).read_bytes() and in_cache(cache) == [OVERALL]
    monkeypatch.setattr(lmeff.report, 'REFERENCE_URL', (cache.parent/'nowhere').as_uri() + '/')
    with pytest.raises(LmeffError, match=f"could not download the original study's {TASKS} from file://"): fetch_reference(TASKS)
    assert in_cache(cache) == [OVERALL]

def test_reference_results(tmp_path, published):
    "The original study's numbers, recomputed from its published tables."
    res = reference_results(published)
    assert len(res.overall) == 694 and len(res.tasks) == 46498 and len(res.overall[RUN].drop_duplicates()) == 54
    assert len(res.missing) == 8 and (res.missing.milestone != 'final').all()
    assert res.copies.empty and end_point(res.overall) == 'final'   # their finals are real: separately trained checkpoints
    wide = res.overall.pivot(index=RUN, columns='milestone', values='acc')
    assert (wide['final'] != wide['2000']).all() and (wide['final'] - wide['2000']).mean() * 100 == pytest.approx(0.69, abs=0.01)
    assert set(res.tasks.task.map(phenomenon)) == set(PHENOMENA)   # every published task name maps to a group
    r = analyze(res, tmp_path, n_boot=100, png=False, progress=False)
    sp, r2 = r['spearman'], r['r2']
    assert sp.milestone.tolist() == ['25', '50', '75', '100', '250', '500', '750', '1000', '1250', '1500', '1750', '2000']
    assert sp['global'].between(-1, 1).all() and r2['global'].between(0, 1).all()
    assert sp.set_index('milestone').loc['500', 'global'] == pytest.approx(0.9303, abs=1e-4)
    em = r['earliest'].set_index(['scope', 'group', 'criterion'])
    assert em.loc[('global', 'all', 'spearman'), 'milestone'] == '500'
    for f in ['blimp_global_spearman.csv', 'blimp_global_r2.csv', 'early_prediction.csv', 'summary.md', 'figures/tasks.html']:
        assert (tmp_path/f).is_file()
    assert 'end point' not in (tmp_path/'summary.md').read_text()

def test_cli_reference(tmp_path, capsys, cache, published, monkeypatch, downloads):
    expected = 'earliest milestone with ρ >= 0.9: 500 (25.0% of the final token budget)'
    assert main(['analyze', '--reference', str(published), '--out', str(tmp_path/'o'), '--bootstrap', '0', '--no-png']) == 0
    out = capsys.readouterr().out
    assert '694 snapshots of 54 runs; 8 missing' in out and expected in out and downloads == []
    serve(monkeypatch, downloads, {n: (published/n).read_bytes() for n in (OVERALL, TASKS)})   # no PATH: the cache, filled by a download
    assert main(['analyze', '--reference', '--out', str(tmp_path/'o2'), '--bootstrap', '0', '--no-png']) == 0
    out, err = capsys.readouterr()
    assert expected in out and len(downloads) == 2 and f"downloading the original study's {OVERALL} from {lmeff.report.REFERENCE_URL}" in err
    assert (tmp_path/'o2'/'figures'/'tasks.html').is_file()
    assert main(['analyze', '--reference', str(published), '--tasks', 't.csv', '--out', str(tmp_path/'o3')]) == 2
    assert '--tasks goes with --results' in capsys.readouterr().err

def test_pair_resampling_within_tasks():
    rng = np.random.default_rng(0)
    correct = np.stack([np.r_[np.ones(30, bool), np.zeros(10, bool)], rng.random(40) < .7])
    ps = PairScores(pd.DataFrame({'seed': [0, 1]}), np.array(['a'] * 30 + ['b'] * 10), correct)
    A = pair_bootstrap_acc(ps, 300, np.random.default_rng(1))
    assert A.shape == (2, 300)
    assert np.allclose(A[0], .75)   # task a all right, task b all wrong: every within-task resample keeps 30 of 40
    assert A[1].std() > 0 and abs(A[1].mean() - correct[1].mean()) < .02
    assert np.array_equal(A, pair_bootstrap_acc(ps, 300, np.random.default_rng(1)))

def test_milestone_folders_named_like_snapshots(tmp_path):
    write_snapshot(tmp_path, 'd', 'tiny', 0, 512, '0.05', .5, folder='milestone-0.05M')
    write_snapshot(tmp_path, 'd', 'tiny', 0, 512, 'final', .6)
    assert gather(tmp_path, progress=False).overall.milestone.tolist() == ['0.05', 'final']

def test_gather_one_dataset_folder(tmp_path):
    make_tree(tmp_path)
    r = gather(tmp_path/'blimp'/'tinystories', progress=False)
    assert set(r.overall.dataset) == {'tinystories'} and len(r.overall) == 5

def test_a_single_run_is_analysed_without_a_crash(tmp_path):
    "One run has nothing to rank; the analysis still writes its tables and says so instead of failing (a one-run sweep)."
    from lmeff.report import analyze
    from lmeff.store import results_dir, write_json, RESULTS_FILE
    for m, acc, tokens, anchor in (('0.01', 0.5, 10_240, 0.01), ('0.02', 0.55, 20_480, 0.02), ('final', 0.6, 40_960, -1.0)):
        meta = dict(dataset='synthetic', model_config='tiny', seed=0, vocab_size=512, milestone=m)
        write_json(results_dir(tmp_path/'r', meta)/RESULTS_FILE, {'results': {'blimp': {'acc,none': acc}, 'blimp_a': {'acc,none': acc}},
                                                                  'config': {'tokens_seen': tokens, 'anchor': anchor}})
    analyze(tmp_path/'r', tmp_path/'out', n_boot=20, progress=False)
    assert (tmp_path/'out'/'summary.md').is_file() and (tmp_path/'out'/'earliest_milestone.csv').is_file()
