"Decisions between configurations (lmeff.decide): hand-computed cases, predictors that never read the end, the honest choice, signal and noise, and the published study recomputed with plain pandas and scipy."
import dataclasses, itertools, math
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from lmeff.analysis import OVERALL_COLUMNS, RUN, SNAPSHOT, TASK_COLUMNS, PairScores, Results, check_table, gather, load_results, missing_snapshots
from lmeff.decide import (CHOSEN, config_decision_accuracy, config_decisions, config_pairs, decide_at, decision_tables, fit_curve, honest_choice,
                          power_law, predictions, seeds_needed, signal_noise)
import lmeff.decide
from lmeff.cli import main
from lmeff.report import analyze
from lmeff.store import PAIRS_FILE, RESULTS_FILE, results_dir

CONFIG = ['dataset', 'model_size', 'vocab_size']

def table(rows): return check_table(pd.DataFrame(rows, columns=OVERALL_COLUMNS), 'test.csv')

def by_run(t, m): return t[t.milestone == m].set_index(RUN)['acc']

def worked_example():
    "Data set a: three configurations, b: two, two seeds each; accuracy at 25M and at final (the notebook's table)."
    configs = [('a', '20m', 8000, [(.50, .70), (.54, .72)]), ('a', '20m', 16000, [(.55, .74), (.57, .76)]), ('a', '60m', 8000, [(.53, .78), (.53, .80)]),
               ('b', '20m', 8000, [(.60, .66), (.62, .68)]), ('b', '60m', 8000, [(.58, .70), (.60, .72)])]
    return table([(d, s, m, v, seed, a) for d, s, v, accs in configs for seed, acc in enumerate(accs) for m, a in zip(('25', 'final'), acc)])

def random_study(rng, datasets=('a', 'b', 'c'), milestones=('25', '50', '75', '100', '250', '500'), seeds=(0, 1, 2), tasks=('t1', 't2', 't3')):
    "Learning curves of 4 configurations per data set with seed noise, a final, per-task scores and per-pair margins."
    rows = []
    for d in datasets:
        for s, v in [('20m', 8000), ('20m', 16000), ('60m', 8000), ('60m', 16000)]:
            a, b, c = rng.uniform(.6, .8), rng.uniform(.005, .03), rng.uniform(.2, .8)
            for seed in seeds:
                noise = rng.normal(0, .01, len(milestones) + 1)
                rows += [(d, s, m, v, seed, float(np.clip(power_law(float(m) / 1000, a, b, c) + e, 0, 1))) for m, e in zip(milestones, noise)]
                rows.append((d, s, 'final', v, seed, float(np.clip(a + noise[-1], 0, 1))))
    o = table(rows)
    t = pd.concat([o.assign(task=k, acc=np.clip(o.acc + rng.normal(0, .02, len(o)), 0, 1)) for k in tasks])[TASK_COLUMNS].reset_index(drop=True)
    snaps = o[SNAPSHOT].reset_index(drop=True)
    margin = rng.normal(0, 1, (len(snaps), 20)) + o['acc'].to_numpy()[:, None]
    finals = o[o.milestone == 'final'][RUN].assign(tokens_seen=1e9).reset_index(drop=True)   # full runs that stopped early: not the planned budget
    return Results(o, check_table(t, 'tasks', TASK_COLUMNS), missing_snapshots(o), 'random', final_tokens=finals,
                   pairs=PairScores(snaps, np.array(['t1'] * 20), margin > 0, margin), budget_m=float(milestones[-1]))

# ---------------------------------------------------------------- decisions between configurations, by hand

def test_config_decisions_by_hand():
    t = worked_example()
    x, y = by_run(t, '25'), by_run(t, 'final')
    pairs = config_pairs(x, y)
    assert pairs[['dataset', 'right']].values.tolist() == [['a', 1], ['a', 1], ['a', 0], ['b', 0]]   # never a vs b
    a = x.index.get_level_values('dataset') == 'a'
    assert config_decision_accuracy(x[a], y[a]) == pytest.approx(2/3) and config_decision_accuracy(x, y) == 0.5
    d = config_decisions(pd.DataFrame({'raw': x, 'flat': x * 0}), y, n_boot=0)
    assert d.loc['raw', ['n_configs', 'n_pairs']].tolist() == [5, 4] and d.loc['flat', 'decision_accuracy'] == 0.5   # ties count one half
    assert d.loc['flat', 'gain'] == 0 and math.isnan(d.loc['raw', 'decision_ci_low'])

def test_pairs_tied_at_the_end_are_left_out():
    t = table([('a', '20m', m, v, 0, acc) for v, accs in [(8000, (.5, .7)), (16000, (.6, .7)), (32000, (.55, .8))] for m, acc in zip(('25', 'final'), accs)])
    x, y = by_run(t, '25'), by_run(t, 'final')
    assert config_pairs(x, y)['right'].isna().sum() == 1
    assert config_decision_accuracy(x, y) == pytest.approx(0.5)   # 8000 vs 32000 right, 16000 vs 32000 wrong

def test_bootstrap_over_configurations_and_seeds():
    t = worked_example()
    x, y = by_run(t, '25'), by_run(t, 'final')
    one = lambda seed: config_decisions(pd.DataFrame({'raw': x}), y, n_boot=300, rng=np.random.default_rng(seed))
    assert one(3).equals(one(3))
    lo, hi = one(3).loc['raw', ['decision_ci_low', 'decision_ci_high']]
    assert 0 <= lo <= 0.5 <= hi <= 1 and lo < hi
    two = table([('c', s, m, 8000, seed, a) for s, accs in [('20m', [(.50, .60), (.52, .61)]), ('60m', [(.55, .58), (.57, .59)])]
                 for seed, acc in enumerate(accs) for m, a in zip(('25', 'final'), acc)])   # seeds never overlap: every resample decides it wrong
    d = config_decisions(pd.DataFrame({'raw': by_run(two, '25'), 'reversed': -by_run(two, '25')}), by_run(two, 'final'), n_boot=200)
    assert d.loc['raw', ['decision_accuracy', 'decision_ci_low', 'decision_ci_high']].tolist() == [0, 0, 0]
    assert d.loc['reversed', ['gain', 'gain_ci_low', 'gain_ci_high']].tolist() == [1, 1, 1]   # paired: the same draws for both

# ---------------------------------------------------------------- predictors

def test_extrapolation_recovers_a_power_law_and_falls_back():
    t = np.array([25., 50, 100, 250, 500])
    assert fit_curve(t, power_law(t / 2000, .78, .03, .6), 2000) == pytest.approx(.78, abs=1e-6)
    rows = [('a', '20m', m, v, 0, power_law(float(m) / 2000, a, .03, .6)) for v, a in [(8000, .7), (16000, .75)] for m in ('25', '50', '100', '250')]
    o = table(rows + [('a', '20m', 'final', v, 0, a) for v, a in [(8000, .7), (16000, .75)]])
    p = predictions(Results(o, None, missing_snapshots(o), 't'), budget=2000).query("predictor == 'extrapolated'").set_index(['milestone', 'vocab_size'])
    assert p.loc[('250', 16000), 'score'] == pytest.approx(.75, abs=1e-5) and p.loc[('250', 16000), 'note'] == 'fit'
    assert p.loc[('100', 8000), 'note'] == 'fallback: smoothed (3 point(s))'
    assert p.loc[('100', 8000), 'score'] == pytest.approx(np.mean([power_law(m / 2000, .7, .03, .6) for m in (25, 50, 100)]))

def test_a_failed_fit_falls_back_and_says_why(monkeypatch):
    def fail(*a, **k): raise RuntimeError('Optimal parameters not found')
    monkeypatch.setattr(lmeff.decide.optimize, 'curve_fit', fail)
    res = random_study(np.random.default_rng(0), datasets=('a',))
    p = predictions(res, milestones=['250']).query("predictor == 'extrapolated'")
    assert set(p['note']) == {'fallback: smoothed (no fit: Optimal parameters not found)'}
    smoothed = predictions(res, milestones=['250']).query("predictor == 'smoothed'")
    assert p['score'].tolist() == smoothed['score'].tolist()

def test_no_predictor_reads_final_or_a_later_milestone():
    "With the default budget (the planned one): the predictions at t stay the same, to the last bit, when (a) later milestones' and final's scores change, (b) later rows are dropped, (c) the finals' tokens_seen change."
    rng = np.random.default_rng(7)
    res = random_study(rng)
    before = predictions(res)
    assert set(before['predictor']) == {'raw', 'smoothed', 'extrapolated', 'margin', 'filtered'}
    for m in ('25', '75', '250'):
        later = lambda t: (t['milestone'] == 'final') | (t['milestone'].map(lambda x: math.inf if x == 'final' else float(x)) > float(m))
        o = res.overall.assign(acc=np.where(later(res.overall), rng.random(len(res.overall)), res.overall['acc']))
        t = res.tasks.assign(acc=np.where(later(res.tasks), rng.random(len(res.tasks)), res.tasks['acc']))
        margin = np.where(later(res.pairs.snapshots).to_numpy()[:, None], rng.normal(0, 5, res.pairs.margin.shape), res.pairs.margin)
        noisy = dataclasses.replace(res, overall=o, tasks=t, pairs=PairScores(res.pairs.snapshots, res.pairs.task, margin > 0, margin))
        keep = ~later(res.pairs.snapshots).to_numpy()
        dropped = dataclasses.replace(res, overall=res.overall[~later(res.overall)].reset_index(drop=True), tasks=res.tasks[~later(res.tasks)].reset_index(drop=True),
                                      missing=res.missing.iloc[:0], pairs=PairScores(res.pairs.snapshots[keep].reset_index(drop=True), res.pairs.task,
                                                                                     res.pairs.correct[keep], res.pairs.margin[keep]))
        longer = dataclasses.replace(res, final_tokens=res.final_tokens.assign(tokens_seen=4e9))
        assert not noisy.overall.equals(res.overall) and 'final' not in set(dropped.overall['milestone'])
        for changed in (noisy, dropped, longer):
            pd.testing.assert_frame_equal(predictions(changed, milestones=[m]), before[before.milestone == m].reset_index(drop=True), check_exact=True)

def test_one_planned_budget_for_extrapolation_and_shares():
    "The finals' tokens_seen differ between data sets; extrapolation and every group's share of the budget use the same planned budget: the largest milestone."
    res = random_study(np.random.default_rng(8), datasets=('a', 'b'))
    res = dataclasses.replace(res, budget_m=None, final_tokens=res.final_tokens.assign(tokens_seen=np.where(res.final_tokens['dataset'] == 'a', 1e9, 3e9)))
    preds = predictions(res)
    pd.testing.assert_frame_equal(preds, predictions(res, budget=500.0))
    dec = lmeff.decide.score_predictions(res, preds, n_boot=0)
    assert dec['budget_m'].eq(500).all() and np.allclose(dec['budget_share'], dec['tokens_m'] / 500)
    assert lmeff.decide.planned_budget(res) == 500 and lmeff.decide.planned_budget(dataclasses.replace(res, budget_m=2000.0)) == 2000

def test_margin_is_read_from_the_pair_files(tmp_path):
    rng = np.random.default_rng(2)
    good = {}
    for seed, v, m in itertools.product((0, 1), (8000, 16000), ('25', '50', 'final')):
        d = results_dir(tmp_path, dict(dataset='a', model_config='20m', seed=seed, vocab_size=v, milestone=m))
        d.mkdir(parents=True)
        g, b = rng.normal(-10, 1, 6), rng.normal(-10, 1, 6)
        good[(seed, v, m)] = (g - b).mean()
        (d/RESULTS_FILE).write_text('{"results": {"blimp": {"acc,none": %r}}}' % float((g > b).mean()))
        np.savez(d/PAIRS_FILE, task=np.array(['t'] * 6), pairID=np.array([str(i) for i in range(6)]), logp_good=g, logp_bad=b)
    res = gather(tmp_path, progress=False)
    assert res.pairs.margin.shape == (12, 6) and np.array_equal(res.pairs.correct, res.pairs.margin > 0)
    p = predictions(res).query("predictor == 'margin'")
    assert {(r.seed, r.vocab_size, r.milestone): r.score for r in p.itertuples()} == pytest.approx({k: v for k, v in good.items() if k[2] != 'final'})
    # fewer pairs in a final and in a later snapshot, then no pair file for a final: the margins at 25M stay the same
    for seed, v, m, n in [(0, 8000, 'final', 3), (1, 16000, '50', 4), (1, 8000, 'final', 0)]:
        d = results_dir(tmp_path, dict(dataset='a', model_config='20m', seed=seed, vocab_size=v, milestone=m))
        with np.load(d/PAIRS_FILE) as z: arr = {k: z[k] for k in z.files}
        (d/PAIRS_FILE).unlink()
        if n: np.savez(d/PAIRS_FILE, **{k: a[:n] for k, a in arr.items()})
        again = predictions(gather(tmp_path, progress=False), milestones=['25']).query("predictor == 'margin'").reset_index(drop=True)
        pd.testing.assert_frame_equal(again, p[p.milestone == '25'].reset_index(drop=True), check_exact=True)

# ---------------------------------------------------------------- the honest choice

def test_the_choice_for_a_data_set_never_sees_it():
    rng = np.random.default_rng(3)
    res = random_study(rng)
    preds = predictions(res)
    choice, chosen = honest_choice(res, preds)
    assert len(choice) == 3 * preds['milestone'].nunique() and set(chosen['predictor']) == {CHOSEN}
    o = res.overall.copy()   # shuffle data set a's final scores: the choice for a must not move, the choices for b and c may
    fa = (o['dataset'] == 'a') & (o['milestone'] == 'final')
    o.loc[fa, 'acc'] = rng.permutation(o.loc[fa, 'acc'].to_numpy())
    choice2, _ = honest_choice(Results(o, res.tasks, res.missing, 'x', pairs=res.pairs), preds)
    a = lambda c: c[c['dataset'] == 'a'][['milestone', 'chosen', 'decision_accuracy_others']].reset_index(drop=True)
    pd.testing.assert_frame_equal(a(choice), a(choice2))
    for r in chosen.itertuples():   # the chosen scores are the chosen predictor's own
        own = preds[(preds.predictor == r.note) & (preds.milestone == r.milestone) & (preds.dataset == r.dataset) & (preds.model_size == r.model_size)
                    & (preds.vocab_size == r.vocab_size) & (preds.seed == r.seed)]
        assert own['score'].item() == r.score

def test_one_data_set_has_no_honest_choice(tmp_path):
    res = random_study(np.random.default_rng(4), datasets=('a',))
    T = decision_tables(res, n_boot=20)
    assert T['honest_choice.csv'].empty and CHOSEN not in set(T['decisions.csv']['predictor'])
    r = analyze(res, tmp_path, n_boot=20, png=False, progress=False)
    md = (tmp_path/'summary.md').read_text()
    assert 'With a single data set no predictor can be chosen without looking at the data it is judged on: raw accuracy is the answer.' in md
    assert (tmp_path/'figures'/'decision_frontier.html').is_file() and set(r['decisions']['decisions.csv']['predictor']) == {'raw', 'smoothed', 'extrapolated', 'margin', 'filtered'}

# ---------------------------------------------------------------- signal, noise and seeds

def test_signal_and_noise_by_hand():
    sn = signal_noise(worked_example(), by=('dataset',)).set_index(['group', 'milestone'])
    assert sn.loc[('a', 'final'), ['signal', 'noise', 'snr']].tolist() == pytest.approx([.04, .02 / math.sqrt(2), 2 * math.sqrt(2)])
    # all runs: a's variance of configuration means (2 degrees of freedom) pooled with b's (1)
    assert sn.loc[('all', 'final'), 'signal'] == pytest.approx(math.sqrt((2 * np.var([.71, .75, .79], ddof=1) + np.var([.67, .71], ddof=1)) / 3))

def high_and_low_snr():
    """Data set a, three configurations of two seeds. Per task at 25M: `clear` (means .60, .70, .80, seeds ±.005), `mid` (means .62, .64, .66, seeds ±.005, ±.015, ±.005)
    and `noisy` (every mean .65, seeds ±.05); at 50M `noisy` and `mid` swap roles: the kept tasks must be chosen at each milestone."""
    runs = [(i, v, seed, 1 - 2 * seed) for i, v in enumerate((8000, 16000, 32000)) for seed in (0, 1)]
    clear = lambda i, s: [.60, .70, .80][i] + .005 * s
    mid = lambda i, s: [.62, .64, .66][i] + [.005, .015, .005][i] * s
    flat = lambda i, s: .65 + .05 * s * (-1)**i
    tasks = {'25': dict(clear=clear, mid=mid, noisy=flat), '50': dict(clear=lambda i, s: clear(i, s) + .01, mid=flat, noisy=lambda i, s: [.60, .75, .90][i] + .005 * s),
             'final': dict(clear=lambda i, s: clear(i, s) + .1, mid=lambda i, s: mid(i, s) + .1, noisy=lambda i, s: flat(i, s) + .1)}
    t = check_table(pd.DataFrame([('a', '20m', m, v, seed, k, f(i, s)) for m, fs in tasks.items() for k, f in fs.items() for i, v, seed, s in runs],
                                 columns=TASK_COLUMNS), 'tasks', TASK_COLUMNS)
    close = lambda i, s: [.62, .63, .64][i] + [.005, .015, .005][i] * s   # unequal seed spreads: pooled noise
    overall = {'25': close, '50': lambda i, s: close(i, s) + .01, 'final': lambda i, s: [.70, .72, .74][i] + .005 * s}
    o = table([('a', '20m', m, v, seed, f(i, s)) for m, f in overall.items() for i, v, seed, s in runs])
    return Results(o, t, missing_snapshots(o), 'snr')

def test_filtered_keeps_the_tasks_of_high_snr_chosen_at_each_milestone():
    res = high_and_low_snr()
    tsn = signal_noise(res.tasks, by=()).set_index(['milestone', 'task'])
    pooled = math.sqrt(np.mean([2 * .005**2, 2 * .015**2, 2 * .005**2]))   # √(mean of the seed variances), not the mean of the seed std's
    assert tsn.loc[('25', 'clear'), ['signal', 'noise', 'snr']].tolist() == pytest.approx([.1, .005 * math.sqrt(2), .1 / (.005 * math.sqrt(2))])
    assert tsn.loc[('25', 'mid'), ['signal', 'noise', 'snr']].tolist() == pytest.approx([.02, pooled, .02 / pooled])
    assert tsn.loc[('25', 'noisy'), 'snr'] == pytest.approx(0, abs=1e-9) and tsn.loc[('50', 'mid'), 'snr'] == pytest.approx(0, abs=1e-9)
    f = predictions(res, keep=0.5).query("predictor == 'filtered'").set_index(['milestone', 'vocab_size', 'seed'])
    tasks = res.tasks.set_index(['milestone', 'vocab_size', 'seed', 'task'])['acc']
    for (m, v, seed), r in f.iterrows():   # ⌈0.5·3⌉ = 2 tasks: clear and mid at 25M; noisy (now the clearest) and clear at 50M
        kept = ('clear', 'mid') if m == '25' else ('noisy', 'clear')
        assert r.score == pytest.approx(np.mean([tasks[(m, v, seed, k)] for k in kept]))
        assert r.note == f"2 of 3 tasks, SNR ≥ {tsn.loc[(m, kept[1]), 'snr']:.2f}"
    assert f.loc[('25', 8000, 0), 'score'] == pytest.approx((.605 + .625) / 2) and f.loc[('50', 8000, 0), 'score'] == pytest.approx((.615 + .605) / 2)
    sn = signal_noise(res.overall, by=())
    assert sn.set_index('milestone').loc['25', 'noise'] == pytest.approx(pooled)
    med = lmeff.decide.seeds_table(res.overall, sn).query("milestone == '25' and gap_is == 'median between configurations'").iloc[0]
    assert med.gap == pytest.approx(.01) and med.noise == pytest.approx(pooled)   # gaps .01, .02, .01 between the means .62, .63, .64
    assert med.seeds == math.ceil(2 * (stats.norm.ppf(0.9) * pooled / .01)**2) == 7   # the mean of the std's would say 5

def test_seeds_needed_is_the_smallest_enough():
    z = stats.norm.ppf(0.9)
    for sigma, gap in [(0.01, 0.01), (0.008, 0.005), (0.02 / math.sqrt(2), 0.01), (0.011, 0.02)]:
        n = seeds_needed(sigma, gap)
        assert n == max(1, math.ceil(2 * (z * sigma / gap)**2))
        assert stats.norm.cdf(gap * math.sqrt(n / 2) / sigma) >= 0.9 - 1e-12
        if n > 1: assert stats.norm.cdf(gap * math.sqrt((n - 1) / 2) / sigma) < 0.9
    assert seeds_needed(0.02 / math.sqrt(2), 0.01) == 7 and math.isnan(seeds_needed(math.nan, 0.01))

# ---------------------------------------------------------------- the answer

def test_decide_at_first_milestone_reaching_the_target():
    dec = pd.DataFrame({'predictor': 'raw', 'scope': 'global', 'group': 'all', 'milestone': ['25', '50', '100'], 'tokens_m': [25., 50, 100],
                        'budget_share': [.25, .5, 1], 'n_pairs': 10, 'decision_accuracy': [.5, .9, .8], 'decision_ci_low': [.2, .6, .5], 'decision_ci_high': [.8, 1, .9]})
    r = decide_at(dec).iloc[0]
    assert (r.milestone, r.decision_accuracy, r.stays_above, r.best_milestone) == ('50', .9, False, '50')
    assert pd.isna(decide_at(dec, target=.95).iloc[0].milestone)

def test_summary_text_is_built_from_the_values_used():
    from lmeff.report import decision_summary
    T = decision_tables(random_study(np.random.default_rng(9), datasets=('a', 'b')), n_boot=20, level=0.8, k=2, keep=0.25, confidence=0.75, budget=1000.0)
    md = '\n'.join(decision_summary(T))
    assert '`smoothed` (the mean of the last 2)' in md and 'the accuracy on the quarter of the tasks' in md and 'at least 4 of them' in md
    assert '80% CI' in md and '95% CI' not in md and 'read at the planned token budget, 1B' in md and 'never the tokens a final checkpoint really saw' in md
    assert f"75% confidence needs n ≥ 2·({stats.norm.ppf(0.75):.4f}·σ/Δ)²" in md and '1.2816' not in md and 'pooled seed standard deviation' in md
    assert T['seeds_needed.csv']['confidence'].eq(0.75).all() and T['decisions.csv']['budget_m'].eq(1000).all()

def test_downstream_scores_get_the_same_tables(tmp_path):
    res = random_study(np.random.default_rng(5), datasets=('a', 'b'))
    o = res.overall.assign(acc=res.overall['acc'] * 2 - 1)   # a Matthews correlation can be negative
    down = Results(o, None, res.missing, 'glue', metric='cola')
    r = analyze(down, tmp_path, n_boot=20, png=False, progress=False)
    assert set(r['decisions']['predictions.csv']['predictor']) == {'raw', 'smoothed', 'extrapolated', CHOSEN}
    assert (tmp_path/'decisions.csv').is_file() and 'task_signal_noise.csv' not in r['decisions']

@pytest.fixture(scope='module')
def published(tmp_path_factory):
    from conftest import SHARED_DATA
    ref = SHARED_DATA/'reference-results'
    if not (ref/'blimp_all_overall.csv').is_file(): pytest.skip(f"the published tables are not at {ref}")
    out = tmp_path_factory.mktemp('published')
    assert main(['analyze', '--results', str(ref/'blimp_all_overall.csv'), '--out', str(out), '--bootstrap', '50', '--no-png']) == 0
    return ref, out

def test_published_study_recomputed_with_pandas_and_scipy(published):
    ref, out = published
    o = pd.read_csv(ref/'blimp_all_overall.csv', dtype={'milestone': str})
    dec = pd.read_csv(out/'decisions.csv', dtype={'milestone': str, 'group': str})
    raw = dec[(dec.predictor == 'raw') & (dec.scope == 'dataset')]
    # the numbers: within a data set, the mean over the 3 data sets of 15 pairs each
    assert raw.groupby('milestone')['decision_accuracy'].mean()[['100', '250', '500', '750']].round(2).tolist() == [0.42, 0.67, 0.84, 0.93]
    g = o[o.dataset == 'tinystories']
    final = g[g.milestone == 'final'].groupby(CONFIG)['acc'].mean()
    for m in ['25', '100', '250', '750', '2000']:
        now = g[g.milestone == m].groupby(CONFIG)['acc'].mean()
        right = [np.sign(now[a] - now[b]) == np.sign(final[a] - final[b]) for a, b in itertools.combinations(final.index, 2)]
        row = raw[(raw.group == 'tinystories') & (raw.milestone == m)].iloc[0]
        assert (row.n_pairs, row.decision_accuracy) == (15, pytest.approx(np.mean(right)))
        both = g[g.milestone.isin([m, 'final'])].pivot_table(index=['model_size', 'vocab_size', 'seed'], columns='milestone', values='acc').dropna()
        assert row.n_runs == len(both) and row.spearman == pytest.approx(stats.spearmanr(both[m], both['final']).statistic)
        assert row.kendall_tau_b == pytest.approx(stats.kendalltau(both[m], both['final']).statistic)
        assert row.decision_ci_low <= row.decision_accuracy <= row.decision_ci_high
    sn = pd.read_csv(out/'signal_noise.csv', dtype={'milestone': str}).query("group == 'tinystories' and milestone == 'final'").iloc[0]
    f = g[g.milestone == 'final'].groupby(CONFIG)['acc']
    noise = math.sqrt(f.var().mean())   # pooled: the root of the mean seed variance
    assert sn.signal == pytest.approx(f.mean().std()) and sn.noise == pytest.approx(noise) and sn.snr == pytest.approx(f.mean().std() / noise)
    per_ds = pd.read_csv(out/'signal_noise.csv', dtype={'milestone': str}).query("scope == 'dataset' and milestone == 'final'")
    assert per_ds['noise'].round(3).between(0.007, 0.012).all() and per_ds['signal'].round(3).between(0.010, 0.019).all()   # pooled noise
    assert per_ds['snr'].round(1).between(1.2, 1.6).all()
    seeds = pd.read_csv(out/'seeds_needed.csv', dtype={'milestone': str}).query("group == 'tinystories' and milestone == 'final' and gap == 0.01")
    assert seeds['seeds'].item() == math.ceil(2 * (stats.norm.ppf(0.9) * noise / 0.01)**2)

def test_published_study_answer(published):
    ref, out = published
    names = {p.name for p in out.iterdir()}
    assert {'predictions.csv', 'decisions.csv', 'decide_at.csv', 'honest_choice.csv', 'wrong_pairs.csv', 'signal_noise.csv', 'task_signal_noise.csv',
            'seeds_needed.csv'} <= names and (out/'figures'/'decision_frontier.html').is_file()
    md = (out/'summary.md').read_text()
    assert '- **all runs** (45 pairs): with raw accuracy you can decide at **750M** tokens (37.5% of the budget) with decision accuracy 0.93' in md
    assert '- **tinystories** (15 pairs): with raw accuracy you cannot decide' in md
    assert 'with predictor `extrapolated` (chosen on the other data sets) you can decide at **250M** tokens (12.5% of the budget)' in md
    assert '**Does a predictor beat raw accuracy, chosen honestly?** No: over all runs it decides no earlier than raw accuracy (both at 750M).' in md
    preds = pd.read_csv(out/'predictions.csv', dtype={'milestone': str})
    assert set(preds['predictor']) == {'raw', 'smoothed', 'extrapolated', 'filtered', CHOSEN}   # no margin: the tables have accuracies only
    assert 'final' not in set(preds['milestone'])
    wrong = pd.read_csv(out/'wrong_pairs.csv', dtype={'milestone': str}).query("predictor == 'raw' and milestone == '750'")
    assert len(wrong) == 3 and wrong['final_gap'].is_monotonic_decreasing

def test_cli_rejects_a_bad_decision_target(tmp_path, capsys):
    assert main(['analyze', '--results', str(tmp_path/'x.csv'), '--out', str(tmp_path/'o'), '--decision-target', '1.5']) == 2
    assert '--decision-target must be a decision accuracy in (0, 1], got 1.5' in capsys.readouterr().err
