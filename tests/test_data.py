import json, os, unicodedata, zipfile
import numpy as np, pytest
from lmeff.data import tinystories, babylm3, hybrid, clean_text, DataError, _unit
from lmeff.tokens import (prepare, write_text, train_tokenizer, load_tokens, load_tokenizer, tokenizer_path, tokens_path,
                          read_documents, BOS_ID, EOS_ID)
from lmeff.cli import main

def stories(tmp_path, train, dev=('The end.',)):
    src = tmp_path/'src'; src.mkdir(exist_ok=True)
    (src/'TinyStoriesV2-GPT4-train.txt').write_text('<|endoftext|>\n'.join(train))
    (src/'TinyStoriesV2-GPT4-valid.txt').write_text('<|endoftext|>\n'.join(dev))
    return src

def documents_of(arr):
    "Split a packed stream at <s> into documents (without <s> and </s>), checking the markers."
    starts = np.flatnonzero(arr == BOS_ID)
    docs = np.split(np.asarray(arr), starts[1:])
    assert all(d[0] == BOS_ID and d[-1] == EOS_ID and EOS_ID not in d[1:-1] and BOS_ID not in d[1:-1] for d in docs)
    return [d[1:-1] for d in docs]

def test_real_tinystories_round_trip_whole_documents(tmp_path, shared_data):
    src = shared_data/'corpus'/'tinystories'
    man = prepare('tinystories', tmp_path, [4000], source=src, progress=False)
    arr, tm = load_tokens(tmp_path, 'tinystories', 4000, 'train')
    originals = [d for b in read_documents(tmp_path/'tinystories', 'train') for d in b]
    assert len(originals) == man['text']['documents']['train'] == tm['documents'] > 1700
    tok = load_tokenizer(tokenizer_path(tmp_path/'tinystories', 4000))
    docs = documents_of(arr)
    assert len(docs) == len(originals)                     # nothing split or merged
    for ids, doc in zip(docs, originals):                  # nothing truncated: every document decodes back whole
        assert tok.decode(ids.tolist()) == ' ' + unicodedata.normalize('NFKC', doc)
    assert tm['tokens'] == len(arr) and tm['longest_document_tokens'] == max(len(d) for d in docs)
    assert tm['longest_document_tokens'] > 256             # longer than the reference's truncation length, kept whole
    raw = (src/'TinyStoriesV2-GPT4-train.head.txt').read_text()
    assert originals[0] == clean_text(raw.split('<|endoftext|>')[0].strip())

def test_manifest_counts_match_arrays(tmp_path):
    src = stories(tmp_path, ['A cat sat on the mat.', 'A dog ran.\n\nIt was fast , very fast.', 'Birds sing <s> and </s> too.'])
    prepare('tinystories', tmp_path/'data', [300], source=src, progress=False)
    for split, n in (('train', 3), ('dev', 1)):
        arr, m = load_tokens(tmp_path/'data', 'tinystories', 300, split)
        assert m['documents'] == n == int((arr == BOS_ID).sum()) == int((arr == EOS_ID).sum())
        assert m['tokens'] == len(arr) and os.path.getsize(tokens_path(tmp_path/'data'/'tinystories', 300, split)) == 2*len(arr)
        assert arr.dtype == np.uint16 and 0 not in set(arr.tolist())   # no <pad> ever counted
        assert m['tokenizer_sha256'] and m['source']['files']
    tok = load_tokenizer(tokenizer_path(tmp_path/'data'/'tinystories', 300))
    arr, _ = load_tokens(tmp_path/'data', 'tinystories', 300, 'train')
    assert tok.decode(documents_of(arr)[2].tolist()) == ' Birds sing <s> and </s> too.'

def test_dev_documents_never_reach_the_tokenizer(tmp_path):
    train = ['the cat and the dog play in the park'] * 50
    secret = ' '.join(['zqxjvw'] * 40)
    src = stories(tmp_path, train, dev=[secret] * 50)
    prepare('tinystories', tmp_path/'a', [400], source=src, progress=False)
    vocab = load_tokenizer(tokenizer_path(tmp_path/'a'/'tinystories', 400)).get_vocab()
    assert not any('zqxj' in t for t in vocab)
    src = stories(tmp_path, train + [secret] * 50)     # control: the same text in train does enter the vocabulary
    prepare('tinystories', tmp_path/'b', [400], source=src, progress=False)
    assert any('zqxj' in t for t in load_tokenizer(tokenizer_path(tmp_path/'b'/'tinystories', 400)).get_vocab())

def test_idempotent_and_rebuilds_on_change(tmp_path):
    src = stories(tmp_path, ['One story here.', 'Another story there.'] * 20)
    prepare('tinystories', tmp_path/'d', [300], source=src, progress=False)
    files = sorted(p for p in (tmp_path/'d').rglob('*') if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in files}
    prepare('tinystories', tmp_path/'d', [300], source=src, progress=False)
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    (src/'TinyStoriesV2-GPT4-train.txt').write_text('A completely new story.<|endoftext|>And one more.')
    prepare('tinystories', tmp_path/'d', [300], source=src, progress=False)
    arr, m = load_tokens(tmp_path/'d', 'tinystories', 300, 'train')
    assert m['documents'] == 2
    assert load_tokenizer(tokenizer_path(tmp_path/'d'/'tinystories', 300)).decode(documents_of(arr)[0].tolist()) == ' A completely new story.'

def test_tokenizer_training_is_deterministic(tmp_path):
    src = stories(tmp_path, [f'Story {i}: the cat saw {i % 7} birds and a dog.' for i in range(200)])
    for d in ('a', 'b'): prepare('tinystories', tmp_path/d, [320], source=src, progress=False)
    assert tokenizer_path(tmp_path/'a'/'tinystories', 320).read_bytes() == tokenizer_path(tmp_path/'b'/'tinystories', 320).read_bytes()

def test_interrupted_text_step_leaves_nothing_complete(tmp_path):
    src = stories(tmp_path, ['A story.'] * 10)
    corpus = tinystories(src)
    def broken():
        yield 'train', 'first doc'
        raise RuntimeError('killed')
    corpus.documents = broken
    with pytest.raises(RuntimeError): write_text(corpus, tmp_path/'d', progress=False)
    assert not (tmp_path/'d'/'text'/'manifest.json').exists() and not (tmp_path/'d'/'text'/'train.jsonl').exists()
    with pytest.raises(DataError, match='no prepared text'): train_tokenizer(tmp_path/'d', 300)

def test_stale_stream_without_manifest_is_rebuilt(tmp_path):
    src = stories(tmp_path, ['A story about a cat.'] * 10)
    prepare('tinystories', tmp_path/'d', [300], source=src, progress=False)
    p = tokens_path(tmp_path/'d'/'tinystories', 300, 'train')
    p.with_suffix('.json').unlink(); p.write_bytes(b'\0\0')       # e.g. killed mid-write by an older version
    with pytest.raises(DataError, match='not prepared'): load_tokens(tmp_path/'d', 'tinystories', 300, 'train')
    prepare('tinystories', tmp_path/'d', [300], source=src, progress=False)
    arr, m = load_tokens(tmp_path/'d', 'tinystories', 300, 'train')
    assert m['documents'] == 10 and len(arr) == m['tokens']

def test_zip_source(tmp_path):
    with zipfile.ZipFile(tmp_path/'ts.zip', 'w') as z:
        z.writestr('TinyStoriesV2-GPT4-train.txt', 'A cat.<|endoftext|>A dog.')
        z.writestr('TinyStoriesV2-GPT4-valid.txt', 'A bird.')
    m = prepare('tinystories', tmp_path/'d', [300], source=tmp_path/'ts.zip', progress=False)
    assert m['text']['documents'] == {'train': 2, 'dev': 1}

def test_babylm_layout_and_cleaning(tmp_path):
    src = tmp_path/'babylm'
    for sub in ('train_100M', 'train_10M', 'dev'): (src/sub).mkdir(parents=True)
    (src/'train_100M'/'childes.train').write_text('\n'.join(f'you want the ball {i} ?' for i in range(300)))
    (src/'train_100M'/'open_subtitles.train').write_text('Where are you?\nSubtitles by ACME\nHere  I am .\n')
    (src/'train_10M'/'childes.train').write_text('small set only\n')
    (src/'dev'/'childes.dev').write_text('is that a dog ?\n')
    corpus = babylm3(src, doc_words=100)
    docs = list(corpus.documents())
    train = [d for s, d in docs if s == 'train']
    assert 'small set only' not in ' '.join(train)                       # 100M chosen over 10M
    assert all(d.endswith('?') and ' ?' not in d for d in train[:-1])    # lines whole, space before ? dropped
    assert sum(len(d.split('\n')) for d in train[:-1]) == 300             # every line kept, none split
    assert all(len(d.split()) <= 100 + 6 for d in train)
    assert train[-1] == 'Where are you?\nHere I am.'                       # subtitle credit dropped
    assert [d for s, d in docs if s == 'dev'] == ['is that a dog?']
    assert [d for s, d in babylm3(src, train_set='10M').documents() if s == 'train'] == ['small set only']

def test_real_babylm_sample(tmp_path, shared_data):
    m = prepare('babylm3', tmp_path, [1000], source=shared_data/'corpus'/'babylm', progress=False)
    assert m['text']['documents']['train'] > 100 and m['text']['documents']['dev'] > 10
    assert set(m['text']['fingerprint']['files']) == {'train/childes.train', 'train/gutenberg.train', 'train/switchboard.train',
                                                      'dev/childes.dev', 'dev/gutenberg.dev', 'dev/switchboard.dev'}

def test_hybrid_filters_dedups_and_splits(tmp_path):
    wiki = tmp_path/'wikipedia'; wiki.mkdir()
    body = lambda i: ' '.join(f'word{i}x{j}' for j in range(30))
    docs = [f'<doc id="{i}" url="u" title="T{i}">\nT{i}\n\n{body(i)}\n</doc>' for i in range(400)]
    docs += ['<doc id="dup" url="u" title="D">\nD\n\n' + body(0) + '\n</doc>']          # exact duplicate
    docs += ['<doc id="short" url="u" title="S">\nS\n\ntoo short\n</doc>']            # < 10 words
    (wiki/'wiki_00').write_text('\n'.join(docs))
    c4 = tmp_path/'c4'; c4.mkdir()
    (c4/'part.jsonl').write_text('\n'.join(json.dumps({'text': f'c4 doc {i} ' + 'lorem ipsum ' * 10}) for i in range(50)))
    corpus = hybrid(tmp_path, words=1_000_000)
    out = list(corpus.documents())
    texts = [d for _, d in out]
    assert len(texts) == len(set(texts)) == 400 + 50
    assert all(len(d.split()) >= 10 for d in texts)
    dev = [d for s, d in out if s == 'dev']
    assert 0 < len(dev) < 0.15 * len(out)
    assert all(_unit(d, 1337) < 0.05 for d in dev)
    assert any('openwebtext' in n for n in corpus.notes)
    assert [d for _, d in hybrid(tmp_path, words=1_000_000).documents()] == texts            # deterministic
    small = [d for _, d in hybrid(tmp_path, words=10_000).documents()]                       # 15 % of 10k words from wikipedia
    wiki_words = sum(len(d.split()) for d in small if d.startswith('word'))
    assert 1500 <= wiki_words < 1500 + 31

def test_hybrid_name_path_source_and_bad_jsonl(tmp_path):
    (tmp_path/'x').mkdir(); (tmp_path/'x'/'a.jsonl').write_text('{"text": "fine doc with more than ten words in it ok ok ok"}\nnot json\n')
    corpus = hybrid(f'c4={tmp_path/"x"}', words=10**6)
    with pytest.raises(DataError, match=r'a.jsonl, line 2'): list(corpus.documents())
    with pytest.raises(DataError, match='unknown hybrid source'): hybrid(f'reddit={tmp_path/"x"}')

def test_error_paths(tmp_path):
    with pytest.raises(DataError, match='no such file'): prepare('tinystories', tmp_path/'d', [300], source=tmp_path/'nope', progress=False)
    (tmp_path/'empty').mkdir()
    with pytest.raises(DataError, match='no files'): prepare('tinystories', tmp_path/'d', [300], source=tmp_path/'empty', progress=False)
    (tmp_path/'onlytrain').mkdir(); (tmp_path/'onlytrain'/'x-train.txt').write_text('a')
    with pytest.raises(DataError, match='no dev file'): prepare('tinystories', tmp_path/'d', [300], source=tmp_path/'onlytrain', progress=False)
    (tmp_path/'blank').mkdir(); (tmp_path/'blank'/'x-train.txt').write_text('  <|endoftext|>  '); (tmp_path/'blank'/'x-valid.txt').write_text('ok')
    with pytest.raises(DataError, match='no train documents'): prepare('tinystories', tmp_path/'d', [300], source=tmp_path/'blank', progress=False)
    assert not (tmp_path/'d'/'tinystories'/'text'/'manifest.json').exists()
    (tmp_path/'bad.zip').write_bytes(b'PK\x03\x04 broken')
    with pytest.raises(DataError): prepare('tinystories', tmp_path/'d', [300], source=tmp_path/'bad.zip', progress=False)
    with pytest.raises(DataError, match='unknown dataset'): prepare('wikitext', tmp_path/'d', [300])
    with pytest.raises(DataError, match='256..65536'): prepare('tinystories', tmp_path/'d', [100])
    with pytest.raises(DataError, match='not prepared'): load_tokens(tmp_path/'d', 'tinystories', 300, 'train')

def test_cli_prep(tmp_path, capsys):
    src = stories(tmp_path, ['A cat sat.', 'A dog ran.'])
    assert main(['prep', 'tinystories', '--source', str(src), '--out', str(tmp_path/'d'), '--vocab-sizes', '300']) == 0
    assert '2 train / 1 dev documents' in capsys.readouterr().out
    assert main(['prep', 'tinystories', '--source', str(tmp_path/'missing'), '--out', str(tmp_path/'d'), '--vocab-sizes', '300']) == 2
    err = capsys.readouterr().err
    assert 'missing: no such file or folder' in err and 'Traceback' not in err
    assert main(['prep', 'tinystories', '--source', str(src), '--out', str(tmp_path/'d'), '--vocab-sizes', '3x']) == 2
    assert '--vocab-sizes' in capsys.readouterr().err

def test_synthetic_corpus_and_pairs(tmp_path):
    m = prepare('synthetic', tmp_path, [400], words=20_000, seed=3, n_pairs=10, progress=False)
    assert 20_000 <= m['text']['words']['train'] < 20_200 and m['text']['documents']['dev'] > 0
    files = sorted(p.name for p in (tmp_path/'synthetic'/'blimp').glob('*.jsonl'))
    from lmeff.synthetic import SYNTHETIC_TASKS
    assert files == sorted(f'{t}.jsonl' for t in SYNTHETIC_TASKS)
    again = prepare('synthetic', tmp_path, [400], words=20_000, seed=3, n_pairs=10, progress=False)
    assert again['tokens'][400]['train'] == m['tokens'][400]['train']
    other = prepare('synthetic', tmp_path, [400], words=20_000, seed=4, n_pairs=10, progress=False)   # new seed: rebuilt
    assert other['text']['sha256'] != m['text']['sha256']
    train = [d for b in read_documents(tmp_path/'synthetic', 'train') for d in b]
    dev = set(d for b in read_documents(tmp_path/'synthetic', 'dev') for d in b)
    assert not dev & set(train)
