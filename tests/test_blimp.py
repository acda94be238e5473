"BLiMP scoring: exact against the model's own logits, batch-invariant, lm-eval-style results with provenance, run-level scoring, errors."
import json, math, shutil
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from lmeff.config import LmeffError
from lmeff.tokens import load_encoder
from lmeff.model import init_random
from lmeff.blimp_tasks import BLIMP_TASKS, phenomenon
from lmeff.blimp import (PAIR_COLUMNS, load_blimp, read_blimp_file, load_model, sentence_logprobs, score_model,
                         compare_scores, blimp_results, stderr, write_results, load_pair_logprobs, score_run, run_snapshots,
                         pairs_sha256)
from lmeff.store import results_dir, sha256_file, write_hashes, RESULTS_FILE, PAIRS_FILE
from lmeff.cli import main
from conftest import SHARED_DATA, run_cli
from helpers import tiny_tokenizer

TOY = [('agreement', [("The cat runs.", "The cat run."), ("A dog barks.", "A dog bark."), ("The dogs run.", "The dogs runs.")]),
       ('npi', [("Nobody ever sleeps.", "Somebody ever sleeps."), ("No cat ever runs.", "A cat ever runs.")])]

def write_toy(folder):
    "A folder of two small BLiMP-format tasks."
    folder.mkdir(parents=True, exist_ok=True)
    for task, pairs in TOY:
        with open(folder/f'{task}.jsonl', 'w') as f:
            for i, (g, b) in enumerate(pairs):
                f.write(json.dumps(dict(sentence_good=g, sentence_bad=b, field='morphology', linguistics_term=task, UID=task, pairID=str(i))) + '\n')
    return folder

@pytest.fixture(scope='module')
def toy_model(tmp_path_factory):
    "A tiny random init with a BPE trained on the toy sentences."
    d = tmp_path_factory.mktemp('toy')
    texts = [s for _, ps in TOY for p in ps for s in p] * 10
    return init_random('tiny', None, seed=0, out=d/'model', tokenizer=tiny_tokenizer(d/'tok.json', 300, texts), seq_length=64)

@pytest.fixture(scope='module')
def real_pairs():
    "All of BLiMP (skips without the shared data folder, like the `shared_data` fixture)."
    if not (SHARED_DATA/'blimp').is_dir(): pytest.skip(f"real data folder {SHARED_DATA} not present (set LMEFF_SHARED_DATA)")
    return load_blimp(SHARED_DATA/'blimp')

@pytest.fixture(scope='module')
def real_model(real_pairs, tmp_path_factory):
    "A tiny random init with a byte-level BPE trained on BLiMP's sentences."
    d = tmp_path_factory.mktemp('real')
    texts = list(real_pairs.sentence_good) + list(real_pairs.sentence_bad)
    init_random('tiny', None, seed=0, out=d/'model', tokenizer=tiny_tokenizer(d/'tok.json', 2000, texts), seq_length=64)
    return load_model(d/'model', device='cpu')

def direct_logprob(model, tok, sentence):
    "log p(sentence | <s>) from the HF model's logits, one sentence alone, full log-softmax."
    ids = [tok.token_to_id('<s>')] + tok.encode(sentence, add_special_tokens=False).ids
    with torch.no_grad(): logits = model(torch.tensor([ids])).logits[0].double()
    return torch.log_softmax(logits[:-1], -1).gather(1, torch.tensor(ids[1:])[:, None]).sum().item()

def sample(pairs, per_task, seed=0):
    return pairs.groupby('task', group_keys=False).sample(per_task, random_state=seed).reset_index(drop=True)

# --- loading ---------------------------------------------------------------------------------------

def test_real_blimp_loads(real_pairs):
    assert list(real_pairs.columns) == PAIR_COLUMNS
    assert sorted(real_pairs.task.unique()) == sorted(BLIMP_TASKS) and len(real_pairs) == 67_000
    assert (real_pairs.groupby('task').size() == 1000).all()
    assert not real_pairs.duplicated(['task', 'pairID']).any()
    assert set(real_pairs.field) == {'morphology', 'syntax', 'semantics', 'syntax_semantics'}
    assert real_pairs.groupby('task').linguistics_term.nunique().max() == 1
    res = blimp_results(real_pairs.assign(logp_good=-1.0, logp_bad=-2.0))
    assert len(res['phenomena']) == 12 and res['phenomena']['argument_structure'] == 1.0   # the BLiMP paper's 12 groups
    # the groups by task are the files' own terms, with s-selection counted under argument structure as in the paper
    assert (real_pairs.task.map(phenomenon) == real_pairs.linguistics_term.replace('s-selection', 'argument_structure')).all()
    assert len(res['results']) == 68 and res['config']['n_pairs'] == 67_000
    first = json.loads((SHARED_DATA/'blimp'/'adjunct_island.jsonl').open().readline())
    row = real_pairs[real_pairs.task == 'adjunct_island'].iloc[0]
    assert (row.sentence_good, row.sentence_bad, row.pairID) == (first['sentence_good'], first['sentence_bad'], first['pairID'])

def test_real_blimp_must_be_complete(shared_data, tmp_path):
    for f in sorted((shared_data/'blimp').glob('*.jsonl'))[1:]: (tmp_path/f.name).symlink_to(f)
    with pytest.raises(LmeffError, match=r"1 of the 67 BLiMP files are missing: adjunct_island\.jsonl"): load_blimp(tmp_path)
    assert load_blimp(tmp_path, tasks=['wh_island'], expect_full=False).task.unique().tolist() == ['wh_island']

def test_any_blimp_format_folder(tmp_path):
    pairs = load_blimp(write_toy(tmp_path))
    assert list(pairs.task) == ['agreement']*3 + ['npi']*2 and list(pairs.pairID) == ['0', '1', '2', '0', '1']
    assert load_blimp(tmp_path/'npi.jsonl').sentence_bad.tolist() == ["Somebody ever sleeps.", "A cat ever runs."]
    assert load_blimp(tmp_path, tasks=['npi']).task.unique().tolist() == ['npi']
    with pytest.raises(LmeffError, match='of the 67 BLiMP files are missing'): load_blimp(tmp_path, expect_full=True)

GOOD = '{"sentence_good": "The cat runs.", "sentence_bad": "The cat run.", "pairID": "0"}'
@pytest.mark.parametrize('second_line,message', [
    ('{"sentence_good": "A dog barks."', r"t\.jsonl, line 2: not valid JSON"),
    ('{"sentence_good": "A dog barks.", "pairID": "1"}', r"t\.jsonl, line 2: missing field 'sentence_bad'"),
    ('{"sentence_good": "", "sentence_bad": "A dog bark.", "pairID": "1"}', r"t\.jsonl, line 2: field 'sentence_good' must be a non-empty string"),
    ('{"sentence_good": 3, "sentence_bad": "A dog bark.", "pairID": "1"}', r"t\.jsonl, line 2: field 'sentence_good' must be"),
    ('["The cat runs.", "The cat run."]', r"t\.jsonl, line 2: expected a JSON object"),
    (GOOD, r"t\.jsonl: pairID '0' of pair 2 repeats pair 1"),
])
def test_bad_lines_name_file_and_line(tmp_path, second_line, message):
    (tmp_path/'t.jsonl').write_text(GOOD + '\n' + second_line + '\n')
    with pytest.raises(LmeffError, match=message): load_blimp(tmp_path)

def test_missing_and_empty(tmp_path):
    with pytest.raises(LmeffError, match='no such BLiMP folder'): load_blimp(tmp_path/'nope')
    with pytest.raises(LmeffError, match=r'no \.jsonl files here'): load_blimp(tmp_path)
    (tmp_path/'empty.jsonl').write_text('\n')
    with pytest.raises(LmeffError, match=r'empty\.jsonl: the file holds no pairs'): load_blimp(tmp_path)
    with pytest.raises(LmeffError, match=r"no file other\.jsonl for task 'other'"): load_blimp(tmp_path, tasks=['other'])
    with pytest.raises(LmeffError, match='no such BLiMP file'): read_blimp_file(tmp_path/'x.jsonl')

def test_hub_loading_asks_for_each_paradigm(tmp_path, monkeypatch):
    import datasets
    write_toy(tmp_path)
    calls = []
    def fake_load_dataset(name, config, split):
        calls.append((name, config, split))
        return [json.loads(l) for l in (tmp_path/f'{config}.jsonl').read_text().splitlines()]
    monkeypatch.setattr(datasets, 'load_dataset', fake_load_dataset)
    hub = load_blimp(None, tasks=['agreement', 'npi'])
    assert calls == [('nyu-mll/blimp', 'agreement', 'train'), ('nyu-mll/blimp', 'npi', 'train')]
    pd.testing.assert_frame_equal(hub, load_blimp(tmp_path))
    def offline(*a, **k): raise ConnectionError('no network')
    monkeypatch.setattr(datasets, 'load_dataset', offline)
    with pytest.raises(LmeffError, match="could not load nyu-mll/blimp config 'adjunct_island'.*--blimp-dir"): load_blimp(None)

# --- scoring ---------------------------------------------------------------------------------------

def test_agreement_with_direct_logits_on_every_task(real_pairs, real_model):
    model, tok = real_model
    pairs = sample(real_pairs, 3)
    assert pairs.task.nunique() == 67
    ours = score_model(model, tok, pairs, batch_size=64)
    direct = pairs.assign(logp_good=[direct_logprob(model, tok, s) for s in pairs.sentence_good],
                          logp_bad=[direct_logprob(model, tok, s) for s in pairs.sentence_bad])
    assert np.abs(ours.logp_good - direct.logp_good).max() < 1e-4 and np.abs(ours.logp_bad - direct.logp_bad).max() < 1e-4
    assert ((ours.logp_good > ours.logp_bad) == (direct.logp_good > direct.logp_bad)).all()
    assert (ours.logp_good < 0).all()

def test_scores_do_not_depend_on_batch_size_or_order(real_pairs, real_model):
    model, tok = real_model
    pairs = sample(real_pairs, 4, seed=1)
    alone = score_model(model, tok, pairs, batch_size=1)
    for bs in (7, 100, 4096):
        c = compare_scores(score_model(model, tok, pairs, batch_size=bs), alone)
        assert c['max_abs_diff'] < 1e-4 and c['decision_agreement'] == 1.0, (bs, c)
    shuffled = score_model(model, tok, pairs.sample(frac=1, random_state=0), batch_size=32).sort_index()
    assert compare_scores(shuffled, alone)['max_abs_diff'] < 1e-4

def test_first_word_is_scored_given_bos(toy_model):
    model, tok = load_model(toy_model, device='cpu')
    w1, w2 = tok.encode('cat', add_special_tokens=False).ids, tok.encode(' runs', add_special_tokens=False).ids
    assert len(w1) == len(w2) == 1
    with torch.no_grad(): lp = torch.log_softmax(model(torch.tensor([[tok.token_to_id('<s>'), w1[0]]])).logits[0].double(), -1)
    one, two = sentence_logprobs(model, tok, ['cat', 'cat runs'])
    assert abs(one - lp[0, w1[0]].item()) < 1e-5                       # log p(cat | <s>): the first word counts
    assert abs(two - (lp[0, w1[0]] + lp[1, w2[0]]).item()) < 1e-5      # and nothing after the last word (no </s>)
    assert sentence_logprobs(model, tok, ['dog runs'])[0] != pytest.approx(two)

def test_other_architectures_use_their_full_forward(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel
    from lmeff.tokens import load_encoder, save_tokenizer_files
    tj = tiny_tokenizer(tmp_path/'tok.json', 300)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(vocab_size=load_encoder(tj).get_vocab_size(), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                               bos_token_id=1)).save_pretrained(tmp_path/'gpt2')
    save_tokenizer_files(tj, tmp_path/'gpt2')
    model, tok = load_model(tmp_path/'gpt2', device='cpu')
    sents = ['the cat sees the dogs', 'a dog that the cats see runs', 'the girls like herself', 'dogs']
    got = sentence_logprobs(model, tok, sents, batch_size=3)
    assert np.abs(got - [direct_logprob(model, tok, s) for s in sents]).max() < 1e-4

def test_bf16_autocast_stays_close_to_fp32(toy_model, tmp_path):
    model, tok = load_model(toy_model, device='cpu')
    pairs = load_blimp(write_toy(tmp_path))
    c = compare_scores(score_model(model, tok, pairs, dtype='bf16'), score_model(model, tok, pairs))
    assert 0 < c['max_abs_diff'] < 0.5 and c['n_pairs'] == 5
    with pytest.raises(LmeffError, match="dtype must be 'fp32' or 'bf16'"): score_model(model, tok, pairs, dtype='fp16')

# --- results ---------------------------------------------------------------------------------------

def scores_table(correct_by_task:dict):
    rows = []
    for task, correct in correct_by_task.items():
        for i, c in enumerate(correct):
            rows.append(dict(task=task, pairID=str(i), field='syntax' if task < 'm' else 'semantics', linguistics_term=task,
                             sentence_good='g', sentence_bad='b', logp_good=-1.0 if c else -3.0, logp_bad=-2.0))
    return pd.DataFrame(rows)

def test_stderr_and_pooling():
    assert stderr(0.75, 4) == pytest.approx(math.sqrt(0.75*0.25/4))
    assert stderr(1.0, 10) == 0.0
    res = blimp_results(scores_table({'a': [1, 1, 1, 0], 'b': [1, 0, 0, 0, 0, 0, 0, 0], 'z': [1, 1]}))['results']
    assert res['blimp_a']['acc,none'] == 0.75 and res['blimp_a']['acc_stderr,none'] == pytest.approx(math.sqrt(0.75*0.25/4))
    assert res['blimp_b']['acc,none'] == 0.125 and res['blimp_b']['acc_stderr,none'] == pytest.approx(math.sqrt(0.125*0.875/8))
    assert res['blimp']['acc,none'] == pytest.approx(6/14)                     # pooled over pairs, not the mean over tasks
    assert res['blimp']['acc_stderr,none'] == pytest.approx(math.sqrt(6/14*8/14/14))
    equal = blimp_results(scores_table({'a': [1, 1, 1, 0], 'b': [1, 0, 0, 0]}))['results']
    assert equal['blimp']['acc,none'] == pytest.approx((equal['blimp_a']['acc,none'] + equal['blimp_b']['acc,none'])/2)

def test_phenomena_are_blimp_groups_by_task():
    "A BLiMP task counts in its paper group whatever its pairs' term says (s-selection: argument structure); another task keeps its term."
    s = scores_table({'animate_subject_trans': [1, 1, 1, 0], 'sv_agreement_simple': [1, 0], 'regular_plural_subject_verb_agreement_1': [1, 1]})
    s.loc[s.task == 'animate_subject_trans', 'linguistics_term'] = 's-selection'
    s.loc[s.task != 'animate_subject_trans', 'linguistics_term'] = 'subject_verb_agreement'
    assert blimp_results(s)['phenomena'] == {'argument_structure': 0.75, 'subject_verb_agreement': 0.75}

def test_results_json_schema_and_pair_file(tmp_path):
    s = scores_table({'anaphor_gender_agreement': [1, 0], 'npi_present_1': [1, 1, 0, 0]})
    path = write_results(blimp_results(s, dict(model='m', milestone='25')), s, tmp_path/'out')
    assert path == tmp_path/'out'/RESULTS_FILE
    d = json.loads(path.read_text())
    assert {'results', 'groups', 'group_subtasks', 'n-samples', 'fields', 'phenomena', 'config'} <= set(d)
    assert set(d['results']) == {'blimp', 'blimp_anaphor_gender_agreement', 'blimp_npi_present_1'}
    for k, v in d['results'].items():
        assert set(v) == {'acc,none', 'acc_stderr,none', 'alias'} and v['alias'] == ('blimp' if k == 'blimp' else f' - {k}')
    assert d['groups'] == {'blimp': d['results']['blimp']}
    assert d['group_subtasks']['blimp'] == ['blimp_anaphor_gender_agreement', 'blimp_npi_present_1']
    assert d['n-samples']['blimp_npi_present_1'] == {'original': 4, 'effective': 4}
    assert d['phenomena'] == {'anaphor_agreement': 0.5, 'npi_licensing': 0.5}   # BLiMP's groups, by task
    assert d['fields'] == {'syntax': 0.5, 'semantics': 0.5}
    assert d['config']['milestone'] == '25' and d['config']['n_pairs'] == 6 and d['config']['n_tasks'] == 2
    with np.load(path.with_name(PAIRS_FILE), allow_pickle=False) as z:
        assert list(z['task']) == list(s.task) and list(z['pairID']) == list(s.pairID)
        assert z['logp_good'].dtype == np.float64 and list(z['logp_bad']) == list(s.logp_bad)
    pd.testing.assert_frame_equal(load_pair_logprobs(tmp_path/'out'), s[['task', 'pairID', 'logp_good', 'logp_bad']], check_dtype=False)
    assert sorted(p.name for p in (tmp_path/'out').iterdir()) == sorted([RESULTS_FILE, PAIRS_FILE])   # no temporary files left
    assert write_results(blimp_results(s), s, tmp_path/'x.json') == tmp_path/'x.json' and (tmp_path/PAIRS_FILE).is_file()

# --- runs ------------------------------------------------------------------------------------------

def make_run(root, model_dir, snapshots=(('milestone-0.05M', '0.05', 50_000), ('milestone-0.1M', '0.1', 100_000), ('final', 'final', 120_000))):
    run = root/'models'/'synthetic'/'llama-tiny'/'tokenizer-300-seed-0'
    for name, label, tokens in snapshots:
        shutil.copytree(model_dir, run/name)
        (run/name/'milestone_meta.json').write_text(json.dumps(dict(milestone=label, tokens_seen=tokens, global_step=tokens//1000,
                                                                    dataset='synthetic', model_config='tiny', seed=0, vocab_size=300)))
        (run/name/'hashes.json').unlink(missing_ok=True); write_hashes(run/name)          # as the training stage writes a snapshot
    return run

def test_score_run_layout_skip_and_force(tmp_path, toy_model):
    run, blimp = make_run(tmp_path, toy_model), write_toy(tmp_path/'blimp')
    results = tmp_path/'results'
    done = score_run(run, results, blimp, progress=False)
    assert [(s['milestone'], s['status']) for s in done] == [('0.05', 'scored'), ('0.1', 'scored'), ('final', 'scored')]
    for label in ('0.05', '0.1', 'final'):
        path = results/'blimp'/'synthetic'/'tiny'/'seed-0'/'tok-300'/label/RESULTS_FILE
        cfg = json.loads(path.read_text())['config']
        assert cfg['milestone'] == label and cfg['dataset'] == 'synthetic' and cfg['n_pairs'] == 5 and (path.parent/PAIRS_FILE).is_file()
    first = results/'blimp'/'synthetic'/'tiny'/'seed-0'/'tok-300'/'0.05'/RESULTS_FILE
    stamp = first.stat().st_mtime_ns
    # finished snapshots are skipped; a missing one is scored
    (results/'blimp'/'synthetic'/'tiny'/'seed-0'/'tok-300'/'0.1'/RESULTS_FILE).unlink()
    again = score_run(run, results, blimp, progress=False)
    assert [s['status'] for s in again] == ['skipped', 'scored', 'skipped'] and first.stat().st_mtime_ns == stamp
    assert [s['note'] for s in again] == [None]*3
    shutil.copytree(blimp, tmp_path/'same-pairs-elsewhere')                   # the same pairs from another folder are the same data
    assert [s['status'] for s in score_run(run, results, tmp_path/'same-pairs-elsewhere', progress=False)] == ['skipped']*3
    assert [s['status'] for s in score_run(run, results, blimp, force=True, progress=False)] == ['scored']*3
    assert first.stat().st_mtime_ns != stamp

def test_scoring_a_run_puts_the_accuracy_on_each_model_card(tmp_path, toy_model):
    "After scoring, each snapshot's README.md card carries its BLiMP accuracy; the snapshot still verifies (the card is not hashed)."
    from huggingface_hub import ModelCard
    from lmeff.store import verify_snapshot
    run, blimp = make_run(tmp_path, toy_model), write_toy(tmp_path/'blimp')
    done = score_run(run, tmp_path/'results', blimp, progress=False)
    for s in done:
        card = ModelCard.load(Path(s['snapshot'])/'README.md')
        assert card.data.eval_results[0].metric_value == round(s['acc'], 6) and f"**{s['acc']:.4f}**" in card.text
        assert verify_snapshot(s['snapshot'])
    assert [s['status'] for s in score_run(run, tmp_path/'results', blimp, progress=False)] == ['skipped']*3   # and it stays done

def test_results_of_other_weights_or_pairs_are_redone(tmp_path, toy_model, capsys):
    "Results already in the layout are kept only when they were made from this snapshot's weights and tokenizer and these pairs."
    run, blimp, results = make_run(tmp_path, toy_model), write_toy(tmp_path/'blimp'), tmp_path/'results'
    score_run(run, results, blimp, progress=False)
    where = lambda label: results/'blimp'/'synthetic'/'tiny'/'seed-0'/'tok-300'/label/RESULTS_FILE
    # the run was trained again (another seed, say) into the same folder: its 0.1 snapshot now has other weights
    init_random('tiny', None, seed=1, out=tmp_path/'seed1', tokenizer=toy_model, seq_length=64)
    shutil.copy(tmp_path/'seed1'/'model.safetensors', run/'milestone-0.1M'/'model.safetensors'); write_hashes(run/'milestone-0.1M')
    # results written by an older lmeff record no provenance
    old = json.loads(where('final').read_text())
    for k in ('weights_sha256', 'tokenizer_sha256', 'blimp_sha256'): old['config'].pop(k)
    where('final').write_text(json.dumps(old))
    done = score_run(run, results, blimp, progress=False)
    assert [(s['status'], s['note']) for s in done] == [
        ('skipped', None), ('scored', 'the results there were made from other weights'),
        ('scored', 'the results there record no weights, tokenizer or BLiMP hashes (an older lmeff)')]
    assert json.loads(where('0.1').read_text())['config']['weights_sha256'] == {'model.safetensors': sha256_file(run/'milestone-0.1M'/'model.safetensors')}
    # another BLiMP folder: every snapshot is scored again, and the command line says why
    other = write_toy(tmp_path/'blimp2'); (other/'npi.jsonl').write_text((other/'npi.jsonl').read_text().replace('Nobody', 'No one'))
    rc, out, err = cli('--run', run, '--blimp-dir', other, '--results', results, capsys=capsys)
    assert rc == 0 and out.count('rescored: the results there were made from other BLiMP data') == 3, (out, err)
    assert all(json.loads(where(l).read_text())['config']['blimp_sha256'] == pairs_sha256(load_blimp(other)) for l in ('0.05', '0.1', 'final'))
    (run/'final'/'tokenizer.json').write_text(json.dumps(json.loads((run/'final'/'tokenizer.json').read_text()), indent=1))   # other bytes
    write_hashes(run/'final')
    assert [s['note'] for s in score_run(run, results, other, progress=False)] == [None, None, 'the results there were made from another tokenizer']

def flip_byte(path, at=-1):
    "Corrupt `path` in place: one byte changed, same size."
    b = bytearray(path.read_bytes()); b[at] ^= 0xFF; path.write_bytes(bytes(b))

def test_a_corrupt_snapshot_is_not_scored(tmp_path, toy_model, capsys):
    "Every snapshot is checked against its hashes.json before anything is scored: one corrupt file stops the run, and nothing is written."
    run, blimp = make_run(tmp_path, toy_model), write_toy(tmp_path/'blimp')
    bad = run/'milestone-0.1M'/'model.safetensors'
    flip_byte(bad, len(bad.read_bytes()) - 40)                                  # a weight, not the header: it would load and score
    rc, out, err = cli('--run', run, '--blimp-dir', blimp, '--results', tmp_path/'results', capsys=capsys)
    assert rc == 2 and out == '' and err == f"lmeff blimp: error: {bad}: its SHA-256 differs from the one in hashes.json (the file is corrupt or was changed)\n"
    assert not (tmp_path/'results').exists()
    with pytest.raises(LmeffError, match='milestone-0.1M/model.safetensors'): score_run(run, tmp_path/'results', blimp, force=True, progress=False)
    (run/'milestone-0.05M'/'hashes.json').unlink()
    with pytest.raises(LmeffError, match=r'milestone-0\.05M/hashes\.json: missing'): score_run(run, tmp_path/'results', blimp, progress=False)
    # one model: a local folder with a hashes.json is checked too
    rc, out, err = cli('--model', run/'milestone-0.1M', '--blimp-dir', blimp, '--out', tmp_path/'one.json', capsys=capsys)
    assert rc == 2 and err.splitlines() == [f"lmeff blimp: error: {bad}: its SHA-256 differs from the one in hashes.json (the file is corrupt or was changed)"]
    assert not (tmp_path/'one.json').exists() and not (tmp_path/PAIRS_FILE).exists()

def test_unusable_model_folders_are_named(tmp_path, toy_model, capsys):
    "Weights cut short or missing, or a tokenizer larger than the embedding: one line naming the file, not a library traceback."
    blimp = write_toy(tmp_path/'blimp')
    def run(model, checked=True):
        rc, out, err = cli('--model', model, '--blimp-dir', blimp, '--out', tmp_path/'x.json', '--device', 'cpu', capsys=capsys)
        assert rc == 2 and not (tmp_path/'x.json').exists(), err
        if checked: assert len(err.splitlines()) == 1, err               # found before transformers loads anything
        return err.splitlines()[-1]
    m = tmp_path/'m'; shutil.copytree(toy_model, m); (m/'hashes.json').unlink()    # a folder from elsewhere: nothing to check it against
    whole = (m/'model.safetensors').read_bytes()
    (m/'model.safetensors').write_bytes(whole[:len(whole)//3])
    assert f"{m/'model.safetensors'}: {len(whole)//3:,} bytes where its header promises {len(whole):,}" in run(m)
    (m/'model.safetensors').unlink()
    assert f"{m/'model.safetensors'}: missing (no weights in {m})" in run(m)
    (m/'model.safetensors').write_bytes(whole)
    cfg = json.loads((m/'config.json').read_text()); n = cfg['vocab_size']
    tok = load_encoder(m); tok.add_tokens([f'word{i}' for i in range(10)]); tok.save(str(m/'tokenizer.json'))   # another model's tokenizer
    assert f"{m/'tokenizer.json'}: the tokenizer has {n+10} tokens, more than the {n} rows of the model's embedding ({m/'config.json'})" in run(m)
    shutil.copy(toy_model/'tokenizer.json', m/'tokenizer.json')
    cfg['vocab_size'] = n + 10; (m/'config.json').write_text(json.dumps(cfg))   # the weights no longer fit the config
    assert f"{m/'model.safetensors'}: lm_head.weight has {n} rows, but {m/'config.json'} says vocab_size {n+10}" in run(m)
    (m/'config.json').write_text(json.dumps({**cfg, 'vocab_size': n, 'num_hidden_layers': 3}))   # transformers would make up layer 2
    assert run(m, checked=False) == (f"lmeff blimp: error: {m}: its weights do not fit its config.json (missing keys: "
                                     "model.layers.2.input_layernorm.weight, model.layers.2.mlp.down_proj.weight, model.layers.2.mlp.gate_proj.weight, ...)")
    (m/'config.json').write_text(json.dumps({**cfg, 'vocab_size': n, 'model_type': 'no-such-model'}))   # what no check foresaw
    assert run(m, checked=False).startswith(f"lmeff blimp: error: {m}: could not be loaded as a model (")

def test_snapshots_in_token_order(tmp_path, toy_model):
    run = make_run(tmp_path, toy_model, (('final', 'final', 9_000_000), ('milestone-10M', 10, 10_000_000), ('milestone-2M', 2, 2_000_000)))
    snaps = run_snapshots(run)
    assert [p.name for p, _ in snaps] == ['milestone-2M', 'milestone-10M', 'final']
    assert [m.milestone for _, m in snaps] == ['2', '10', 'final']                # numeric labels become the layout's strings
    assert results_dir('R', snaps[1][1]).as_posix() == 'R/blimp/synthetic/tiny/seed-0/tok-300/10'

def test_run_errors(tmp_path, toy_model):
    with pytest.raises(LmeffError, match='no such run folder'): score_run(tmp_path/'nope', tmp_path/'r')
    (tmp_path/'empty').mkdir()
    with pytest.raises(LmeffError, match=r'no milestone-\*M or final snapshot folders'): score_run(tmp_path/'empty', tmp_path/'r')
    run = make_run(tmp_path, toy_model, (('final', 'final', 1000),))
    (run/'final'/'milestone_meta.json').unlink()
    with pytest.raises(LmeffError, match=r'final: no milestone_meta\.json'): score_run(run, tmp_path/'r')
    (run/'final'/'milestone_meta.json').write_text('{"milestone": "final"}')
    with pytest.raises(LmeffError, match=r'milestone_meta\.json: missing key\(s\) dataset'): score_run(run, tmp_path/'r')
    (run/'final'/'milestone_meta.json').write_text('{"milestone": ')
    with pytest.raises(LmeffError, match=r'milestone_meta\.json: not valid JSON'): score_run(run, tmp_path/'r')

def test_a_line_that_is_not_utf8_is_named(tmp_path):
    f = tmp_path/'agr.jsonl'
    f.write_bytes(b'{"sentence_good": "The cat runs.", "sentence_bad": "The cat run."}\n{"sentence_good": "A d\xf6g barks.", "sentence_bad": "A dog bark."}\n')
    with pytest.raises(LmeffError, match=rf"^{f}, line 2: not UTF-8 text \(byte 0xf6 at position 23\)"): read_blimp_file(f)
    f.write_bytes(b'\xef\xbb\xbf{"sentence_good": "The cat runs.", "sentence_bad": "The cat run."}\n')   # a byte-order mark is fine
    assert read_blimp_file(f)[0]['sentence_good'] == 'The cat runs.'

def test_model_errors(tmp_path, toy_model):
    with pytest.raises(LmeffError, match='no such model folder'): load_model(tmp_path/'a'/'b'/'c')
    with pytest.raises(LmeffError, match='--revision only applies to Hub repos'): load_model(toy_model, revision='seed-0')
    (tmp_path/'notamodel').mkdir()
    with pytest.raises(LmeffError, match=r'not a Hugging Face model folder \(no config\.json\)'): load_model(tmp_path/'notamodel')
    shutil.copytree(toy_model, tmp_path/'notok'); (tmp_path/'notok'/'tokenizer.json').unlink()
    with pytest.raises(LmeffError, match='no tokenizer.json'): load_model(tmp_path/'notok')

def test_hub_models_load_at_a_revision(monkeypatch, toy_model, tmp_path):
    "A Hub repo is scored from its files at the revision, downloaded once: the same encoder, weights and provenance as locally."
    import huggingface_hub
    seen = []
    def fake_snapshot_download(repo, revision=None, allow_patterns=None):
        seen.append((repo, revision))
        if repo == 'me/missing': raise OSError('404 not found')
        cache = tmp_path/'hub'/repo.replace('/', '--')/str(revision)
        if not cache.exists(): shutil.copytree(toy_model, cache)
        return str(cache)
    monkeypatch.setattr(huggingface_hub, 'snapshot_download', fake_snapshot_download)
    model, tok = load_model('me/synthetic-tiny-tok300', revision='seed-0-tokens-25M', device='cpu')
    assert seen == [('me/synthetic-tiny-tok300', 'seed-0-tokens-25M')]
    assert next(model.parameters()).dtype == torch.float32
    local_model, local_tok = load_model(toy_model, device='cpu')
    assert tok.to_str() == local_tok.to_str()
    pairs = load_blimp(write_toy(tmp_path/'blimp'))
    _, hub = score_model_to_json(tmp_path/'hub.json', 'me/synthetic-tiny-tok300', pairs, revision='seed-0-tokens-25M')
    _, local = score_model_to_json(tmp_path/'local.json', toy_model, pairs)
    assert hub['results'] == local['results'] and hub['config']['revision'] == 'seed-0-tokens-25M'
    keys = ('weights_sha256', 'tokenizer_sha256', 'blimp_sha256')
    assert {k: hub['config'][k] for k in keys} == {k: local['config'][k] for k in keys}
    with pytest.raises(LmeffError, match=r'^me/missing: no local folder .*me/missing, and the Hub repo me/missing at revision r1 could not be fetched: '
                                         r'the Hugging Face Hub at \S+ failed \(OSError: 404 not found\)$'):
        load_model('me/missing', revision='r1')

def score_model_to_json(out, model, pairs, **kw):
    from lmeff.blimp import score_model_to
    return score_model_to(model, pairs, out, device='cpu', **kw)

def test_results_record_what_was_scored(tmp_path, toy_model):
    "Versions, device, dtype and the SHA-256 of the weights, the tokenizer and the pairs: any change to what was scored shows."
    import tokenizers, transformers, lmeff
    pairs = load_blimp(write_toy(tmp_path/'blimp'))
    _, res = score_model_to_json(tmp_path/'a.json', toy_model, pairs)
    cfg = json.loads((tmp_path/'a.json').read_text())['config']
    assert cfg == res['config']
    assert (cfg['lmeff_version'], cfg['torch_version'], cfg['transformers_version'], cfg['tokenizers_version']) == (
        lmeff.__version__, torch.__version__, transformers.__version__, tokenizers.__version__)
    assert (cfg['device'], cfg['dtype']) == ('cpu', 'fp32')
    assert cfg['weights_sha256'] == {'model.safetensors': sha256_file(toy_model/'model.safetensors')}
    assert cfg['tokenizer_sha256'] == sha256_file(toy_model/'tokenizer.json') == sha256_file(toy_model.parent/'tok.json')
    assert cfg['blimp_sha256'] == pairs_sha256(pairs) and len(cfg['blimp_sha256']) == 64
    # the pairs' hash follows the pairs scored: their sentences, ids and order, not the columns scoring ignores
    assert pairs_sha256(pairs.assign(field='other', linguistics_term='other')) == cfg['blimp_sha256']
    for changed in (pairs.assign(sentence_good=pairs.sentence_good.str.replace('cat', 'cats')), pairs.iloc[::-1],
                    pairs.assign(pairID=pairs.pairID + 'x'), pairs.iloc[1:]):
        assert pairs_sha256(changed) != cfg['blimp_sha256']
    other = tmp_path/'other'; shutil.copytree(toy_model, other)
    init_random('tiny', None, seed=1, out=tmp_path/'seed1', tokenizer=toy_model, seq_length=64)
    shutil.copy(tmp_path/'seed1'/'model.safetensors', other/'model.safetensors'); write_hashes(other)
    _, res2 = score_model_to_json(tmp_path/'b.json', other, pairs)
    assert res2['config']['weights_sha256'] != cfg['weights_sha256'] and res2['config']['tokenizer_sha256'] == cfg['tokenizer_sha256']

def test_a_tokenizer_saved_without_prefix_space_scores_the_same(tmp_path, toy_model):
    "transformers 4.5x saves tokenizer.json with the prefix space off: scoring such a snapshot still encodes as training did."
    old = tmp_path/'old'; shutil.copytree(toy_model, old)
    tj = json.loads((old/'tokenizer.json').read_text())
    assert tj['pre_tokenizer']['add_prefix_space'] is True
    tj['pre_tokenizer']['add_prefix_space'] = False
    (old/'tokenizer.json').write_text(json.dumps(tj))
    pairs = load_blimp(write_toy(tmp_path/'blimp'))
    (m1, t1), (m2, t2) = load_model(toy_model, device='cpu'), load_model(old, device='cpu')
    pd.testing.assert_frame_equal(score_model(m2, t2, pairs), score_model(m1, t1, pairs))

# --- command line ----------------------------------------------------------------------------------

def cli(*args, capsys=None):
    rc = main(['blimp', *map(str, args)])
    return (rc, *capsys.readouterr()) if capsys else rc

def test_cli_one_model(tmp_path, toy_model, capsys):
    blimp = write_toy(tmp_path/'blimp')
    rc, out, err = cli('--model', toy_model, '--blimp-dir', blimp, '--out', tmp_path/'res', '--batch-size', '2', '--device', 'cpu', capsys=capsys)
    assert rc == 0 and 'BLiMP accuracy' in out and 'over 5 pairs' in out, err
    d = json.loads((tmp_path/'res'/RESULTS_FILE).read_text())
    assert d['config']['model'] == str(toy_model) and d['config']['blimp'] == str(blimp) and d['config']['dtype'] == 'fp32'
    assert d['config']['blimp_sha256'] == pairs_sha256(load_blimp(blimp)) and d['config']['device'] == 'cpu'
    assert cli('--model', toy_model, '--blimp-dir', blimp, '--out', tmp_path/'one.json', '--device', 'cpu') == 0
    assert json.loads((tmp_path/'one.json').read_text())['results'] == d['results']   # batch size changes nothing
    assert (tmp_path/PAIRS_FILE).is_file()

def test_cli_run(tmp_path, toy_model, capsys):
    run, blimp = make_run(tmp_path, toy_model), write_toy(tmp_path/'blimp')
    rc, out, err = cli('--run', run, '--blimp-dir', blimp, '--results', tmp_path/'results', capsys=capsys)
    assert rc == 0 and out.count('accuracy') == 3, err
    rc, out, err = cli('--run', run, '--blimp-dir', blimp, '--results', tmp_path/'results', capsys=capsys)
    assert rc == 0 and out.count('already scored') == 3
    with pytest.raises(SystemExit): main(['blimp', '--out', 'x'])
    assert 'one of the arguments --model --run is required' in capsys.readouterr().err

@pytest.mark.parametrize('args,message', [
    (['--model', '{m}', '--blimp-dir', '{b}'], '--model needs --out'),
    (['--model', '{m}', '--revision', 'x', '--out', 'o', '--blimp-dir', '{b}'], '--revision only applies to Hub repos'),
    (['--model', '{t}/none/here', '--out', 'o', '--blimp-dir', '{b}'], 'no such model folder'),
    (['--model', '{m}', '--out', 'o', '--blimp-dir', '{t}/missing'], 'no such BLiMP folder'),
    (['--run', '{t}', '--out', 'o'], '--revision and --out apply to --model'),
    (['--run', '{t}/none'], 'no such run folder'),
    (['--run', '{m}'], 'no milestone-'),
    (['--model', '{m}', '--out', 'o', '--blimp-dir', '{b}', '--batch-size', '0'], '--batch-size must be >= 1, got 0'),
])
def test_cli_errors_exit_2(tmp_path, toy_model, capsys, args, message):
    blimp = write_toy(tmp_path/'blimp')
    args = [a.format(m=toy_model, b=blimp, t=tmp_path) for a in args]
    rc, out, err = cli(*args, capsys=capsys)
    assert rc == 2 and message in err and err.splitlines()[-1].startswith('lmeff blimp: error:'), err

def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e: main(['blimp', '--help'])
    out = capsys.readouterr().out
    assert e.value.code == 0 and 'usage: lmeff blimp' in out and '--run RUN_DIR' in out and '--revision R' in out

def test_cli_subprocess_error(tmp_path):
    r = run_cli('blimp', '--run', tmp_path/'none')
    assert r.returncode == 2 and 'no such run folder' in r.stderr and 'Traceback' not in r.stderr
