"""BLiMP scoring throughput: lmeff's scorer vs the reference scorer method, measured in the same run on the same pairs.

Reference method (the original study's scorer): task by task, pairs in file order, batches of 64 pairs = 64 good +
64 bad sentences, each `<s>` + tokens, right-padded to the longest in the batch with an attention mask; the full
forward pass gives logits at every position, `log_softmax` over the whole vocabulary, gather the next token,
mask the padding, sum. lmeff: `lmeff.blimp.score_model`, the code users run: all sentences of all tasks sorted
into length buckets, the output layer only at real positions, logit minus logsumexp.

Both score the same pairs with the same model and tokenizer (a random init with a byte-level BPE trained on a
corpus sample), so the decisions must be identical; the script checks that and prints the largest difference.
A small untimed warm-up of each comes first, repetitions alternate between the two methods so that load from
other processes hits both alike, and each time is the best of `--repeats` (the usual way to read timings on a
shared machine). On the CPU the process's CPU time is reported beside the wall time: on a machine shared with
other jobs it is the steadier of the two (with `--threads 1` it is the work done, whatever the load).

CPU (default): fp32, the 20m model, `--tasks 10` paradigms spread over BLiMP, the first `--pairs 200` of each,
so one run takes a few minutes on two cores.
GPU (`--gpu`): the 60m model, all of BLiMP (67,000 pairs), bf16 autocast for both methods; also times lmeff in
fp32 and reports how far bf16 scores are from fp32 ones (largest |Δ log-prob|, share of identical decisions).

    python benchmarks/bench_blimp.py [--tasks 10] [--pairs 200] [--repeats 1]
    python benchmarks/bench_blimp.py --gpu
    python benchmarks/bench_blimp.py --blimp-dir PATH --corpus PATH --work DIR   # DIR keeps the tokenizer and init for reruns
"""
import argparse, glob, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
from tokenizers import trainers, pre_tokenizers
from lmeff.blimp import BLIMP_TASKS, load_blimp, load_model, score_model, compare_scores, encode_sentences
from lmeff.tokens import new_bpe, SPECIAL_TOKENS
from lmeff.model import init_random

SHARED = Path(__file__).resolve().parents[1].parent/'shared'/'data'

def reference_scores(model, tok, pairs, dtype='fp32', batch_pairs=64):
    "The reference scorer: per task, file order, 64 good + 64 bad sentences padded to the longest, full log_softmax."
    device = next(model.parameters()).device
    pairs = pairs.reset_index(drop=True)
    good, bad = np.zeros(len(pairs)), np.zeros(len(pairs))
    real = padded = 0
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == 'bf16'):
        for _, rows in pairs.groupby('task', sort=False):
            idx = rows.index.to_numpy()
            for i in range(0, len(idx), batch_pairs):
                chunk = idx[i:i+batch_pairs]
                seqs = encode_sentences(tok, list(pairs.sentence_good[chunk]) + list(pairs.sentence_bad[chunk]))
                T = max(map(len, seqs))
                x = torch.full((len(seqs), T), tok.token_to_id(SPECIAL_TOKENS['pad_token'])); mask = torch.zeros_like(x)
                for j, s in enumerate(seqs): x[j, :len(s)] = torch.tensor(s); mask[j, :len(s)] = 1
                x, mask = x.to(device), mask.to(device)
                logits = model(input_ids=x, attention_mask=mask).logits.float()
                lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, x[:, 1:, None])[..., 0] * mask[:, 1:]
                s = lp.double().sum(1).cpu().numpy()
                good[chunk], bad[chunk] = s[:len(chunk)], s[len(chunk):]
                real += int(mask.sum()); padded += mask.numel()
    return pairs.assign(logp_good=good, logp_bad=bad), real/padded

def build_model(work:Path, corpus:Path, size:str, vocab:int)->Path:
    "A random init of `size` with a byte-level BPE of `vocab` trained on the corpus files (reused when present)."
    tj, model_dir = work/f'tokenizer_{vocab}.json', work/f'llama-{size}-tok{vocab}'
    if not tj.exists():
        files = sorted(glob.glob(str(corpus/'**'/'*.txt'), recursive=True))
        if not files: sys.exit(f"{corpus}: no .txt files to train the tokenizer on (give --corpus)")
        tok = new_bpe()
        tok.train(files, trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=list(SPECIAL_TOKENS.values()),
                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
        tok.save(str(tj))
    return init_random(size, vocab, seed=0, out=model_dir, tokenizer=tj)

def timed(f, device):
    "Wall time, process CPU time and result of `f()`."
    if device.type == 'cuda': torch.cuda.synchronize()
    t, c = time.perf_counter(), time.process_time(); out = f()
    if device.type == 'cuda': torch.cuda.synchronize()
    return (time.perf_counter() - t, time.process_time() - c), out

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--blimp-dir', type=Path, default=SHARED/'blimp', help='folder of the 67 BLiMP .jsonl files')
    p.add_argument('--corpus', type=Path, default=SHARED/'corpus'/'gutenberg', help='text files to train the BPE on')
    p.add_argument('--work', type=Path, help='folder for the tokenizer and the random init (default: a temporary folder)')
    p.add_argument('--gpu', action='store_true', help='GPU mode: 60m, all of BLiMP, bf16 autocast')
    p.add_argument('--size', help='model size (default: 20m on CPU, 60m with --gpu)')
    p.add_argument('--vocab', type=int, default=16000, help='BPE vocabulary size (default: 16000)')
    p.add_argument('--tasks', type=int, help='number of BLiMP paradigms, spread over the 67 (default: 10 on CPU, 67 with --gpu)')
    p.add_argument('--pairs', type=int, help='first pairs of each paradigm (default: 200 on CPU, 1000 with --gpu)')
    p.add_argument('--batch-size', type=int, help="lmeff's sentences per batch (default: 256 on CPU, 2048 with --gpu)")
    p.add_argument('--repeats', type=int, default=1, help='timed runs of each method; the best counts (default: 1)')
    p.add_argument('--threads', type=int, help='torch CPU threads (default: torch default)')
    p.add_argument('--device', help='torch device (default: cuda with --gpu, else cpu)')
    p.add_argument('--dtype', choices=('fp32', 'bf16'), help='scoring precision of both methods (default: bf16 with --gpu, else fp32)')
    a = p.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    size, n_tasks = a.size or ('60m' if a.gpu else '20m'), a.tasks or (67 if a.gpu else 10)
    n_pairs, bs = a.pairs or (1000 if a.gpu else 200), a.batch_size or (2048 if a.gpu else 256)
    dtype, device = a.dtype or ('bf16' if a.gpu else 'fp32'), torch.device(a.device or ('cuda' if a.gpu else 'cpu'))
    if device.type == 'cuda' and not torch.cuda.is_available(): sys.exit('no CUDA device')
    cuda = device.type == 'cuda'

    tasks = [BLIMP_TASKS[i] for i in np.linspace(0, len(BLIMP_TASKS) - 1, n_tasks).round().astype(int)]
    pairs = load_blimp(a.blimp_dir, tasks=tasks, expect_full=False).groupby('task', sort=False).head(n_pairs).reset_index(drop=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = a.work or Path(tmp); work.mkdir(parents=True, exist_ok=True)
        model, tok = load_model(build_model(work, a.corpus, size, a.vocab), device=str(device))
    n = len(pairs)
    print(f"BLiMP scoring on {device} ({torch.cuda.get_device_name() if cuda else f'{torch.get_num_threads()} threads'}), "
          f"{size} random init, vocab {a.vocab}, {dtype}: {len(tasks)} tasks x {n_pairs} pairs = {n} pairs", flush=True)

    warm = pairs.head(64)
    reference_scores(model, tok, warm, dtype); score_model(model, tok, warm, bs, dtype)
    t_ref = t_ours = (float('inf'),)*2
    for _ in range(a.repeats):
        t, (ref, real_share) = timed(lambda: reference_scores(model, tok, pairs, dtype), device); t_ref = tuple(map(min, t_ref, t))
        t, ours = timed(lambda: score_model(model, tok, pairs, bs, dtype), device); t_ours = tuple(map(min, t_ours, t))
    cpu = lambda t: '' if cuda else f", CPU time {t[1]:.1f} s"
    print(f"reference (file order, 64+64 sentences per batch, full log_softmax; {real_share:.0%} of positions real): "
          f"{n/t_ref[0]:,.1f} pairs/s ({t_ref[0]:.1f} s{cpu(t_ref)})")
    print(f"lmeff score_model (equal-length batches of <= {bs}, no padding, in-place logsumexp): "
          f"{n/t_ours[0]:,.1f} pairs/s ({t_ours[0]:.1f} s{cpu(t_ours)})")
    print(f"speed-up: {t_ref[0]/t_ours[0]:.2f}x wall" + ('' if cuda else f", {t_ref[1]/t_ours[1]:.2f}x CPU time") + " (target >= 1.5x)")
    if dtype == 'bf16':   # exactness is checked in fp32; bf16 is compared with fp32
        bf16 = ours
        (t32, _), ours = timed(lambda: score_model(model, tok, pairs, bs, 'fp32'), device)
        (t32_ref, _), (ref, _) = timed(lambda: reference_scores(model, tok, pairs, 'fp32'), device)
        b = compare_scores(bf16, ours)
        print(f"fp32: lmeff {n/t32:,.1f} pairs/s ({t32:.1f} s), reference {n/t32_ref:,.1f} pairs/s ({t32_ref:.1f} s)")
        print(f"lmeff bf16 vs fp32: max |delta log-prob| {b['max_abs_diff']:.3f}, identical decisions {b['decision_agreement']:.2%}, "
              f"accuracy {np.mean(bf16.logp_good > bf16.logp_bad):.4f} vs {np.mean(ours.logp_good > ours.logp_bad):.4f}")
        if cuda: print(f"peak GPU memory {torch.cuda.max_memory_allocated()/2**30:.1f} GiB")
    c = compare_scores(ours, ref)
    same = int(round(c['decision_agreement'] * n))
    print(f"decisions identical (fp32): {'yes' if same == n else 'NO'} ({same}/{n}); max |delta log-prob| {c['max_abs_diff']:.2e}")
    return 0 if same == n else 1

if __name__ == '__main__': sys.exit(main())
