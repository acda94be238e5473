"""Check what `lmeff demo --out DEMO` left in DEMO against what the README says it leaves: every run ok, with its executed
notebook in runs/; the analysis tables, summary.md and figures (.png and .html); and learning curves that rise from chance.

Usage: python tools/check_demo.py DEMO   (exit status 1, naming each problem, when something is missing or wrong)
"""
import sys
from pathlib import Path
import nbformat, pandas as pd

TABLES = ('overall.csv', 'tasks.csv', 'blimp_global_spearman.csv', 'blimp_global_r2.csv', 'early_prediction.csv', 'earliest_milestone.csv',
          'final_copies.csv', 'summary.md', 'predictions.csv', 'decisions.csv', 'decide_at.csv', 'honest_choice.csv', 'wrong_pairs.csv',
          'signal_noise.csv', 'task_signal_noise.csv', 'seeds_needed.csv', 'decision_settings.csv')
FIGURES = ('learning_curves', 'correlations', 'vocab_sizes', 'phenomena', 'tasks', 'decision_frontier')
FINAL_AT_LEAST = 0.6   # mean accuracy of the final checkpoints on the minimal pairs: clearly above chance (0.5)
RISE_AT_LEAST = 0.05   # how far the last anchor's mean accuracy must be above the first anchor's

def run_problems(demo:Path)->list[str]:
    "Every run of the sweep summary ok (or finished earlier), each with an executed notebook that raised nothing."
    summary = pd.read_csv(demo/'sweep_summary.csv', keep_default_na=False)
    found = [f"run {r.run_id}: {r.status} {r.reason}".rstrip() for r in summary.itertuples() if r.status not in ('ok', 'skipped')]
    for run_id in summary['run_id']:
        record = demo/'runs'/f'{run_id}.ipynb'
        if not record.is_file():
            found.append(f"{record}: missing"); continue
        cells = [c for c in nbformat.read(record, as_version=4).cells if c.cell_type == 'code']
        if not cells or any(c.execution_count is None for c in cells): found.append(f"{record}: not every cell was executed")
        if any(o.output_type == 'error' for c in cells for o in c.outputs): found.append(f"{record}: a cell raised an error")
    return found

def learning_problems(overall:Path)->list[str]:
    "The mean accuracy over runs rises from the first anchor to the last, and the final checkpoints are clearly above chance."
    acc = pd.read_csv(overall, dtype={'milestone': str}).groupby('milestone')['acc'].mean()
    anchors = sorted((m for m in acc.index if m != 'final'), key=float)
    if not anchors or 'final' not in acc: return [f"{overall}: expected anchors and final, found milestones {', '.join(acc.index)}"]
    first, last, final = acc[anchors[0]], acc[anchors[-1]], acc['final']
    print(f"mean accuracy on the minimal pairs: {first:.3f} at {anchors[0]}M tokens, {last:.3f} at {anchors[-1]}M, {final:.3f} at final")
    found = []
    if last < first + RISE_AT_LEAST: found.append(f"{overall}: accuracy does not rise: {first:.3f} at the first anchor, {last:.3f} at the last")
    if final < FINAL_AT_LEAST: found.append(f"{overall}: final accuracy {final:.3f} is not clearly above chance (at least {FINAL_AT_LEAST})")
    return found

def problems(demo:Path)->list[str]:
    analysis = demo/'analysis-synthetic'
    found = [f"{p}: missing" for p in [demo/'configs.csv', demo/'sweep_summary.csv'] + [analysis/t for t in TABLES]
             + [analysis/'figures'/(f + ext) for f in FIGURES for ext in ('.png', '.html')] if not p.is_file()]
    if (demo/'sweep_summary.csv').is_file(): found += run_problems(demo)
    if (analysis/'overall.csv').is_file(): found += learning_problems(analysis/'overall.csv')
    return found

if __name__ == '__main__':
    if len(sys.argv) != 2: sys.exit(__doc__)
    demo = Path(sys.argv[1])
    found = problems(demo)
    if found: sys.exit(f"{demo}: not what the README says the demo leaves:\n" + '\n'.join('  ' + p for p in found))
    print(f"{demo}: every run ok with its notebook, the analysis, summary.md and figures, accuracy rising from chance")
