"The synthetic corpus and its minimal pairs: grammatical, reproducible, and decidable by the grammar but not by word frequencies."
import json, math, subprocess, sys
from collections import Counter
import pytest
from lmeff.config import LmeffError
from lmeff import synthetic as syn
from lmeff.synthetic import synthetic_documents, synthetic_pairs, write_synthetic_blimp, SYNTHETIC_TASKS

BLIMP_KEYS = ['sentence_good', 'sentence_bad', 'one_prefix_prefix', 'one_prefix_word_good', 'one_prefix_word_bad', 'field',
              'linguistics_term', 'UID', 'simple_LM_method', 'one_prefix_method', 'two_prefix_method', 'lexically_identical', 'pairID']
HELD_OUT_TASKS = [t for t in SYNTHETIC_TASKS if t != 'sv_agreement_coordination']

# ---- an independent recogniser of the grammar: it knows the word lists, and checks structure and agreement itself ----
N_SUBJ = syn.N_NOUN_SUBJECTS
NOUN = {f: (o, num, g) for o, (forms, g) in enumerate(syn.OBJECTS) for num, f in enumerate(forms)}
NAME = {forms[0]: (N_SUBJ + k, g) for k, (forms, g) in enumerate(syn.NAMES)}
DET = {**{d: {0} for d in syn.DET_SG}, **{d: {1} for d in syn.DET_PL}, **{d: {0, 1} for d in syn.DET_ANY}}
VERB = {f: (v, num) for v, forms in enumerate(syn.VERBS) for num, f in enumerate(forms)}
N_IV = len(syn.INTRANSITIVE)
REFLEXIVE_VERBS = set(syn.RF_IDX)
REFL = {'himself': (0, 'm'), 'herself': (0, 'f'), 'itself': (0, 'n'), 'themselves': (1, None)}
ADJ, ADV, PREP = set(syn.ADJECTIVES), set(syn.ADVERBS), set(syn.PREPOSITIONS)
COPULA = {'is': 0, 'are': 1}

def at(t, i): return t[i] if i < len(t) else None

def np_core(t, i, names=True):
    "Name | Det (Adj) Noun with det-noun agreement: yields (end, num, gender, subject index or None, object index or None)."
    if names and at(t, i) in NAME:
        s, g = NAME[t[i]]; yield i+1, 0, g, s, None
    if at(t, i) in DET:
        k = i + 1 + (at(t, i+1) in ADJ)
        if at(t, k) in NOUN:
            o, num, g = NOUN[t[k]]
            if num in DET[t[i]]: yield k+1, num, g, (o if o < N_SUBJ else None), o

def agrees_reflexive(word, num, gender):
    rn, rg = REFL[word]
    return rn == num and (num == 1 or rg == gender)

def vp(t, i, num, gender):
    "Verb phrases agreeing with (num, gender): yields (end, tags, relations, verb index or None)."
    w = at(t, i)
    if COPULA.get(w) == num and at(t, i+1) in ADJ: yield i+2, (), (), None
    if w not in VERB or VERB[w][1] != num: return
    v = VERB[w][0]
    if v < N_IV:
        yield i+1, (), (), v
        if at(t, i+1) in ADV: yield i+2, (), (), v
        if at(t, i+1) in PREP:
            for j, *_ in np_core(t, i+2, names=False): yield j, (), (), v
        return
    for j, _, _, _, o in np_core(t, i+1): yield j, (), ((('vo', v, o),) if o is not None else ()), v
    if at(t, i+1) in REFL and v in REFLEXIVE_VERBS and gender is not None and agrees_reflexive(t[i+1], num, gender):
        yield i+2, ('reflexive',), (), v
        if at(t, i+2) in ADV: yield i+3, ('reflexive',), (), v

def subject(t, i):
    "Subjects: yields (end, num, gender, tags, relations, head subject index or None)."
    for j, num, g, s, _ in np_core(t, i):
        if s is None: continue # things are never subjects
        yield j, num, g, (), (), s
        if s >= N_SUBJ: continue # names take no modifiers
        if at(t, j) == 'that':
            for k, tags, rels, v in vp(t, j+1, num, g):
                yield k, num, g, ('subject_rc',) + tags, rels + ((('sv', s, v),) if v is not None else ()), s
            for k, n2, _, s2, _ in np_core(t, j+1):
                w = at(t, k)
                if s2 is not None and w in VERB and VERB[w][0] >= N_IV and VERB[w][1] == n2:
                    yield k+1, num, g, ('object_rc',), (('sv', s2, VERB[w][0]),), s
        if at(t, j) in PREP:
            for k, *_ in np_core(t, j+1, names=False): yield k, num, g, ('pp_modifier',), (), s
    for j, n1, g1, s1, _ in np_core(t, i, names=False):
        if s1 is None or at(t, j) not in ('and', 'or'): continue
        for k, n2, g2, s2, _ in np_core(t, j+1, names=False):
            if s2 is None: continue
            if t[j] == 'and': yield k, 1, 'n', ('coordination',), (), None
            elif n1 == n2 == 0: yield k, 0, (g1 if g1 == g2 else None), ('coordination',), (), None

def clause(t, i):
    if at(t, i) == 'there' and at(t, i+1) in COPULA:
        for j, num, *_ in np_core(t, i+2, names=False):
            if num == COPULA[t[i+1]]: yield j, ('existential',), ()
    for j, num, g, tags, rels, s in subject(t, i):
        for k, tags2, rels2, v in vp(t, j, num, g):
            yield k, tags + tags2, rels + rels2 + ((('sv', s, v),) if s is not None and v is not None else ())

def tokens(sentence):
    assert sentence.endswith('.') and sentence[0].isupper(), sentence
    t = sentence[:-1].split(' ')
    if t[0] not in NAME: t[0] = t[0].lower()
    return t

def parses(sentence):
    "All complete parses of a sentence, each (tags, relations); empty when the grammar rejects it."
    t, out = tokens(sentence), []
    for j, tags, rels in clause(t, 0):
        if j == len(t): out.append((tags, rels))
        elif at(t, j) in ('and', 'but', 'so'):
            out += [(tags + ('clause_conjunction',) + tags2, rels + rels2) for k, tags2, rels2 in clause(t, j+1) if k == len(t)]
    return out

def is_held_out(rel):
    kind, a, b = rel
    return syn.held_out(a, b) if kind == 'sv' else syn.held_out_object(a, b)

def sentences(doc): return [s + '.' for s in doc[:-1].split('. ')]

# ---- fixtures ----
@pytest.fixture(scope='module')
def corpus(): return list(synthetic_documents(200_000, seed=0))

@pytest.fixture(scope='module')
def pairs(): return synthetic_pairs(200, seed=0)

# ---- the recogniser itself ----
def test_recogniser_accepts_and_rejects_hand_written_sentences():
    good = ['The dog that the girls see runs.', 'The boys near the table are tall.',
            'The boy and the cats see themselves.', 'Mary helps herself again.', 'There are two dogs.', 'This cat or that dog sleeps.',
            'The dog sleeps under the table but the cats run.']
    bad = ['The dog that the girls see run.', 'The boys near the table is tall.', 'Mary helps himself.', 'The dogs help itself.',
           'There is two dogs.', 'These dog runs.', 'This cat and that dog sleeps.', 'The table runs.', 'The dog runs the cat.', 'The dog sees.']
    for s in good: assert parses(s), s
    for s in bad: assert not parses(s), s

def test_word_classes_are_disjoint():
    classes = [set(NOUN), set(NAME), set(DET), set(VERB), set(REFL), ADJ, ADV, PREP, set(COPULA), {'and', 'or', 'but', 'so', 'there'}]
    assert sum(map(len, classes)) == len(set().union(*classes))

# ---- the corpus ----
def test_corpus_is_grammatical_and_avoids_held_out_combinations(corpus):
    sents = [s for d in corpus[:400] for s in sentences(d)]
    assert len(sents) > 2000
    for s in sents:
        ps = parses(s)
        assert ps, f"rejected: {s}"
        assert any(not any(map(is_held_out, rels)) for _, rels in ps), f"held-out combination in the corpus: {s}"

def test_corpus_contains_the_constructions_the_pairs_test(corpus):
    sents = [s for d in corpus[:400] for s in sentences(d)]
    tags = Counter(tag for s in sents for tag in set(parses(s)[0][0]))
    for tag in ['subject_rc', 'object_rc', 'pp_modifier', 'reflexive', 'coordination', 'existential', 'clause_conjunction']:
        assert tags[tag] / len(sents) > 0.02, (tag, tags)
    words = Counter(w.strip('.') for d in corpus[:400] for w in d.split())
    for w in ['himself', 'herself', 'itself', 'themselves', 'this', 'these', 'that', 'those', 'and', 'or']: assert words[w] > 20, w

def test_documents_are_stories_of_capitalised_sentences(corpus):
    for d in corpus[:500]:
        assert d == d.strip() and '  ' not in d and d.endswith('.')
        ss = sentences(d)
        assert 3 <= len(ss) <= 12
        assert all(s[0].isupper() and s.count('.') == 1 for s in ss)

@pytest.mark.parametrize('n_words', [1, 1000, 54321])
def test_word_budget_is_met_within_one_document(n_words):
    lens = [len(d.split()) for d in synthetic_documents(n_words, seed=3)]
    assert sum(lens) >= n_words and sum(lens) - lens[-1] < n_words

def test_corpus_is_deterministic_and_a_prefix_of_larger_corpora():
    small = list(synthetic_documents(5000, seed=7))
    assert small == list(synthetic_documents(5000, seed=7))
    assert list(synthetic_documents(50_000, seed=7))[:len(small)] == small
    assert list(synthetic_documents(5000, seed=8)) != small
    assert list(synthetic_documents(0, seed=7)) == []

def test_corpus_does_not_depend_on_hash_randomisation():
    code = "from lmeff.synthetic import synthetic_documents; print(list(synthetic_documents(2000, 5))[-1])"
    runs = [subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env={'PYTHONHASHSEED': h}, check=True).stdout
            for h in ('1', '2')]
    assert runs[0] == runs[1] == list(synthetic_documents(2000, 5))[-1] + '\n'

@pytest.mark.parametrize('bad', [-1, 1.5, '100', None, True])
def test_bad_word_budget_is_a_user_error(bad):
    with pytest.raises(LmeffError, match='number of words'): list(synthetic_documents(bad, seed=0))

# ---- the minimal pairs ----
def test_pairs_are_well_formed(pairs):
    assert list(pairs) == SYNTHETIC_TASKS and 6 <= len(SYNTHETIC_TASKS) <= 8
    for uid, ps in pairs.items():
        assert len(ps) == 200
        assert [p['pairID'] for p in ps] == [str(i) for i in range(200)]
        assert len({p['sentence_good'] for p in ps}) == 200
        for p in ps:
            assert list(p) == BLIMP_KEYS
            assert p['UID'] == uid and p['field'] == 'morphology'
            assert p['linguistics_term'] in {'subject_verb_agreement', 'determiner_noun_agreement', 'anaphor_agreement'}
            assert all(isinstance(p[k], str) for k in BLIMP_KEYS[:8] + ['pairID'])
            assert all(isinstance(p[k], bool) for k in ['simple_LM_method', 'one_prefix_method', 'two_prefix_method', 'lexically_identical'])
            assert p['sentence_good'] != p['sentence_bad'] and p['one_prefix_word_good'] != p['one_prefix_word_bad']
            g, b = p['sentence_good'].split(), p['sentence_bad'].split()
            k = len(p['one_prefix_prefix'].split())
            assert len(g) == len(b) and [i for i in range(len(g)) if g[i] != b[i]] == [k]
            assert ' '.join(g[:k]) == ' '.join(b[:k]) == p['one_prefix_prefix']
            assert g[k].strip('.') == p['one_prefix_word_good'] and b[k].strip('.') == p['one_prefix_word_bad']

def test_pairs_have_the_fields_of_real_blimp(shared_data):
    real = json.loads((shared_data/'blimp'/'anaphor_gender_agreement.jsonl').read_text().splitlines()[0])
    assert list(real) == BLIMP_KEYS

def test_grammar_decides_every_pair(pairs):
    for uid, ps in pairs.items():
        for p in ps:
            assert parses(p['sentence_good']), (uid, p['sentence_good'])
            assert not parses(p['sentence_bad']), (uid, p['sentence_bad'])

def test_pairs_are_built_from_held_out_combinations(pairs):
    for uid in HELD_OUT_TASKS:
        for p in pairs[uid]:
            if p['one_prefix_word_good'] in COPULA: continue # is/are are never held out
            assert all(any(map(is_held_out, rels)) for _, rels in parses(p['sentence_good'])), (uid, p['sentence_good'])

def test_good_sentences_of_held_out_tasks_never_occur_in_the_corpus(corpus, pairs):
    seen = {s for d in corpus for s in sentences(d)}
    held = {p['sentence_good'] for uid in HELD_OUT_TASKS for p in pairs[uid] if p['one_prefix_word_good'] not in COPULA}
    assert len(held) > 1000 and not seen & held

def test_pairs_are_balanced(pairs):
    for uid, ps in pairs.items():
        assert Counter(p['one_prefix_word_good'] for p in ps) == Counter(p['one_prefix_word_bad'] for p in ps), uid
    singular = {forms[0] for forms in syn.VERBS} | {'is'}
    for uid in [t for t in SYNTHETIC_TASKS if t.startswith('sv_')]:
        assert sum(p['one_prefix_word_good'] in singular for p in pairs[uid]) == 100, uid
    assert sum(p['one_prefix_word_good'] == 'themselves' for p in pairs['anaphor_number_agreement']) == 100
    assert sum(p['one_prefix_word_good'] == 'himself' for p in pairs['anaphor_gender_agreement']) == 100
    for uid in ['determiner_noun_agreement', 'determiner_noun_agreement_with_adjective']:
        assert sum(NOUN[p['one_prefix_word_good']][1] == 0 for p in pairs[uid]) == 100

def test_distractors_have_the_other_number(pairs):
    "In the distractor tasks the noun closest to the verb disagrees with it, so 'agree with the nearest noun' fails."
    for uid in ['sv_agreement_distractor_pp', 'sv_agreement_relative_clause']:
        for p in pairs[uid]:
            good_num = COPULA.get(p['one_prefix_word_good'], VERB.get(p['one_prefix_word_good'], (None, None))[1])
            nearest = [w for w in p['one_prefix_prefix'].split() if w in NOUN][-1]
            assert NOUN[nearest][1] != good_num, p['sentence_good']
    for p in pairs['sv_agreement_coordination']:
        nouns = [w for w in p['one_prefix_prefix'].split() if w in NOUN]
        assert len(nouns) == 2 and all(NOUN[w][1] == 0 for w in nouns)

def test_unigram_model_is_at_chance(corpus, pairs):
    counts = Counter(w for d in corpus for w in d.lower().replace('.', ' ').split())
    vocab = set(counts) | {w for ps in pairs.values() for p in ps for w in p['sentence_good'].lower().replace('.', ' ').split()}
    total, V = sum(counts.values()), len(vocab)
    def logprob(s): return sum(math.log((counts[w] + 1) / (total + V)) for w in s.lower().replace('.', ' ').split())
    for uid, ps in pairs.items():
        acc = sum(logprob(p['sentence_good']) > logprob(p['sentence_bad']) for p in ps) / len(ps)
        assert 0.35 <= acc <= 0.65, (uid, acc)

def test_pairs_are_deterministic_and_seeded():
    assert synthetic_pairs(20, seed=1) == synthetic_pairs(20, seed=1)
    assert synthetic_pairs(20, seed=1) != synthetic_pairs(20, seed=2)
    assert synthetic_pairs(10, seed=1)['sv_agreement_simple'] == synthetic_pairs(20, seed=1)['sv_agreement_simple'][:10]

def test_large_paradigms_stay_distinct():
    ps = synthetic_pairs(1000, seed=0)
    assert all(len({p['sentence_good'] for p in v}) == 1000 for v in ps.values())

@pytest.mark.parametrize('bad', [0, -2, 2.0, None])
def test_bad_pair_count_is_a_user_error(bad):
    with pytest.raises(LmeffError, match='positive integer'): synthetic_pairs(bad)

def test_write_synthetic_blimp(tmp_path):
    paths = write_synthetic_blimp(tmp_path/'blimp', n_per_task=10, seed=4)
    assert [p.name for p in paths] == [f'{u}.jsonl' for u in SYNTHETIC_TASKS]
    assert sorted(x.name for x in (tmp_path/'blimp').iterdir()) == sorted(p.name for p in paths) # no temporary files left
    expected = synthetic_pairs(10, seed=4)
    for p in paths: assert [json.loads(l) for l in p.read_text().splitlines()] == expected[p.stem]
    assert write_synthetic_blimp(tmp_path/'blimp', n_per_task=10, seed=4) == paths # rewriting is safe

def test_write_synthetic_blimp_into_a_file_is_a_user_error(tmp_path):
    (tmp_path/'f').write_text('x')
    with pytest.raises(LmeffError, match=str(tmp_path/'f')): write_synthetic_blimp(tmp_path/'f'/'blimp', n_per_task=2)
