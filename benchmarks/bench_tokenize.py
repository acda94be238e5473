"""Tokenization throughput: lmeff's packing vs the reference method, measured in the same run.

Reference method (the original study): encode text in consecutive 1024-character chunks with a
`PreTrainedTokenizerFast`, one call per chunk. lmeff: whole documents through the tokenizer's parallel
`encode_batch_fast`, packed as `<s> doc </s>` (what `lmeff prep` does).

    python benchmarks/bench_tokenize.py [--source ../shared/data/corpus/wikipedia] [--vocab 16000] [--repeat 3]
"""
import argparse, time
from pathlib import Path
import numpy as np
from tokenizers import trainers, pre_tokenizers
from transformers import PreTrainedTokenizerFast
from lmeff.data import list_inputs, local_documents, clean_text
from lmeff.tokens import new_bpe, encode_documents, SPECIAL_TOKENS, BOS_ID

ROOT = Path(__file__).resolve().parents[1]

def reference_encode(hf, docs, chunk=1024):
    out = []
    for d in docs:
        for i in range(0, len(d), chunk): out.extend(hf(d[i:i+chunk], add_special_tokens=False)['input_ids'])
    return out

def lmeff_encode(tok, docs, batch=1000):
    return np.concatenate([encode_documents(tok, docs[i:i+batch])[0] for i in range(0, len(docs), batch)])

def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); res = fn(); times.append(time.perf_counter() - t)
    return min(times), res

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--source', default=ROOT.parent/'shared'/'data'/'corpus'/'wikipedia', type=Path, help='WikiExtractor folder (or any hybrid-style local source)')
    ap.add_argument('--vocab', type=int, default=16000)
    ap.add_argument('--repeat', type=int, default=3)
    a = ap.parse_args()
    docs = [clean_text(d) for f in list_inputs(a.source) for d in local_documents(f)]
    docs = [d for d in docs if d]
    mb = sum(len(d.encode()) for d in docs) / 1e6
    tok = new_bpe()
    tok.train_from_iterator(docs, trainers.BpeTrainer(vocab_size=a.vocab, min_frequency=2, show_progress=False,
                            special_tokens=list(SPECIAL_TOKENS.values()), initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.encode_special_tokens = True
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)
    t_ref, ref = best_of(lambda: reference_encode(hf, docs), a.repeat)
    t_new, new = best_of(lambda: lmeff_encode(tok, docs), a.repeat)
    text_tokens = len(new) - 2*len(docs)     # lmeff's stream without its <s> and </s> markers
    whole = sum(len(e.ids) for e in tok.encode_batch(docs, add_special_tokens=False))
    assert text_tokens == whole and int((new == BOS_ID).sum()) == len(docs)
    print(f"corpus: {a.source.name}, {len(docs):,} documents, {mb:.1f} MB, vocab {a.vocab}")
    print(f"{'method':<36}{'seconds':>9}{'MB/s':>9}{'tokens':>12}")
    print(f"{'reference (1024-char chunks)':<36}{t_ref:>9.2f}{mb/t_ref:>9.2f}{len(ref):>12,}")
    print(f"{'lmeff (whole docs, batched)':<36}{t_new:>9.2f}{mb/t_new:>9.2f}{text_tokens:>12,}")
    print(f"speed-up: {t_ref/t_new:.2f}x   reference's extra tokens from chunk edges: {100*(len(ref)-text_tokens)/text_tokens:+.2f}%")
