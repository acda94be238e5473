"The figures of an analysis open in a real browser, offline: headless Chromium draws every HTML figure (no CDN, no console errors)."
import re, shutil, subprocess
import pandas as pd
import pytest
from lmeff.analysis import OVERALL_COLUMNS, TASK_COLUMNS, Results, check_table, missing_snapshots
from lmeff.report import analyze
from lmeff.synthetic import SYNTHETIC_TASKS

BROWSER = next((b for b in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium on PATH (Debian: apt-get install -y chromium)")
OFFLINE = ['--headless', '--no-sandbox', '--disable-gpu', '--proxy-server=127.0.0.1:9', '--proxy-bypass-list=<-loopback>',   # every fetch fails
           '--enable-logging=stderr', '--v=0', '--virtual-time-budget=10000', '--window-size=1600,2400', '--hide-scrollbars']

def browse(*args)->subprocess.CompletedProcess:
    return subprocess.run([BROWSER, *OFFLINE, *map(str, args)], capture_output=True, text=True, timeout=120)

def demo_like_results()->Results:
    "What `lmeff demo` analyses: tiny runs on the synthetic corpus, anchors at thousands of tokens, scored on the synthetic minimal pairs."
    rows = [('synthetic', size, m, vocab, seed, .5 + .04*i + .01*seed + (.03 if size == 'small' else 0) + (.01 if vocab == 1024 else 0))
            for size in ('tiny', 'small') for vocab in (512, 1024) for seed in (0, 1)
            for i, m in enumerate(['0.0125', '0.025', '0.05', 'final'])]
    overall = check_table(pd.DataFrame(rows, columns=OVERALL_COLUMNS), 'demo')
    tasks = pd.concat([overall.assign(task=t, acc=overall.acc + k/100) for k, t in enumerate(SYNTHETIC_TASKS)])[TASK_COLUMNS]
    return Results(overall, tasks, missing_snapshots(overall), 'demo')

@pytest.fixture(scope='module')
def figures(tmp_path_factory):
    out = tmp_path_factory.mktemp('analysis')
    analyze(demo_like_results(), out, n_boot=20, png=False, progress=False)
    return sorted((out/'figures').glob('*.html'))

def test_every_figure_renders_offline(figures, tmp_path):
    from PIL import Image
    assert [f.stem for f in figures] == ['correlations', 'decision_frontier', 'learning_curves', 'phenomena', 'tasks', 'vocab_sizes']
    for f in figures:
        dom = browse('--dump-dom', f.as_uri())
        console = [l for l in dom.stderr.splitlines() if ':CONSOLE' in l]
        assert not console, f"{f.name}: console messages in the browser: {console}"
        svg = re.search(r'<svg[^>]*class="marks"[^>]*width="(\d+)" height="(\d+)"', dom.stdout)
        assert svg and int(svg[1]) > 200 and int(svg[2]) > 150, f"{f.name}: no chart drawn (no sized svg of marks in the page)"
        assert dom.stdout.count('<path') > 10 and 'synthetic minimal pairs' in dom.stdout, f.name
        shot = tmp_path/f'{f.stem}.png'
        browse(f'--screenshot={shot}', f.as_uri())
        inked = sum(Image.open(shot).convert('L').histogram()[:200])   # clearly non-white pixels (a blank page has none; these charts 6,000+)
        assert inked > 3000, f"{f.name}: the screenshot is (nearly) blank: {inked} inked pixels"

def test_a_figure_that_needs_the_network_is_caught(tmp_path):
    "The check itself: a page that loads Vega from a CDN draws nothing offline, and the test sees it."
    page = tmp_path/'cdn.html'
    page.write_text('<html><body><div id="vis"></div><script src="https://cdn.jsdelivr.net/npm/vega@6"></script>'
                    '<script>vegaEmbed("#vis", {"mark": "point"});</script></body></html>')
    dom = browse('--dump-dom', page.as_uri())
    assert any(':CONSOLE' in l and 'vegaEmbed' in l for l in dom.stderr.splitlines()) and 'class="marks"' not in dom.stdout
