"""GPU throughput: lmeff's training path against the reference recipe, in one process on one GPU.

For each size at its reference batch (20m 64x1, 60m 128x2, 180m 256x2; sequences of 256 random tokens):

- lmeff: the model `lmeff.model.build_model` makes (fp32 master weights), bf16 autocast, the chunked linear +
  cross-entropy of `lmeff.loss` inside one `torch.compile`d `TrainingLoss`, fused AdamW with lmeff's parameter groups,
  gradient clipping, and the micro-batch split `lmeff.loss.split_for_memory` picks for the free memory (recorded in
  the `split` column: the tokens per optimizer step never change).
- reference: its own simple loop, as the original study trained: HF `LlamaForCausalLM` of the same shape, bf16
  autocast, `torch.compile` of the whole model with HF's loss inside (`labels=`), fused AdamW, gradient clipping.

Each method runs `--seconds` after its first two steps (the first one's time is the `compile_s` column); tokens/s
counts the steps finished in that time (one synchronisation at the end, none per step); `ratio` is lmeff over the
reference measured here, in this process. MFU = 6 * N * tokens/s / the card's peak dense bf16 FLOPS (N: all
parameters, embeddings included; the peak from the device name, or `--peak-tflops`). Peak memory is
`torch.cuda.max_memory_allocated`. Then BLiMP pairs/s at 60m with `lmeff.blimp.score_model` (bf16 autocast with the
output layer in fp32, and fp32), and the share of decisions the two agree on (pairs: `--blimp-dir`, else the
synthetic minimal pairs; the tokenizer is a small BPE trained on synthetic text).

Per size, two more pairs of rows, each lmeff against a baseline measured here (`ratio` is lmeff over it):

- data: tokens/s of batches at the reference batch read from a token stream prepared by `lmeff.tokens.prepare` (the
  synthetic corpus) onto the device, through lmeff's loader (`load_tokens`, `Windows.batch`, the training loop's
  pinned, non-blocking copy) against nanoGPT's `get_batch` (random offsets into the same memmap, pinned copy).
- state save: seconds the training loop waits while a resumable state is written (weights, AdamW's two moments,
  RNG states): lmeff's `StateWriter` (`save_s`; `written_s` until the file is complete) against a plain
  `torch.save` of the model and optimizer state dicts; the median of 3 saves into a folder inside `--out`, after
  one that allocates the writer's buffers. Here a `ratio` below 1 is faster.

    python benchmarks/bench_gpu.py [--seconds 30] [--sizes 20m 60m 180m] [--vocab 50257] [--out bench-gpu]
    python benchmarks/bench_gpu.py --cpu-smoke --out OUT   # every code path, tiny size, CPU, seconds

One table is printed and written to OUT/bench_gpu.csv. With the defaults the whole run takes about 9 minutes.
"""
import argparse, csv, datetime, gc, io, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import LlamaForCausalLM
from transformers.utils import logging as hf_logging
from lmeff.config import get_size, n_params
from lmeff.loss import TrainingLoss, memory_budget, split_for_memory
from lmeff.model import build_model, llama_config
from lmeff.state import ScheduleState, StateWriter
from lmeff.store import write_text
from lmeff.tokens import Windows, load_tokens, prepare, tokenizer_path
from lmeff.train import _to_device

SIZES = {'20m': (64, 1), '60m': (128, 2), '180m': (256, 2)} # size -> reference (batch, grad_accum)
SMOKE = {'tiny': (4, 2)}
PEAK_TFLOPS = {'H200': 989, 'H100 PCIe': 756, 'H100': 989, 'A100': 312, 'L40S': 362, 'A10': 125} # dense bf16, first match
COLUMNS = ['size', 'vocab', 'method', 'batch', 'split', 'steps', 'tokens_per_s', 'ratio', 'mfu', 'peak_gib', 'compile_s',
           'pairs_per_s', 'same_decisions', 'save_s', 'written_s']
SAVES = 3 # timed state saves per method and size

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)

def peak_tflops(a, device)->float|None:
    if a.peak_tflops: return a.peak_tflops
    if device.type != 'cuda': return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)

def param_groups(model, weight_decay:float)->list[dict]:
    "lmeff's AdamW groups: weight decay on matrices, none on norms."
    return [{'params': [p for p in model.parameters() if p.ndim >= 2], 'weight_decay': weight_decay},
            {'params': [p for p in model.parameters() if p.ndim < 2], 'weight_decay': 0.0}]

def lmeff_step(a, size, vocab, batch, accum, seq, device):
    "One optimizer step of lmeff's training path; and the micro-batch split it uses."
    s = get_size(size)
    model = build_model(size, vocab, seed=0, seq_length=seq).float().to(device).train()
    split = split_for_memory(size, vocab, batch, seq, memory_budget(device))
    micro, n = batch // split, accum * split
    fwd = torch.compile(TrainingLoss(model, a.autocast, 'chunked'), backend=a.backend)
    opt = torch.optim.AdamW(param_groups(model, s.weight_decay), lr=s.lr, fused=True)
    data = torch.randint(vocab, (n, micro, seq + 1), device=device)
    def step():
        total = torch.zeros((), device=device)   # read back once, at the end, never per step
        for i in range(n):
            loss = fwd(data[i]) / n
            loss.backward(); total += loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
        return total
    return step, split

def reference_step(a, size, vocab, batch, accum, seq, device):
    "One optimizer step of the reference recipe: the whole HF model with its loss compiled, bf16 autocast, fused AdamW."
    s = get_size(size)
    torch.manual_seed(0)
    model = LlamaForCausalLM(llama_config(size, vocab, seq)).to(device).train()
    fwd = torch.compile(model, backend=a.backend)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay, fused=True)
    data = torch.randint(vocab, (accum, batch, seq), device=device)
    def step():
        for i in range(accum):
            with torch.autocast(device.type, dtype=a.autocast, enabled=a.autocast is not None):
                loss = fwd(input_ids=data[i], labels=data[i]).loss / accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
        return loss
    return step, 1

def measure(a, method, size, vocab, batch, accum, seq, device)->dict:
    "Steady-state tokens/s, peak memory and compile time of one method at one size."
    row = dict(size=size, vocab=vocab, method=method, batch=f'{batch}x{accum}x{seq}')
    torch._dynamo.reset(); gc.collect()
    if device.type == 'cuda': torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(device)
    try:
        step, row['split'] = (lmeff_step if method == 'lmeff' else reference_step)(a, size, vocab, batch, accum, seq, device)
        t = time.perf_counter(); step(); sync(device); row['compile_s'] = round(time.perf_counter() - t, 1)
        step(); sync(device)
        steps, t = 0, time.perf_counter()
        while time.perf_counter() - t < a.seconds: step(); steps += 1
        sync(device); dt = time.perf_counter() - t
    except torch.OutOfMemoryError:
        return row | {'tokens_per_s': 'OOM'}
    tps = steps * batch * accum * seq / dt
    peak = peak_tflops(a, device)
    row |= dict(steps=steps, tokens_per_s=round(tps), mfu=f'{6 * n_params(size, vocab) * tps / (peak * 1e12):.1%}' if peak else '')
    if device.type == 'cuda': row['peak_gib'] = round(torch.cuda.max_memory_allocated(device) / 2**30, 1)
    return row

def data_rows(a, size, vocab, batch, seq, device, data_dir:Path)->list[dict]:
    "Tokens/s of `batch` sequences read from the prepared synthetic token stream onto the device: lmeff's loader, and nanoGPT's `get_batch`."
    tokens, _ = load_tokens(data_dir, 'synthetic', vocab, 'train')
    windows, rng = Windows(tokens, seq, 0), np.random.default_rng(0)
    def lmeff_batch(i): return _to_device(windows.batch(range(i * batch, (i + 1) * batch)), device)   # as `lmeff.train.optimizer_step` reads
    def reference_batch(i):
        x = torch.from_numpy(np.stack([tokens[j:j + seq + 1].astype(np.int64) for j in rng.integers(len(tokens) - seq, size=batch)]))
        return x.pin_memory().to(device, non_blocking=True) if device.type == 'cuda' else x.to(device)
    rows = []
    for method, read in (('data reference', reference_batch), ('data lmeff', lmeff_batch)):
        read(0); sync(device)
        n, t = 0, time.perf_counter()
        while time.perf_counter() - t < min(a.seconds, 5): read(n); n += 1
        sync(device); dt = time.perf_counter() - t
        rows.append(dict(size=size, vocab=vocab, method=method, batch=f'{batch}x{seq + 1}', steps=n, tokens_per_s=round(n * batch * (seq + 1) / dt)))
    rows[1]['ratio'] = f"{rows[1]['tokens_per_s'] / rows[0]['tokens_per_s']:.2f}"
    return rows

def state_save_rows(a, size, vocab, device, folder:Path)->list[dict]:
    "Seconds the training loop waits for a resumable state of `size`: lmeff's `StateWriter`, and a plain `torch.save` of the state dicts."
    model = build_model(size, vocab, seed=0, seq_length=a.seq).float().to(device).train()
    opt = torch.optim.AdamW(param_groups(model, 0.0), lr=1e-3, fused=True)
    for p in model.parameters(): p.grad = torch.zeros_like(p)
    opt.step(); opt.zero_grad(set_to_none=True)   # AdamW's two moments per weight exist from the first step on
    sched, writer = LambdaLR(opt, lambda step: 1.0), StateWriter()
    save = lambda step: writer.save(folder/'lmeff.pt', {}, model, opt, sched, device, ScheduleState(step=step))
    save(0); writer.wait()   # allocates the writer's host buffers, once per schedule
    times = {'reference': [], 'lmeff': [], 'written': []}
    for i in range(SAVES):
        sync(device); t = time.perf_counter()
        torch.save({'model': model.state_dict(), 'optimizer': opt.state_dict()}, folder/'reference.pt')
        times['reference'].append(time.perf_counter() - t)
        t = time.perf_counter(); save(i + 1); times['lmeff'].append(time.perf_counter() - t)
        writer.wait(); times['written'].append(time.perf_counter() - t)
    mb = f"{(folder/'lmeff.pt').stat().st_size / 1e6:.0f} MB"
    s = {k: round(statistics.median(v), 4) for k, v in times.items()}
    return [dict(size=size, vocab=vocab, method='state save reference', batch=mb, save_s=s['reference']),
            dict(size=size, vocab=vocab, method='state save lmeff', batch=mb, save_s=s['lmeff'], written_s=s['written'],
                 ratio=f"{s['lmeff'] / s['reference']:.2f}")]

def blimp_rows(a, size, vocab, device, data_dir:Path, tmp:Path)->list[dict]:
    "BLiMP pairs/s of a random-init `size` model with lmeff's scorer, bf16 and fp32, and how often their decisions agree."
    from lmeff.blimp import compare_scores, load_blimp, score_model
    from lmeff.synthetic import write_synthetic_blimp
    tok = tokenizer_path(data_dir/'synthetic', vocab)
    pairs = load_blimp(a.blimp_dir or write_synthetic_blimp(tmp/'pairs', a.synthetic_pairs)[0].parent)
    model = build_model(size, vocab, seed=0).float().to(device).eval()
    score_model(model, tok, pairs.head(64))   # warm-up: kernels, allocator
    rows, scores = [], {}
    for dtype in ('bf16', 'fp32'):
        sync(device); t = time.perf_counter()
        scores[dtype] = score_model(model, tok, pairs, dtype=dtype)
        sync(device); rows.append(dict(size=size, vocab=vocab, method=f'blimp {dtype}', batch=f'{len(pairs)} pairs',
                                       pairs_per_s=round(len(pairs) / (time.perf_counter() - t))))
    rows[0]['same_decisions'] = f"{compare_scores(scores['bf16'], scores['fp32'])['decision_agreement']:.4f}"
    return rows

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--sizes', nargs='+', help='model sizes (default: 20m 60m 180m)')
    ap.add_argument('--vocab', type=int, default=50257, help='vocabulary size (default: 50257, the hybrid_3.7B configuration)')
    ap.add_argument('--seq', type=int, default=256, help='tokens per sequence')
    ap.add_argument('--seconds', type=float, default=30.0, help='timed seconds per method and size, after compiling')
    ap.add_argument('--peak-tflops', type=float, help="the card's peak dense bf16 TFLOPS (default: from its name)")
    ap.add_argument('--blimp-size', default='60m', help='model size of the BLiMP measurement')
    ap.add_argument('--blimp-dir', type=Path, help="BLiMP's .jsonl files (default: the synthetic minimal pairs)")
    ap.add_argument('--out', type=Path, default=Path('bench-gpu'), help='folder for bench_gpu.csv')
    ap.add_argument('--cpu-smoke', action='store_true', help='run every code path on the tiny size on the CPU, in seconds')
    a = ap.parse_args(argv)
    hf_logging.set_verbosity_error(); hf_logging.disable_progress_bar()
    if a.cpu_smoke:
        device, sizes, a.autocast, a.backend = torch.device('cpu'), SMOKE, torch.bfloat16, 'aot_eager'   # traced, not code-generated
        a.vocab, a.seq, a.seconds, a.blimp_size, a.tokenizer_words, a.synthetic_pairs = 512, 32, min(a.seconds, 0.5), 'tiny', 3000, 4
    else:
        if not torch.cuda.is_available(): ap.error("needs a CUDA GPU, and torch sees none (use --cpu-smoke to check the code paths on the CPU)")
        device, sizes, a.autocast, a.backend, a.tokenizer_words, a.synthetic_pairs = torch.device('cuda'), SIZES, torch.bfloat16, 'inductor', 200_000, 1000
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    if bad := [s for s in a.sizes or () if s not in sizes]: ap.error(f"unknown size(s) {', '.join(bad)}; known: {', '.join(sizes)}")
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'
    print(f"{name}; torch {torch.__version__}; {datetime.date.today()}; vocab {a.vocab}, seq {a.seq}, {a.seconds:g} s per method", flush=True)
    rows = []
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='bench_gpu-') as tmp, tempfile.TemporaryDirectory(prefix='.bench_gpu-states-', dir=a.out) as states:
        data_dir = Path(tmp)/'data'
        prepare('synthetic', data_dir, [a.vocab], words=a.tokenizer_words, progress=False)
        for size in a.sizes or sizes:
            batch, accum = sizes[size]
            pair = [measure(a, m, size, a.vocab, batch, accum, a.seq, device) for m in ('reference', 'lmeff')]
            if all(isinstance(r.get('tokens_per_s'), int) for r in pair): pair[1]['ratio'] = f"{pair[1]['tokens_per_s'] / pair[0]['tokens_per_s']:.2f}"
            for r in pair: print(f"  {size} {r['method']}: {r.get('tokens_per_s')} tokens/s", flush=True)
            data = data_rows(a, size, a.vocab, batch, a.seq, device, data_dir)
            print(f"  {size} data: {data[1]['tokens_per_s']} tokens/s read (the baseline {data[0]['tokens_per_s']})", flush=True)
            saves = state_save_rows(a, size, a.vocab, device, Path(states))
            print(f"  {size} state save: the loop waits {saves[1]['save_s']} s, written in {saves[1]['written_s']} s "
                  f"(torch.save: {saves[0]['save_s']} s)", flush=True)
            rows += pair + data + saves
        rows += blimp_rows(a, a.blimp_size, a.vocab, device, data_dir, Path(tmp))
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator='\n'); w.writeheader(); w.writerows(rows)
    write_text(a.out/'bench_gpu.csv', buf.getvalue())
    widths = {c: max(len(c), *(len(str(r.get(c, ''))) for r in rows)) for c in COLUMNS}
    print('  '.join(c.rjust(widths[c]) for c in COLUMNS))
    for r in rows: print('  '.join(str(r.get(c, '')).rjust(widths[c]) for c in COLUMNS))
    print(f"written: {a.out/'bench_gpu.csv'}")
    return 0

if __name__ == '__main__':
    sys.exit(main())
