import json
import pandas as pd
from lmeff.compare import compare_schedules
from lmeff.config import read_configs
from lmeff.schedule import planned_steps

def test_compare_schedules_end_to_end(tmp_path):
    "The same grid under both schedules: tokens trained match the plan, the comparison tables, figure and report are written."
    r = compare_schedules(tmp_path, seeds=(0,), sizes=('tiny',), vocab_sizes=(512, 1024), words=60_000, n_pairs=40, progress=False)
    acc = {a['schedule']: a for a in r['accounting']}
    assert acc['wsd']['tokens_trained'] == acc['wsd']['tokens_planned'] < acc['cosine']['tokens_trained'] == acc['cosine']['tokens_planned']
    rows = [rc for rc in read_configs(tmp_path/'configs-anchors.csv')]
    assert len(rows) == 2 and all(not rc.full_run for rc in rows)
    tps = rows[0].tokens_per_step()
    assert acc['wsd']['tokens_planned'] == sum(planned_steps(rc, tps, 'wsd', 0.2) * tps for rc in rows)
    assert not any((tmp_path/'wsd'/'runs').glob('*-full.ipynb'))                 # the full runs are trained once
    per_anchor = pd.read_csv(tmp_path/'comparison'/'synthetic_per_anchor.csv', dtype={'milestone': str})
    assert list(per_anchor['milestone']) == ['0.0125', '0.025', '0.05', '0.1'] and (per_anchor['n_runs'] == 2).all()
    assert (per_anchor['max_abs_delta'] >= per_anchor['mean_abs_delta']).all()
    answer = pd.read_csv(tmp_path/'comparison'/'synthetic_answer.csv')
    assert list(answer['schedule']) == ['cosine', 'wsd']
    md = (tmp_path/'comparison'/'schedules.md').read_text()
    same = answer['earliest'].fillna('none').nunique() == 1
    assert 'tokens trained (from the logs)' in md and f"the answer {'does not change' if same else 'changes'}." in md
    assert (tmp_path/'comparison'/'synthetic_learning_curves.html').is_file() and (tmp_path/'comparison'/'synthetic_learning_curves.png').is_file()
    meta = json.loads(next((tmp_path/'wsd'/'models').rglob('milestone-0.1M/milestone_meta.json')).read_text())
    assert meta['schedule'] == 'wsd' and meta['decay_fraction'] == 0.2

def test_schedule_agreement_decides_between_configurations():
    "Per anchor and schedule, the decision accuracy between configurations (seed means): the order of the two vocabularies' means now vs at `final`."
    from lmeff.compare import schedule_agreement
    rows = lambda accs: pd.DataFrame([dict(dataset='synthetic', model_size='tiny', milestone=m, vocab_size=v, seed=s, acc=a)
                                      for (m, v, s), a in accs.items()])
    final = {('final', 512, 0): 0.70, ('final', 512, 1): 0.72, ('final', 1024, 0): 0.80, ('final', 1024, 1): 0.78}
    cosine = rows({('0.1', 512, 0): 0.60, ('0.1', 512, 1): 0.62, ('0.1', 1024, 0): 0.65, ('0.1', 1024, 1): 0.63, **final})   # 1024 ahead, as at the end
    wsd = rows({('0.1', 512, 0): 0.66, ('0.1', 512, 1): 0.64, ('0.1', 1024, 0): 0.61, ('0.1', 1024, 1): 0.63})               # 512 ahead: the wrong call
    per_anchor, _ = schedule_agreement(cosine, wsd)
    assert per_anchor[['decision_final_cosine', 'decision_final_wsd']].values.tolist() == [[1.0, 0.0]]

def test_schedule_decides_with_raw_and_the_chosen_predictor():
    "Per schedule, `lmeff.decide`'s answer over all runs: cosine orders the configurations right from the first anchor, wsd only from the second; schedules.md says so."
    from lmeff.analysis import Results, check_table, missing_snapshots
    from lmeff.compare import _markdown, schedule_agreement, schedule_decisions
    def study(wrong_first):
        rows = [(d, 'tiny', m, v, s, .5 + .02 * i * (-1 if wrong_first and m == '0.025' else 1) + .05 * j + .002 * s + (.2 if m == 'final' else 0))
                for d in ('a', 'b') for i, v in enumerate((512, 1024, 2048)) for s in (0, 1) for j, m in enumerate(('0.025', '0.05', '0.1', 'final'))
                if m != 'final' or not wrong_first]
        o = check_table(pd.DataFrame(rows, columns=['dataset', 'model_size', 'milestone', 'vocab_size', 'seed', 'acc']), 'x', need_end=False)
        return Results(o, None, missing_snapshots(o), 'x', budget_m=0.1)
    cosine, wsd = study(False), study(True)
    d = schedule_decisions({'cosine': cosine, 'wsd': wsd}, n_boot=20).set_index(['schedule', 'predictor'])
    assert d.loc[('cosine', 'raw'), ['milestone', 'budget_share', 'decision_accuracy', 'n_pairs']].tolist() == ['0.025', 0.25, 1.0, 6]
    assert d.loc[('wsd', 'raw'), ['milestone', 'budget_share', 'decision_accuracy']].tolist() == ['0.05', 0.5, 1.0]   # wsd borrows cosine's finals
    assert d.loc[('wsd', 'chosen'), 'milestone'] == '0.05' and d.loc[('cosine', 'raw'), 'ci'] == '95% CI'
    per_anchor, answer = schedule_agreement(cosine.overall, wsd.overall)
    acc = [dict(schedule=k, tokens_planned=1, tokens_trained=1, seconds=1.0) for k in ('cosine', 'wsd')]
    md = _markdown(per_anchor, answer, acc, 'synthetic minimal pairs', 'decay', d.reset_index())
    assert '## Deciding between configurations' in md and '| wsd | raw accuracy | 50K | 50.0% | 1.00 (95% CI 1.00–1.00) | 6 |' in md
    assert '| cosine | chosen honestly | 25K | 25.0% |' in md
