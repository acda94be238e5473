"""One tokenization everywhere: a sentence scored on BLiMP gets exactly the ids it gets inside a training document, under
any supported transformers; and the same snapshot scores the same under the lowest supported and the pinned versions."""
import json, os, re, shutil
from pathlib import Path
import numpy as np, pytest, torch
from lmeff.blimp import load_blimp, load_model, score_model, encode_sentences, compare_scores
from lmeff.data import Corpus
from lmeff.model import init_random
from lmeff.tokens import (prepare, read_documents, load_tokens, tokenizer_path, write_documents, pack_tokens, load_tokenizer,
                          BOS_ID, EOS_ID)
from conftest import SHARED_DATA
from helpers import tiny_tokenizer

@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    "The synthetic corpus prepared by the data stage, and a model folder made from its tokenizer."
    d = tmp_path_factory.mktemp('synthetic')
    prepare('synthetic', d, [512], words=20000, n_pairs=4, progress=False)
    model = init_random('tiny', None, seed=0, out=d/'model', tokenizer=tokenizer_path(d/'synthetic', 512), seq_length=64)
    return d, model

def packed_documents(arr):
    "The `<s> doc </s>` sequences of a packed stream, as lists."
    starts = np.flatnonzero(np.asarray(arr) == BOS_ID)
    return [d.tolist() for d in np.split(np.asarray(arr), starts[1:])]

def test_scored_sentences_get_their_training_ids(synthetic):
    "Every training document: the scorer's ids of the whole text, and of each of its sentences alone, are the packed stream's."
    d, model = synthetic
    docs = [x for b in read_documents(d/'synthetic', 'train') for x in b]
    arr, _ = load_tokens(d, 'synthetic', 512, 'train')
    packed = packed_documents(arr)
    _, tok = load_model(model, device='cpu')                   # the encoder scoring uses, from the model folder
    assert len(packed) == len(docs) > 400
    assert packed == [s + [EOS_ID] for s in encode_sentences(tok, docs)]
    for doc, ids in zip(docs, packed):
        sentences = re.findall(r'\S[^.?!]*[.?!]', doc)          # each sentence as BLiMP would score it: alone, after <s>
        assert ' '.join(sentences) == doc
        alone = encode_sentences(tok, sentences)
        assert [BOS_ID] + [i for a in alone for i in a[1:]] + [EOS_ID] == ids

def blimp_sentences(d):
    "The synthetic corpus's BLiMP-format pairs, plus a spread of the real BLiMP when the shared data folder is there."
    pairs = [load_blimp(d/'synthetic'/'blimp')]
    if (SHARED_DATA/'blimp').is_dir(): pairs.append(load_blimp(SHARED_DATA/'blimp').groupby('task').head(50))
    return [s for p in pairs for s in (*p.sentence_good, *p.sentence_bad)]

def test_blimp_pairs_get_their_training_ids(synthetic):
    "BLiMP sentences packed as training documents by the data stage, and encoded by the scorer and by transformers: the same ids."
    d, model = synthetic
    sentences = blimp_sentences(d)
    as_docs = d/'as-docs'
    write_documents(Corpus('blimp-sentences', lambda: (('train' if i else 'dev', s) for i, s in enumerate(sentences)), {'n': len(sentences)}),
               as_docs, progress=False)
    tokenizer_path(as_docs, 512).parent.mkdir(parents=True)
    shutil.copy(tokenizer_path(d/'synthetic', 512), tokenizer_path(as_docs, 512))
    pack_tokens(as_docs, 512, 'train', progress=False)
    packed = packed_documents(load_tokens(d, 'as-docs', 512, 'train')[0])
    _, tok = load_model(model, device='cpu')
    scored = encode_sentences(tok, sentences[1:])
    assert len(packed) == len(scored) > 60 and packed == [s + [EOS_ID] for s in scored]
    from transformers import AutoTokenizer
    for hf in (AutoTokenizer.from_pretrained(model), load_tokenizer(model)):    # what users of transformers get agrees
        assert [[hf.bos_token_id, *e] for e in hf(sentences[1:], add_special_tokens=False)['input_ids']] == scored

def test_model_folder_tokenizer_files(synthetic):
    "The model folder's tokenizer.json is the data stage's, byte for byte; transformers reads it with the prefix space on."
    d, model = synthetic
    assert (model/'tokenizer.json').read_bytes() == tokenizer_path(d/'synthetic', 512).read_bytes()
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(model)
    assert (hf.pad_token, hf.bos_token, hf.eos_token, hf.pad_token_id, hf.bos_token_id, hf.eos_token_id) == ('<pad>', '<s>', '</s>', 0, 1, 2)
    assert json.loads(hf.backend_tokenizer.pre_tokenizer.__getstate__())['add_prefix_space'] is True
    assert hf('Mary waits.', add_special_tokens=False).input_ids == hf(' Mary waits.', add_special_tokens=False).input_ids
    # `bos_token` + text (what minicons scores) is <s> and the sentence; lmeff's own `load_tokenizer` reads "<s>" as text, as training does
    assert hf(hf.bos_token + 'Mary waits.').input_ids == [BOS_ID, *hf('Mary waits.').input_ids]
    assert BOS_ID not in load_tokenizer(model)('<s>Mary waits.').input_ids

# --- the same snapshot under two installs ---------------------------------------------------------------------------

REF = os.environ.get('LMEFF_SCORES_REF')

@pytest.mark.skipif(not REF, reason='set LMEFF_SCORES_REF to a folder: the first install writes a model and its scores there, the next compares')
def test_scores_agree_across_installs():
    """A tiny model with a BPE trained on BLiMP scores all 67 BLiMP tasks; a second install (the lowest supported versions)
    scores the same folder and must give the same ids, |Δ log p| < 1e-4 and no flipped decision."""
    import tokenizers, transformers
    if not (SHARED_DATA/'blimp').is_dir(): pytest.skip(f"real data folder {SHARED_DATA} not present (set LMEFF_SHARED_DATA)")
    ref = Path(REF)
    pairs = load_blimp(SHARED_DATA/'blimp')
    sentences = [*pairs.sentence_good, *pairs.sentence_bad]
    versions = dict(torch=torch.__version__, transformers=transformers.__version__, tokenizers=tokenizers.__version__)
    if not (ref/'scores.npz').is_file():
        ref.mkdir(parents=True, exist_ok=True)
        tj = tiny_tokenizer(ref/'tokenizer.json', 2000, sentences)
        init_random('tiny', None, seed=0, out=ref/'model', tokenizer=tj, seq_length=64)
    model, tok = load_model(ref/'model', device='cpu')
    ids = encode_sentences(tok, sentences)
    scores = score_model(model, tok, pairs, batch_size=256)
    lengths, flat = np.array([len(i) for i in ids]), np.concatenate(ids)
    if not (ref/'scores.npz').is_file():
        (ref/'versions.json').write_text(json.dumps(versions))
        np.savez(ref/'tmp.npz', logp_good=scores.logp_good.to_numpy(), logp_bad=scores.logp_bad.to_numpy(), lengths=lengths, ids=flat)
        os.replace(ref/'tmp.npz', ref/'scores.npz')           # written last: a reference is complete or absent
        return
    with np.load(ref/'scores.npz') as z:
        assert np.array_equal(z['lengths'], lengths) and np.array_equal(z['ids'], flat), 'BLiMP sentences are tokenized differently'
        expected = pairs.assign(logp_good=z['logp_good'], logp_bad=z['logp_bad'])
    c = compare_scores(scores, expected)
    flips = int(round((1 - c['decision_agreement']) * c['n_pairs']))
    (ref/'comparison.json').write_text(json.dumps(dict(reference=json.loads((ref/'versions.json').read_text()), this=versions,
                                                       n_pairs=c['n_pairs'], n_tasks=int(pairs.task.nunique()),
                                                       max_abs_diff=c['max_abs_diff'], flipped_decisions=flips)))
    assert c['n_pairs'] == 67_000 and c['max_abs_diff'] < 1e-4 and flips == 0, c
