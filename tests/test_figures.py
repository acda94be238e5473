"Figures a reader understands without the code (lmeff.figures): human labels, a log token axis with units, the minimal pairs' own name, one colour-blind- and greyscale-safe look, self-contained HTML and notebook images."
import base64, json, re
import pandas as pd
import pytest
from lmeff.analysis import OVERALL_COLUMNS, TASK_COLUMNS, Results, check_table, early_prediction, missing_snapshots
from lmeff.blimp_tasks import BLIMP_TASKS
from lmeff.synthetic import SYNTHETIC_TASKS
from lmeff.figures import (OKABE_ITO, Figure, analysis_charts, pairs_name, plot_correlations, plot_frontier, plot_learning_curves, plot_phenomena,
                           plot_tasks, plot_vocab, save_chart, tokens_label)
from lmeff.runs import plot_run

MILESTONES = ['0.0125', '0.025', '25', '1000', '2000']
RAW = {'model_size', 'vocab_size', 'kendall_tau_b', 'r2', 'decision_accuracy', 'spearman', 'tokens_m', 'acc', 'vocab', 'value', 'lo', 'hi', 'scope', 'line'}

def overall(milestones=MILESTONES, final=True, vocabs=(512, 1024)):
    rows = [(d, s, m, v, seed, .5 + .01*i + .02*seed + .03*j + (.05 if d == 'b' else 0))
            for d in 'ab' for s in ('tiny', '20m') for j, v in enumerate(vocabs) for seed in (0, 1)
            for i, m in enumerate(list(milestones) + (['final'] if final else []))]
    return check_table(pd.DataFrame(rows, columns=OVERALL_COLUMNS), 'test')

def tasks_of(o, names):
    return pd.concat([o.assign(task=t, acc=o.acc + i/200) for i, t in enumerate(names)])[TASK_COLUMNS]

def texts(spec)->list[str]:
    "Every title, legend/axis/header title and label string anywhere in a chart spec (data sets left out)."
    spec = {k: v for k, v in spec.items() if k != 'datasets'}
    out = []
    def walk(x, key=None):
        if isinstance(x, dict):
            for k, v in x.items(): walk(v, k)
        elif isinstance(x, list):
            for v in x: walk(v, key)
        elif isinstance(x, str) and key in ('title', 'text', 'subtitle'): out.append(x)
    walk(spec); return out

def channel_titles(spec)->list:
    "The title of every encoding channel and facet header (None where the field name would be shown)."
    out = []
    def walk(x):
        if isinstance(x, dict):
            for k, v in x.items():
                if k in ('encoding', 'facet') and isinstance(v, dict):
                    for ch, enc in v.items():
                        if isinstance(enc, dict) and 'field' in enc and ch not in ('tooltip', 'text', 'y2', 'x2', 'detail'):
                            out.append((ch, enc['field'], enc.get('title', '<field name>')))
                walk(v)
        elif isinstance(x, list):
            for v in x: walk(v)
    walk(spec); return out

def test_tokens_label_has_units():
    assert [tokens_label(m) for m in (0.0125, 0.025, 25, 250, 1000, 2000)] == ['12.5K', '25K', '25M', '250M', '1B', '2B']

@pytest.mark.parametrize('make', ['curves', 'correlations', 'phenomena', 'tasks', 'vocab'])
def test_no_raw_column_names_in_titles(make):
    o = overall(); t = tasks_of(o, ['wh_island', 'passive_1'])
    chart = dict(curves=lambda: plot_learning_curves(o, 'BLiMP'), correlations=lambda: plot_correlations(early_prediction(o, n_boot=10, progress=False)),
                 phenomena=lambda: plot_phenomena(t), tasks=lambda: plot_tasks(t), vocab=lambda: plot_vocab(o))[make]()
    spec = chart.to_dict()
    for ch, field, title in channel_titles(spec):
        if ch in ('x', 'y') and title is None: continue   # heatmap axes: the tick labels say it
        assert title != '<field name>' and title not in RAW, (ch, field, title)
    assert not RAW & set(texts(spec))

def test_token_axis_is_log_with_unit_ticks():
    spec = plot_learning_curves(overall()).to_dict()
    xs = [enc['x'] for enc in _encodings(spec) if enc.get('x', {}).get('field') == 'tokens_m']
    assert xs and all(x['scale']['type'] == 'log' and x['title'] == 'tokens seen' for x in xs)
    axis = xs[0]['axis']
    assert axis['values'] == [0.0125, 0.025, 25.0, 1000.0, 2000.0, 4000.0]   # the milestones, then `final` one log step on
    assert "'final'" in axis['labelExpr'] and "'B'" in axis['labelExpr'] and "'K'" in axis['labelExpr']
    ep = early_prediction(overall(), n_boot=10, progress=False)
    xs = [enc['x'] for enc in _encodings(plot_correlations(ep).to_dict()) if enc.get('x', {}).get('field') == 'tokens_m']
    assert xs and all(x['scale']['type'] == 'log' and 'B' in x['axis']['labelExpr'] for x in xs)

def _encodings(spec):
    out = []
    def walk(x):
        if isinstance(x, dict):
            if isinstance(x.get('encoding'), dict): out.append(x['encoding'])
            for v in x.values(): walk(v)
        elif isinstance(x, list):
            for v in x: walk(v)
    walk({k: v for k, v in spec.items() if k != 'datasets'}); return out

def test_statistics_have_human_names():
    ep = early_prediction(overall(), n_boot=10, progress=False)
    c = plot_correlations(ep)
    stats = set(c.vconcat[0].layer[1].data['statistic'])
    assert stats == {'Spearman ρ', 'R² (Pearson)', 'Kendall τ-b', 'pairwise decision accuracy'}
    assert {'within each data set', 'within each model size'} <= set(texts(c.to_dict()))

def test_minimal_pairs_are_named_by_their_data_set():
    assert pairs_name(SYNTHETIC_TASKS) == 'synthetic minimal pairs' and pairs_name(BLIMP_TASKS) == 'BLiMP' and pairs_name(None) == 'minimal pairs'
    o = overall()
    syn = tasks_of(o, SYNTHETIC_TASKS)
    charts = analysis_charts(Results(o, syn, missing_snapshots(o), 'x'), early_prediction(o, n_boot=10, progress=False))
    for name, chart in charts.items():
        words = ' '.join(texts(chart.to_dict()))
        assert 'BLiMP' not in words and 'synthetic minimal pairs' in words, name
    phen = set(plot_phenomena(syn).data['phenomenon'])
    assert phen == {'subject-verb agreement', 'determiner-noun agreement', 'anaphor agreement'}   # never 'other'
    blimp = analysis_charts(Results(o, tasks_of(o, ['wh_island']), missing_snapshots(o), 'x'), early_prediction(o, n_boot=10, progress=False))
    assert 'BLiMP accuracy by tokens seen' in texts(blimp['learning_curves'].to_dict())

def test_one_colour_blind_safe_look_in_every_figure():
    o = overall(); t = tasks_of(o, ['wh_island', 'passive_1'])
    ep = early_prediction(o, n_boot=10, progress=False)
    charts = [plot_learning_curves(o), plot_correlations(ep), plot_phenomena(t), plot_tasks(t), plot_vocab(o)]
    configs = [c.to_dict()['config'] for c in charts]
    assert all(cfg == configs[0] for cfg in configs)   # one theme
    assert configs[0]['legend']['symbolOpacity'] == 1   # legend swatches not pale
    for c in (charts[0], charts[1], charts[4]):   # categorical series: Okabe–Ito colours with a shape and a dash each
        encs = [e for e in _encodings(c.to_dict()) if 'color' in e and e['color'].get('type') == 'nominal']
        assert encs and all(e['color']['scale']['range'][0] in OKABE_ITO for e in encs)
        assert any('shape' in e and 'strokeDash' in e for e in _encodings(c.to_dict()))
    for c in (charts[2], charts[3]):   # heatmaps: viridis (monotone lightness)
        assert 'viridis' in json.dumps(c.to_dict()['vconcat'] if 'vconcat' in c.to_dict() else c.to_dict())

def test_html_is_self_contained_and_png_rendered(tmp_path):
    o = overall()
    html, png = save_chart(plot_learning_curves(o), tmp_path/'lc')
    text = html.read_text()
    assert not re.search(r'<script[^>]+src=', text) and 'cdn.jsdelivr' not in text   # Vega, Vega-Lite and vega-embed inlined
    assert 'vegaEmbed' in text and len(text) > 500_000
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'

def test_notebook_figures_carry_a_png(tmp_path):
    summary = pd.DataFrame({'milestone': ['0.0125', '0.025', 'final'], 'tokens_seen': [12800, 25600, 25600], 'eval_loss': [3.0, 2.5, 2.5],
                            'synthetic': [.5, .6, .6], 'blimp': [.52, .55, .55]})
    fig = plot_run(summary, 'run')
    assert isinstance(fig, Figure)
    bundle = fig._repr_mimebundle_()
    assert base64.b64decode(bundle['image/png'])[:8] == b'\x89PNG\r\n\x1a\n'
    import nbformat   # the bundle can be saved in a notebook (Altair 6's Vega-Lite mimetype cannot)
    nbformat.validate(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output('display_data', data=bundle)])]))
    assert set(fig.chart.data['benchmark']) == {'synthetic minimal pairs', 'BLiMP'}
    x = fig.chart.to_dict()['encoding']['x']
    assert x['scale']['type'] == 'log' and x['title'] == 'tokens seen'

def test_decision_frontier_reads_without_the_code():
    from lmeff.decide import decision_tables
    o = overall()
    dec = decision_tables(Results(o, None, missing_snapshots(o), 'x'), n_boot=10)['decisions.csv']
    spec = plot_frontier(dec, 0.8, 'BLiMP').to_dict()
    for ch, field, title in channel_titles(spec):
        assert title != '<field name>' and title not in RAW, (ch, field, title)
    assert not RAW & set(texts(spec)) and 'How early each predictor picks the better configuration (BLiMP)' in texts(spec)
    x = [e['x'] for e in _encodings(spec) if e.get('x', {}).get('field') == 'budget_share'][0]
    assert x['scale']['type'] == 'log' and x['title'] == 'share of the token budget' and x['axis']['format'] == '.3~%'
    assert set(plot_frontier(dec, smoothed=2).data['predictor']) == {'raw accuracy', 'mean of the last 2 milestones', 'extrapolated learning curve', 'chosen on the other data sets'}
    assert 'mean of the last milestones' in set(plot_frontier(dec).data['predictor'])   # the label says the k used, or none: never a default
    assert plot_frontier(dec[dec['scope'] == 'model_size']) is None   # no panel without pairs within a data set
    assert 'decision_frontier' in analysis_charts(Results(o, None, missing_snapshots(o), 'x'), early_prediction(o, n_boot=10, progress=False), decisions=dec)
