"""Training throughput: lmeff's loop vs the Hugging Face `Trainer` recipe, measured in the same run.

Reference recipe (the original study): `transformers.Trainer` on the same `LlamaForCausalLM` (loaded from the same
random init folder that lmeff trains from), the same batch, gradient accumulation, sequence length and packed token
windows (a torch Dataset over `lmeff.tokens.load_tokens`; labels = inputs, shifted inside the model), AdamW (the
Trainer's default implementation, `adamw_torch_fused`) with a cosine schedule and warmup, no evaluation, no saving,
sparse logging, no reporting, no dataloader workers. lmeff: `lmeff.train.train(TrainConfig(...))`, the code users
run, with evaluation, resumable states and milestone snapshots pushed out of reach. Progress bars are off for both
unless `--progress`.

How it is timed. Each method runs for N1 and for N2 optimizer steps, each time from the same random init on disk,
and the whole call is timed (loading, building, training, lmeff's final resumable state). Everything done once per
call (loading the data and the model, building the optimizer and the Trainer, `torch.compile`, first-step
allocations) cancels in the difference, leaving the steady state of the loop:

    tokens/s = (N2 - N1) * tokens_per_step / (t(N2) - t(N1))

This times both loops the same way from the outside, with no hook into either (callbacks could time the Trainer,
but lmeff's loop has none). One untimed 1-step run of each method comes first (lazy imports, thread pools, compile
caches), runs alternate between the methods so that load from other processes hits both alike, and each t(N) is
the best of `--repeats` runs. On the CPU each run is also timed in process CPU seconds: on a shared machine wall
time includes the time other processes held the cores, CPU time does not, so the CPU verdict uses the CPU-time
ratio (both ratios are printed; on an idle machine they agree). Use `--threads 1` on a busy machine: with more
threads than free cores, OpenMP waits make every timing erratic.

CPU (default): fp32, sizes tiny (vocab 512, where the loop's own overhead shows most) and 20m (vocab 16000) at
small batches, so that one full run takes a few minutes.
GPU (`--gpu`): bf16 autocast, optional `--compile`, the reference batches 64x1 / 128x2 / 256x2 for 20m / 60m / 180m
at sequence length 256 and vocab 16000; also prints MFU = 6 * N * tokens/s / peak bf16 FLOPS (N: all parameters,
embeddings included) and peak memory (`torch.cuda.max_memory_allocated`).

    python benchmarks/bench_train.py [--threads 1] [--sizes tiny 20m] [--repeats 2]
    python benchmarks/bench_train.py --gpu [--compile] [--sizes 20m 60m 180m] [--peak-tflops 989]
    python benchmarks/bench_train.py --data-dir DATA_DIR --dataset D --vocab V   # a prepared dataset instead of synthetic

Exit status 1 when lmeff is slower than the Trainer beyond `--tolerance`.
"""
import argparse, contextlib, gc, importlib.util, io, math, shutil, sys, tempfile, time
from dataclasses import dataclass
from pathlib import Path
import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments
from lmeff.config import LmeffError
from lmeff.tokens import prepare, load_tokens, tokenizer_path
from lmeff.config import get_size, n_params
from lmeff.model import init_random
from lmeff.store import random_init_dir
from lmeff.train_config import TrainConfig
from lmeff.train import train, run_dir

# size -> (batch, grad_accum, seq_length, vocab, N1, N2)
CPU_SIZES = {'tiny': (16, 1, 256, 512, 5, 30), '20m': (8, 1, 128, 16000, 1, 8)}
GPU_SIZES = {'20m': (64, 1, 256, 16000, 10, 40), '60m': (128, 2, 256, 16000, 5, 20), '180m': (256, 2, 256, 16000, 5, 15)}

class WindowDataset(torch.utils.data.Dataset):
    "Non-overlapping `seq_length` windows of a packed stream, as the Trainer's causal-LM examples (labels = inputs)."
    def __init__(self, tokens, seq_length:int): self.tokens, self.T, self.n = tokens, seq_length, (len(tokens) - 1) // seq_length
    def __len__(self): return self.n
    def __getitem__(self, i):
        x = torch.from_numpy(self.tokens[i*self.T : (i+1)*self.T].astype(np.int64))
        return {'input_ids': x, 'labels': x}

@dataclass
class Case:
    "One size to measure and everything both methods share."
    size:str
    batch:int
    accum:int
    seq:int
    vocab:int
    steps:tuple
    a:argparse.Namespace # the command line
    out:Path # output root shared by both (the random init lives under it)

    @property
    def tokens_per_step(self): return self.batch * self.accum * self.seq
    @property
    def init_dir(self): return random_init_dir(self.out, self.size, self.vocab, self.a.seed)

def sync(gpu:bool):
    if gpu: torch.cuda.synchronize()

def run_lmeff(c:Case, steps:int)->tuple[float, float]:
    "Wall and process CPU seconds of `lmeff.train.train` for `steps` optimizer steps."
    a = c.a
    cfg = TrainConfig.make(c.size, a.dataset, a.data_dir, c.vocab, seq_length=c.seq, seed=a.seed, out=c.out,
                      batch_size=c.batch, grad_accum=c.accum, epochs=10**6, milestones=(1e9,), eval_every=10**9, save_every=10**9,
                      max_steps=steps, progress=a.progress, device='cuda' if a.gpu else 'cpu', dtype='bf16' if a.gpu else 'fp32',
                      compile=a.compile)
    shutil.rmtree(run_dir(cfg), ignore_errors=True)   # a finished run would be returned as it is, not trained again
    sync(a.gpu); t, cpu = time.perf_counter(), time.process_time()
    res = train(cfg)
    sync(a.gpu); t, cpu = time.perf_counter() - t, time.process_time() - cpu
    assert res['schedules'][0]['steps'] == steps, res
    return t, cpu

def run_trainer(c:Case, steps:int, dataset)->tuple[float, float]:
    "Wall and process CPU seconds of the Trainer recipe for `steps` optimizer steps, from loading the same random init."
    a, s = c.a, get_size(c.size)
    sync(a.gpu); t, cpu = time.perf_counter(), time.process_time()
    model = AutoModelForCausalLM.from_pretrained(c.init_dir, dtype=torch.float32)
    args = TrainingArguments(output_dir=str(c.out/'hf-trainer'), max_steps=steps, per_device_train_batch_size=c.batch,
                             gradient_accumulation_steps=c.accum, learning_rate=s.lr, weight_decay=s.weight_decay,
                             warmup_steps=s.warmup_steps, lr_scheduler_type='cosine', adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
                             max_grad_norm=1.0, eval_strategy='no', save_strategy='no', logging_steps=10**9, report_to=[],
                             dataloader_num_workers=0, dataloader_drop_last=True, disable_tqdm=not a.progress, use_cpu=not a.gpu, bf16=a.gpu,
                             torch_compile=a.compile, seed=a.seed)
    trainer = Trainer(model=model, args=args, train_dataset=dataset)
    with contextlib.redirect_stdout(io.StringIO()): trainer.train()   # without tqdm the Trainer prints its log dicts
    sync(a.gpu); t, cpu = time.perf_counter() - t, time.process_time() - cpu
    assert trainer.state.global_step == steps, trainer.state.global_step
    return t, cpu

def measure(c:Case)->dict:
    "Steady-state tokens/s (and peak GPU memory) of both methods for one size."
    a = c.a
    init_random(c.size, c.vocab, a.seed, c.init_dir, tokenizer=tokenizer_path(Path(a.data_dir)/a.dataset, c.vocab), seq_length=c.seq)
    dataset = WindowDataset(load_tokens(a.data_dir, a.dataset, c.vocab, 'train')[0], c.seq)
    n1, n2 = c.steps
    if len(dataset) < n2 * c.batch * c.accum:   # each timed run must stay in the Trainer's first epoch: no short last batch
        sys.exit(f"bench_train.py: {a.dataset} has {len(dataset):,} windows of {c.seq} tokens, fewer than the {n2 * c.batch * c.accum:,} "
                 f"sequences of {n2} steps of {c.size}; use more data (--words) or fewer steps")
    runs = {'lmeff': lambda n: run_lmeff(c, n), 'trainer': lambda n: run_trainer(c, n, dataset)}
    best = {(m, n): (math.inf, math.inf) for m in runs for n in (n1, n2)}   # (wall, CPU) seconds
    peak = dict.fromkeys(runs, 0)
    if a.compile: torch._dynamo.reset()   # a fresh compile cache per size: the shapes change, the recompile limit is small
    for fn in runs.values(): fn(1)   # untimed warm-up (and the compile, cached for the timed runs)
    for _ in range(a.repeats):
        for n in (n1, n2):
            for m, fn in runs.items():
                gc.collect()
                if a.gpu: torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
                best[m, n] = tuple(map(min, best[m, n], fn(n)))
                if a.gpu: peak[m] = max(peak[m], torch.cuda.max_memory_allocated())
    res = {'case': c}
    for m in runs:
        for clock, suffix in ((0, ''), (1, '_cpu')):
            dt = best[m, n2][clock] - best[m, n1][clock]
            if dt <= 0: sys.exit(f"bench_train.py: {c.size}/{m}: {n2} steps took no longer than {n1}; too noisy, raise --steps")
            res[m + suffix] = (n2 - n1) * c.tokens_per_step / dt
        res[m + '_peak'] = peak[m]
    res['ratio'], res['ratio_cpu'] = res['lmeff'] / res['trainer'], res['lmeff_cpu'] / res['trainer_cpu']
    return res

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--gpu', action='store_true', help='GPU mode: bf16, reference batches, MFU and peak memory')
    ap.add_argument('--compile', action='store_true', help='torch.compile both models (GPU mode)')
    ap.add_argument('--sizes', nargs='+', help='model sizes (default: tiny 20m on CPU, 20m 60m 180m on GPU)')
    ap.add_argument('--steps', nargs=2, type=int, metavar=('N1', 'N2'), help='optimizer steps of the short and the long run (default per size)')
    ap.add_argument('--repeats', type=int, default=2, help='runs of each measurement; the best counts')
    ap.add_argument('--threads', type=int, help='torch CPU threads (default: torch default)')
    ap.add_argument('--data-dir', type=Path, help='a prepared data root (default: a synthetic dataset in a temporary folder)')
    ap.add_argument('--dataset', default='synthetic', help='dataset under --data-dir')
    ap.add_argument('--vocab', type=int, help='vocabulary size for every size (default per size: tiny 512 on CPU, else 16000)')
    ap.add_argument('--words', type=int, help='training words of the generated synthetic dataset (default: 300k on CPU, 2M on GPU)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--peak-tflops', type=float, default=989.0, help='peak dense bf16 TFLOPS of the GPU (H100 SXM: 989)')
    ap.add_argument('--tolerance', type=float, default=0.03, help='ratio shortfall still read as timing noise in the verdict')
    ap.add_argument('--progress', action='store_true', help='show both progress bars (as users see them)')
    a = ap.parse_args(argv)
    table = GPU_SIZES if a.gpu else CPU_SIZES
    sizes = a.sizes or list(table)
    if a.gpu and not torch.cuda.is_available(): ap.error("--gpu needs a CUDA GPU, and torch sees none (torch.cuda.is_available() is False)")
    if a.compile and not a.gpu: ap.error("--compile is for the GPU mode (--gpu)")
    if a.data_dir is None and a.dataset != 'synthetic': ap.error("--dataset needs --data-dir")
    if bad := [s for s in sizes if s not in table]: ap.error(f"unknown size(s) {', '.join(bad)} for this mode; known: {', '.join(table)}")
    if a.steps and not 1 <= a.steps[0] < a.steps[1]: ap.error("--steps N1 N2 needs 1 <= N1 < N2")
    if importlib.util.find_spec('accelerate') is None: ap.error("the Trainer needs accelerate (pip install 'accelerate>=1.1')")
    if a.threads: torch.set_num_threads(a.threads)
    transformers.logging.set_verbosity_error(); transformers.utils.logging.disable_progress_bar()
    results = []
    with tempfile.TemporaryDirectory(prefix='bench_train-') as tmp:
        tmp = Path(tmp)
        cases = [Case(s, *table[s][:3], a.vocab or table[s][3], tuple(a.steps or table[s][4:]), a, tmp/'out') for s in sizes]
        if a.data_dir is None:
            a.data_dir = tmp/'data'
            prepare('synthetic', a.data_dir, sorted({c.vocab for c in cases}), words=a.words or (2_000_000 if a.gpu else 300_000),
                    seed=a.seed, progress=False)
        try:
            for c in cases: load_tokens(a.data_dir, a.dataset, c.vocab, 'train')
        except LmeffError as e: sys.exit(f"bench_train.py: {e}")
        device = torch.cuda.get_device_name() if a.gpu else f"CPU, {torch.get_num_threads()} torch thread(s)"
        precision = ('bf16 autocast' + (' + torch.compile' if a.compile else '')) if a.gpu else 'fp32'
        print(f"{a.dataset}: {device}; {precision}; best of {a.repeats} per timing", flush=True)
        for c in cases:
            results.append(measure(c))
            print(f"  {c.size} measured", flush=True)
    head = f"{'size':<6}{'vocab':>7}{'B x A x T':>12}{'steps':>7}{'lmeff tok/s':>13}{'Trainer tok/s':>15}{'ratio':>7}"
    head += f"{'lmeff MFU':>11}{'Trainer MFU':>13}{'lmeff GiB':>11}{'Trainer GiB':>13}" if a.gpu else f"{'ratio (CPU time)':>18}"
    print(head)
    for r in results:
        c = r['case']
        line = (f"{c.size:<6}{c.vocab:>7}{f'{c.batch}x{c.accum}x{c.seq}':>12}{'%d-%d' % c.steps:>7}"
                f"{r['lmeff']:>13,.0f}{r['trainer']:>15,.0f}{r['ratio']:>7.2f}")
        if a.gpu:
            mfu = {m: 6 * n_params(c.size, c.vocab) * r[m] / (a.peak_tflops * 1e12) for m in ('lmeff', 'trainer')}
            line += f"{mfu['lmeff']:>11.1%}{mfu['trainer']:>13.1%}{r['lmeff_peak'] / 2**30:>11.1f}{r['trainer_peak'] / 2**30:>13.1f}"
        else: line += f"{r['ratio_cpu']:>18.2f}"
        print(line)
    # on a shared CPU, wall time also counts the time other processes held the cores; the process's CPU time does not
    key = 'ratio' if a.gpu else 'ratio_cpu'
    slow = [r['case'].size for r in results if r[key] < 1 - a.tolerance]
    what = 'tokens/s' if a.gpu else 'tokens per CPU second'
    print(f"verdict: lmeff is SLOWER than the Trainer ({what}) on {', '.join(slow)}" if slow else
          f"verdict: lmeff is no slower than the Trainer ({what}: every ratio >= {1 - a.tolerance:.2f}, {a.tolerance:.0%} allowed for noise)")
    return 1 if slow else 0

if __name__ == '__main__':
    sys.exit(main())
