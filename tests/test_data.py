import json, os, unicodedata, zipfile
import numpy as np, pytest
from lmeff.config import LmeffError
from lmeff.data import tinystories, babylm3, hybrid, clean_text, DataError, _unit
from lmeff.tokens import (prepare, write_documents, train_tokenizer, load_tokens, load_tokenizer, tokenizer_path, tokens_path,
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
    files = sorted(p for p in (tmp_path/'d').rglob('*') if p.is_file() and p.suffix != '.lock')   # the lock names its last holder
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
    with pytest.raises(RuntimeError): write_documents(corpus, tmp_path/'d', progress=False)
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

def corrupt_sources(root):
    "One source per way a corpus can be unreadable, each with a valid dev file beside the bad train file."
    def pair(name, train:bytes):
        d = root/name; d.mkdir(parents=True)
        (d/'x-train.txt').write_bytes(train); (d/'x-valid.txt').write_text('The end.')
        return d
    rng = np.random.default_rng(0)
    out = {'utf16': pair('utf16', 'A cat sat.<|endoftext|>A dog ran.'.encode('utf-16')),
           'utf16-no-bom': pair('utf16-no-bom', 'A cat sat.'.encode('utf-16-le')),
           'random': pair('random', bytes(rng.integers(0, 256, 5000, dtype=np.uint8))),
           'latin1': pair('latin1', 'A cat.\nA café.\n'.encode('latin-1'))}
    (root/'junk.zip').write_bytes(bytes(rng.integers(0, 256, 3000, dtype=np.uint8))); out['junk.zip'] = root/'junk.zip'
    with zipfile.ZipFile(root/'crc.zip', 'w', zipfile.ZIP_STORED) as z:
        z.writestr('x-train.txt', 'A cat sat on the mat. ' * 50); z.writestr('x-valid.txt', 'The end.')
    b = bytearray((root/'crc.zip').read_bytes()); b[b.find(b'A cat') + 100] ^= 0x20; (root/'crc.zip').write_bytes(bytes(b))
    out['crc.zip'] = root/'crc.zip'
    return out

UNREADABLE = {'utf16': r'x-train.txt, line 1: not UTF-8 text \(byte 0xff at offset 0\); UTF-16\?',
              'utf16-no-bom': r'x-train.txt, line 1: not UTF-8 text \(byte 0x00 at offset 1\); UTF-16\?',
              'random': r'x-train.txt, line \d+: not UTF-8 text',
              'latin1': r'x-train.txt, line 2: not UTF-8 text \(byte 0xe9 at offset 12\)',
              'junk.zip': r'junk.zip: not a zip archive',
              'crc.zip': r'crc.zip, member x-train.txt: damaged or unreadable archive \(Bad CRC-32'}

@pytest.mark.parametrize('kind,message', UNREADABLE.items(), ids=UNREADABLE)
def test_unreadable_corpus_is_an_error_and_writes_nothing(tmp_path, kind, message):
    src = corrupt_sources(tmp_path/'src')[kind]
    with pytest.raises(DataError, match=message): prepare('tinystories', tmp_path/'data', [300], source=src, progress=False)
    assert not (tmp_path/'data').exists()

def test_undecodable_byte_located_past_the_first_chunk(tmp_path):
    "A two-byte character split by the 1 MiB read boundary is text; the bad byte after it is found at its true offset and line."
    mib = 1 << 20
    text = ('a' * 99 + '\n') * (mib // 100) + 'x' * (mib % 100 - 1) + 'é' + '\nok\n'   # 'é' is bytes mib-1 and mib
    data = text.encode() + b'bad \xff here\n'
    (tmp_path/'x-train.txt').write_bytes(data); (tmp_path/'x-valid.txt').write_text('ok')
    with pytest.raises(DataError) as e: list(tinystories(tmp_path).documents())
    assert f'line {text.count(chr(10)) + 1}: not UTF-8 text (byte 0xff at offset {len(text.encode()) + 4:,})' in str(e.value)

def test_nul_in_text_is_not_text(tmp_path):
    (tmp_path/'a-train.txt').write_bytes(b'fine line\nbad\x00line\n'); (tmp_path/'a-valid.txt').write_text('ok')
    with pytest.raises(DataError, match=r'a-train.txt, line 2: not UTF-8 text \(byte 0x00 at offset 13\)'): list(tinystories(tmp_path).documents())

def test_utf8_bom_is_dropped(tmp_path):
    bom = '\ufeff'.encode()
    (tmp_path/'s-train.txt').write_bytes(bom + 'Once upon a time.<|endoftext|>The end.'.encode()); (tmp_path/'s-valid.txt').write_bytes(bom + b'Bye.')
    assert list(tinystories(tmp_path).documents()) == [('train', 'Once upon a time.'), ('train', 'The end.'), ('dev', 'Bye.')]
    wiki = tmp_path/'h'/'wikipedia'; wiki.mkdir(parents=True)   # the BOM does not hide a WikiExtractor file's first <doc
    (wiki/'wiki_00').write_bytes(bom + ('<doc id="1" url="u" title="T">\nT\n\n' + 'word ' * 12 + '\n</doc>\n').encode())
    assert [d for _, d in hybrid(tmp_path/'h', words=1000).documents()] == [('word ' * 12).strip()]

def test_damaged_gzip_is_an_error(tmp_path):
    import gzip
    c4 = tmp_path/'c4'; c4.mkdir()
    (c4/'a.jsonl.gz').write_bytes(b'plain text, not gzip')
    with pytest.raises(DataError, match=r'a.jsonl.gz: damaged or unreadable archive \(Not a gzipped file'): list(hybrid(tmp_path, words=1000).documents())
    whole = gzip.compress(b'\n'.join(json.dumps({'text': f'doc {i} ' + 'w ' * 20}).encode() for i in range(2000)))
    (c4/'a.jsonl.gz').write_bytes(whole[:len(whole) // 2])   # cut off
    with pytest.raises(DataError, match=r'a.jsonl.gz: damaged or unreadable archive'): list(hybrid(tmp_path, words=10**6).documents())

def test_failed_prep_keeps_the_previous_dataset(tmp_path):
    src = stories(tmp_path, ['A cat sat.', 'A dog ran.'])
    prepare('tinystories', tmp_path/'d', [300], source=src, progress=False)
    before = {p: p.read_bytes() for p in (tmp_path/'d').rglob('*') if p.is_file()}
    (src/'TinyStoriesV2-GPT4-train.txt').write_bytes('A new story.'.encode() + b'\xff')
    with pytest.raises(DataError, match='not UTF-8 text'): prepare('tinystories', tmp_path/'d', [300], source=src, progress=False)
    assert {p: p.read_bytes() for p in (tmp_path/'d').rglob('*') if p.is_file()} == before

def test_word_budgets_must_be_positive():
    from lmeff.data import synthetic
    for words in (0, -5, 2.5, '100'):
        with pytest.raises(DataError, match='words must be a positive integer'): synthetic(words=words)
        with pytest.raises(DataError, match='words must be a positive integer'): hybrid('unused', words=words)
    assert synthetic(words=None).fingerprint['words'] == 2_000_000

def test_prepare_refuses_no_vocab_sizes_and_a_file_as_data_dir(tmp_path):
    (tmp_path/'f').write_text('')
    with pytest.raises(DataError, match='no vocabulary size'): prepare('synthetic', tmp_path/'d', [], words=1000)
    with pytest.raises(LmeffError, match='is a file, not a folder'): prepare('synthetic', tmp_path/'f', [300], words=1000)
    with pytest.raises(LmeffError, match=f'{tmp_path/"f"} is a file'): prepare('synthetic', tmp_path/'f'/'sub', [300], words=1000)
    assert not (tmp_path/'d').exists() and (tmp_path/'f').read_text() == ''

@pytest.fixture
def prepared(tmp_path):
    src = stories(tmp_path, [f'Story {i}: a cat sat on the mat.' for i in range(30)])
    prepare('tinystories', tmp_path/'d', [300], source=src, progress=False)
    return tmp_path/'d'/'tinystories'

def test_cut_off_text_names_file_and_line(prepared):
    path = prepared/'text'/'train.jsonl'; lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b''.join(lines[:10]) + lines[10][:7])               # cut mid-line
    with pytest.raises(DataError, match=r'train.jsonl, line 11: cut off or damaged.*delete .*text and run `lmeff prep` again'):
        train_tokenizer(prepared, 320, progress=False)
    path.write_bytes(b''.join(lines[:10]))                               # cut at a line boundary: the count tells
    with pytest.raises(DataError, match=r'train.jsonl: 10 documents where its manifest counts 30'): train_tokenizer(prepared, 320, progress=False)
    assert not tokenizer_path(prepared, 320).exists()
    path.write_bytes(b''.join(lines[:10]) + b'"caf\xe9"\n' + b''.join(lines[11:]))   # damaged bytes
    with pytest.raises(DataError, match=r'train.jsonl, line 11: cut off or damaged'): list(read_documents(prepared, 'train'))

def test_stream_of_another_tokenizer_is_refused(prepared):
    data = prepared.parent
    arr, m = load_tokens(data, 'tinystories', 300, 'train')
    foreign = np.asarray(arr).copy(); foreign[len(foreign) // 2] = 300   # one id past the vocabulary
    path = tokens_path(prepared, 300, 'train'); del arr; foreign.tofile(path)
    with pytest.raises(DataError, match=r'train-tok300.bin: token id 300 in a vocabulary of 300 .*delete it and run `lmeff prep tinystories'):
        load_tokens(data, 'tinystories', 300, 'train')
    man = json.loads(path.with_suffix('.json').read_text()); man['vocab_size'] = 16000; path.with_suffix('.json').write_text(json.dumps(man))
    with pytest.raises(DataError, match='its manifest is for vocabulary size 16000'): load_tokens(data, 'tinystories', 300, 'train')

def test_max_token_is_cheap_and_samples_huge_streams(tmp_path):
    import time
    from lmeff.tokens import max_token
    a = np.random.default_rng(0).integers(0, 16000, 20_000_000, dtype=np.uint16); a[123_456] = 16001
    a.tofile(tmp_path/'t.bin'); m = np.memmap(tmp_path/'t.bin', dtype=np.uint16, mode='r')
    max_token(m); t = time.perf_counter(); top = max_token(m); took = time.perf_counter() - t
    assert top == 16001 and took < 0.1, took
    assert max_token(m, sample=1 << 20) < 16001 <= max_token(a)          # a sample reads 64 blocks: a foreign stream has large ids everywhere
    assert max_token(np.full(10_000, 9, np.uint16), sample=640) == 9

def test_unknown_dataset_is_named_with_the_known_ones(tmp_path):
    with pytest.raises(DataError, match=r"unknown dataset 'foo'.*knows only tinystories, babylm3, hybrid_3.7B, synthetic"): load_tokens(tmp_path, 'foo', 300, 'train')
    with pytest.raises(DataError, match=r'not prepared \(run `lmeff prep synthetic'): load_tokens(tmp_path, 'synthetic', 300, 'train')
