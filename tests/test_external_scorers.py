"""A snapshot scores the same in the tools researchers use: `lmeff blimp`, minicons and lm-evaluation-harness (HF backend)
give every BLiMP pair the same log-probabilities (|Δ log p| ≤ 1e-4) and so the same decisions."""
import json
from pathlib import Path
import numpy as np, pandas as pd, pytest
from lmeff.blimp import encode_sentences, load_blimp, load_pair_logprobs
from lmeff.cli import main
from lmeff.train_config import TrainConfig
from lmeff.store import random_init_dir
from lmeff.tokens import load_encoder, prepare
from lmeff.train import train
from conftest import SHARED_DATA

TASKS = ('anaphor_gender_agreement', 'determiner_noun_agreement_1', 'regular_plural_subject_verb_agreement_1', 'wh_island')
PAIRS_PER_TASK = 200   # the first pairs of each file: enough to flip decisions when tokenization differs, quick to score
TOL = 1e-4

@pytest.fixture(scope='module')
def scored(tmp_path_factory):
    "A tiny model trained briefly on the synthetic corpus: its random init and final snapshot, a few real BLiMP tasks, and `lmeff blimp`'s pair log-probs."
    if not (SHARED_DATA/'blimp').is_dir(): pytest.skip(f"real data folder {SHARED_DATA} not present (set LMEFF_SHARED_DATA)")
    d = tmp_path_factory.mktemp('external')
    prepare('synthetic', d/'data', [512], words=20_000, n_pairs=4, progress=False)
    # positions for the longest sentence (lm-eval refuses a longer one); one epoch of batches of 8
    cfg = TrainConfig.make('tiny', 'synthetic', d/'data', 512, seq_length=64, anchors=(-1.0,), milestones=(0.002,), batch_size=8,
                           grad_accum=1, eval_every=20, eval_sequences=16, epochs=1, out=str(d/'out'), progress=False, device='cpu')
    snap = Path(train(cfg)['run_dir'])/'final'
    blimp = d/'blimp'; blimp.mkdir()
    for t in TASKS:
        lines = (SHARED_DATA/'blimp'/f'{t}.jsonl').read_text(encoding='utf-8').splitlines(keepends=True)
        (blimp/f'{t}.jsonl').write_text(''.join(lines[:PAIRS_PER_TASK]), encoding='utf-8')
    assert main(['blimp', '--model', str(snap), '--blimp-dir', str(blimp), '--out', str(d/'res'), '--device', 'cpu']) == 0
    lmeff = load_blimp(blimp).merge(load_pair_logprobs(d/'res'), on=['task', 'pairID'], validate='1:1')
    assert len(lmeff) == len(TASKS) * PAIRS_PER_TASK
    return dict(snapshot=snap, init=random_init_dir(cfg.storage.out, 'tiny', 512, 0), blimp=blimp, lmeff=lmeff)

def agreement(lmeff:pd.DataFrame, other:pd.DataFrame)->pd.DataFrame:
    "Per task: the pairs, max |Δ log p| over both sentences, and the decisions (good > bad) that differ."
    m = lmeff.merge(other, on=['task', 'pairID'], suffixes=('', '_other'), validate='1:1')
    assert len(m) == len(lmeff)
    m['diff'] = np.maximum((m.logp_good - m.logp_good_other).abs(), (m.logp_bad - m.logp_bad_other).abs())
    m['flip'] = (m.logp_good > m.logp_bad) != (m.logp_good_other > m.logp_bad_other)
    return m.groupby('task').agg(pairs=('diff', 'size'), max_abs_diff=('diff', 'max'), flipped=('flip', 'sum'))

def assert_agrees(lmeff, other):
    per_task = agreement(lmeff, other)
    assert list(per_task.index) == sorted(TASKS)
    assert (per_task.max_abs_diff <= TOL).all() and (per_task.flipped == 0).all(), per_task.to_string()

@pytest.mark.parametrize('folder', ['init', 'snapshot'])
def test_autotokenizer_reads_bos_token_text_as_bos(scored, folder):
    "What minicons does: `bos_token` prepended as text gives `<s>`'s id and then lmeff's ids (the first word with its prefix space)."
    from transformers import AutoTokenizer
    path, sentences = scored[folder], list(scored['lmeff'].sentence_good[::25])
    hf = AutoTokenizer.from_pretrained(path)
    ids = encode_sentences(load_encoder(path), sentences)
    assert hf([hf.bos_token + s for s in sentences], add_special_tokens=False)['input_ids'] == ids
    assert hf(sentences)['input_ids'] == [i[1:] for i in ids]   # and no second <s> added to a scorer's own

def test_minicons_scores_as_lmeff(scored):
    from minicons.scorer import IncrementalLMScorer
    lmeff = scored['lmeff']
    scorer = IncrementalLMScorer(str(scored['snapshot']), device='cpu')
    def logp(sentences): return [x for i in range(0, len(sentences), 64)
                                 for x in scorer.sequence_score(sentences[i:i+64], reduction=lambda s: s.sum(0).item(), bos_token=True)]
    other = lmeff[['task', 'pairID']].assign(logp_good=logp(list(lmeff.sentence_good)), logp_bad=logp(list(lmeff.sentence_bad)))
    assert_agrees(lmeff, other)

def task_yaml(task:str, jsonl:Path, cache:Path)->str:
    "lm-eval's own BLiMP task config, reading a local jsonl file instead of the Hub dataset `nyu-mll/blimp`."
    return '\n'.join([f'task: local_blimp_{task}', 'dataset_path: json',
                      f'dataset_kwargs: {{data_files: {{train: {json.dumps(str(jsonl))}}}, cache_dir: {json.dumps(str(cache))}}}',
                      'output_type: multiple_choice', 'test_split: train', 'doc_to_text: ""', 'doc_to_target: 0',
                      'doc_to_choice: "{{[sentence_good, sentence_bad]}}"', 'num_fewshot: 0',
                      'metric_list:', '  - metric: acc', '    aggregation: mean', '    higher_is_better: true', ''])

def test_lm_eval_hf_scores_as_lmeff(scored, tmp_path):
    import lm_eval
    from lm_eval.tasks import TaskManager
    lmeff, names = scored['lmeff'], {t: f'local_blimp_{t}' for t in TASKS}
    for t in TASKS: (tmp_path/f'{t}.yaml').write_text(task_yaml(t, scored['blimp']/f'{t}.jsonl', tmp_path/'datasets-cache'))
    res = lm_eval.simple_evaluate(model='hf', model_args=dict(pretrained=str(scored['snapshot']), dtype='float32'), tasks=list(names.values()),
                                  task_manager=TaskManager(include_path=str(tmp_path)), batch_size=64, device='cpu', log_samples=True)
    rows = [dict(task=t, pairID=str(s['doc']['pairID']), logp_good=s['resps'][0][0][0], logp_bad=s['resps'][1][0][0])
            for t, name in names.items() for s in res['samples'][name]]
    assert_agrees(lmeff, pd.DataFrame(rows))
    acc = (lmeff.logp_good > lmeff.logp_bad).groupby(lmeff.task).mean()
    assert {t: res['results'][name]['acc,none'] for t, name in names.items()} == acc.to_dict()   # the accuracies lm-eval reports
