"The chunked loss equals the plain F.cross_entropy path (value and gradients, fp32 and bf16, tied or untied, eager or compiled); the memory arithmetic and the micro-batch split."
import pytest, torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM
from lmeff.config import LmeffError, get_size
from lmeff.loss import (TrainingLoss, default_chunk, linear_cross_entropy, model_loss, split_for_memory, train_memory)
from lmeff.model import build_model, llama_config

def plain_ce(h, w, y, dtype):
    "The plain path: logits in the compute dtype (as autocast makes them), then fp32 cross-entropy."
    return F.cross_entropy((h.to(dtype) @ w.to(dtype).T).float(), y)

def value_and_grads(f, h, w, y):
    h, w = h.clone().requires_grad_(), w.clone().requires_grad_()
    loss = f(h, w, y); loss.backward()
    return loss.detach(), h.grad, w.grad

def close(a, b, rel):
    "Equal within `rel` of the larger values' scale (bf16 rounds to 2^-8 relative)."
    assert (a - b).abs().max().item() <= rel * b.abs().max().item() + 1e-7, ((a - b).abs().max().item(), b.abs().max().item())

@pytest.mark.parametrize('dtype,rel', [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize('chunk', [7, 64, 1000])
def test_linear_cross_entropy_equals_plain(dtype, rel, chunk):
    torch.manual_seed(0)
    h, w, y = torch.randn(300, 48), torch.randn(777, 48) * 0.3, torch.randint(777, (300,))
    ref = value_and_grads(lambda h, w, y: plain_ce(h, w, y, dtype), h, w, y)
    got = value_and_grads(lambda h, w, y: linear_cross_entropy(h, w, y, chunk=chunk, dtype=dtype), h, w, y)
    for a, b in zip(got, ref): close(a, b, rel)
    assert got[2].dtype == w.dtype and got[1].dtype == h.dtype

def test_scaled_backward_and_no_grad():
    "Backward scales the kept gradients by the incoming one; without grad only the value is computed."
    torch.manual_seed(1)
    h, w, y = torch.randn(50, 16), torch.randn(90, 16), torch.randint(90, (50,))
    a = value_and_grads(lambda h, w, y: 3 * linear_cross_entropy(h, w, y, chunk=16), h, w, y)
    b = value_and_grads(lambda h, w, y: 3 * plain_ce(h, w, y, torch.float32), h, w, y)
    for x, z in zip(a, b): close(x, z, 1e-5)
    with torch.no_grad(): close(linear_cross_entropy(h, w, y, chunk=16), plain_ce(h, w, y, torch.float32), 1e-6)
    hh = h.clone().requires_grad_()   # only the hidden states need a gradient
    linear_cross_entropy(hh, w, y, chunk=16).backward()
    close(hh.grad, b[1] / 3, 1e-5)

def tiny(tied:bool):
    if not tied: return build_model('tiny', 512, seed=0, seq_length=32)
    cfg = llama_config('tiny', 512, 32); cfg.tie_word_embeddings = True
    torch.manual_seed(0)
    m = LlamaForCausalLM(cfg)
    assert m.lm_head.weight is m.model.embed_tokens.weight
    return m

@pytest.mark.parametrize('tied', [False, True])
@pytest.mark.parametrize('dtype,rel', [(None, 1e-5), (torch.bfloat16, 3e-2)])
def test_model_loss_chunked_equals_plain_through_the_model(tied, dtype, rel):
    m = tiny(tied)
    batch = torch.randint(512, (4, 33), generator=torch.Generator().manual_seed(2))
    out = {}
    for kind in ('chunked', 'plain'):
        m.zero_grad()
        loss = model_loss(m, batch, dtype, kind, chunk=50)   # 128 rows: three chunks, the last short
        loss.backward()
        out[kind] = loss.item(), {n: p.grad.clone() for n, p in m.named_parameters()}
    assert out['chunked'][0] == pytest.approx(out['plain'][0], rel=rel)
    for n, g in out['plain'][1].items(): close(out['chunked'][1][n], g, rel)

def test_model_loss_matches_the_models_own_loss():
    "The plain path is HF's own shifted loss (labels = inputs)."
    m, batch = tiny(False), torch.randint(512, (2, 17))
    with torch.no_grad():
        hf = m(input_ids=batch, labels=batch).loss
        assert model_loss(m, batch, kind='chunked').item() == pytest.approx(hf.item(), rel=1e-5)

def test_bad_kind():
    with pytest.raises(LmeffError, match="loss must be one of chunked, plain, got 'fused'"): TrainingLoss(tiny(False), kind='fused')

def test_linear_cross_entropy_compiles_whole():
    "torch.compile (inductor, CPU) traces the chunked loss and its gradient without a graph break."
    torch._dynamo.reset()
    torch.manual_seed(3)
    h, w, y = torch.randn(100, 32), torch.randn(300, 32), torch.randint(300, (100,))
    f = torch.compile(lambda h, w, y: linear_cross_entropy(h, w, y, chunk=32, dtype=torch.bfloat16), fullgraph=True)
    for a, b in zip(value_and_grads(f, h, w, y), value_and_grads(lambda h, w, y: plain_ce(h, w, y, torch.bfloat16), h, w, y)): close(a, b, 2e-2)

def train_losses(kind, compiled, dtype, steps=4):
    "Train losses of a few AdamW steps of the tiny model, as lmeff's loop takes them."
    torch._dynamo.reset()
    torch.manual_seed(0)
    m = build_model('tiny', 512, seed=0, seq_length=32)
    fwd = TrainingLoss(m, dtype, kind, chunk=48)
    fwd = torch.compile(fwd) if compiled else fwd
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3, fused=True)
    batch, out = torch.randint(512, (4, 33), generator=torch.Generator().manual_seed(1)), []
    for _ in range(steps):   # the same batch: the loss must fall
        loss = fwd(batch)
        loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); opt.zero_grad(set_to_none=True)
        out.append(loss.item())
    return out

@pytest.mark.slow
@pytest.mark.parametrize('dtype,rel', [(None, 1e-4), (torch.bfloat16, 2e-2)])
def test_compiled_training_equals_eager(dtype, rel):
    "torch.compile of model + chunked loss (inductor, CPU) trains like eager, and like the plain loss."
    eager = train_losses('chunked', False, dtype)
    assert train_losses('chunked', True, dtype) == pytest.approx(eager, rel=rel)
    assert train_losses('plain', False, dtype) == pytest.approx(eager, rel=rel)
    assert eager[-1] < eager[0]

def test_default_chunk():
    assert default_chunk(50257) == 2624 and default_chunk(512) == 262144 and default_chunk(10**9) == 64

def saved_bytes(m, batch, dtype):
    "Bytes of the unique storages the decoder saves for backward, not counting parameters."
    seen = {}
    def pack(t): seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes(); return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast('cpu', dtype=dtype or torch.float32, enabled=dtype is not None):
        m.get_decoder()(input_ids=batch, use_cache=False)
    params = {p.untyped_storage().data_ptr() for p in m.parameters()}
    return sum(v for k, v in seen.items() if k not in params)

@pytest.mark.parametrize('dtype,name', [(torch.bfloat16, 'bf16'), (None, 'fp32')])
def test_eager_activations_are_what_the_decoder_saves(dtype, name):
    "The estimate's eager activations + weight copies against the storages HF LLaMA actually saves (within 5%)."
    m, batch = build_model('tiny', 512, seed=0, seq_length=128), torch.randint(512, (8, 128))
    est = train_memory('tiny', 512, 8, 128, dtype=name, compiled=False)
    assert saved_bytes(m, batch, dtype) == pytest.approx(est['activations'] + est['bf16 weight copies'], rel=0.05)

def test_memory_of_180m_at_vocab_50257():
    "The issue's numbers: the plain loss alone ~31-37 GiB, the eager step ~95-100 GiB; chunked and compiled it needs the split for 40 GiB."
    gib = lambda **kw: {k: v / 2**30 for k, v in train_memory('180m', 50257, 256, 256, **kw).items()}
    plain = gib(loss='plain', compiled=False)
    assert 31 <= plain['loss'] <= 37 and 95 <= plain['peak'] <= 101
    assert gib()['loss'] < 2 and gib()['peak'] > 40
    assert split_for_memory('180m', 50257, 256, 256, 40 * 2**30) == 2
    assert train_memory('180m', 50257, 128, 256)['peak'] <= 40 * 2**30

@pytest.mark.parametrize('size,batch', [('20m', 64), ('60m', 128), ('180m', 256), ('tiny', 12)])
def test_split_divides_the_micro_batch_and_keeps_the_tokens(size, batch):
    "Each split is an even division: k parts of batch/k sequences, k times the accumulation, the same tokens per step."
    vocab, seq, accum = 50257, 256, get_size(size).grad_accum
    need = train_memory(size, vocab, batch, seq)['peak']
    for budget in (None, need, need - 1, need // 3, need // 7):
        try: k = split_for_memory(size, vocab, batch, seq, budget)
        except LmeffError as e: assert 'even one sequence' in str(e); continue
        assert batch % k == 0 and (batch // k) * (accum * k) * seq == batch * accum * seq
        assert budget is None or train_memory(size, vocab, batch // k, seq)['peak'] <= budget
        for d in (d for d in range(1, k) if batch % d == 0): assert train_memory(size, vocab, batch // d, seq)['peak'] > budget   # the fewest parts
    assert split_for_memory(size, vocab, batch, seq, None) == 1 and split_for_memory(size, vocab, batch, seq, need) == 1
