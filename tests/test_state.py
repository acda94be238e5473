"A schedule's resumable state: resumed onto any device, written while training goes on, never half-written."
import errno, json, time
from pathlib import Path
import pytest, torch
from torch.optim.lr_scheduler import LambdaLR
from lmeff.config import LmeffError
from lmeff.train_config import TrainConfig
from lmeff.model import build_model
from lmeff.schedule import wsd_lambda
from lmeff.state import ScheduleState, StateWriter, _digest, resume_key, resume_schedule, save_schedule
from lmeff.store import STATE_FILE
from lmeff.train import train

KEY = resume_key(TrainConfig.make('tiny', 'synthetic', 'data', 512, seq_length=16, anchors=(0.004,)), 1, 16)

def fresh(device='cpu'):
    torch.manual_seed(0)
    m = build_model('tiny', 512, 0).to(device)
    o = torch.optim.AdamW(m.parameters(), lr=1e-3)
    return m, o, LambdaLR(o, wsd_lambda(2))

def trained(steps=3):
    m, o, s = fresh()
    for _ in range(steps):
        x = torch.arange(16)[None] % 512
        m(input_ids=x, labels=x).loss.backward(); o.step(); s.step(); o.zero_grad()
    return m, o, s

@pytest.mark.filterwarnings('ignore:.*meta parameter')   # loading into a meta model copies nothing: only where the tensors go matters
@pytest.mark.parametrize('branch', [False, True], ids=['own state', 'wsd branch from its trunk'])
def test_resume_onto_a_non_cpu_device_restores_the_rng(tmp_path, branch):
    "torch.set_rng_state takes only a CPU ByteTensor: resuming onto a device that is not the CPU ('meta' here, CUDA on a GPU) still restores the RNG."
    m, o, s = trained()
    save_schedule(tmp_path/'trunk'/STATE_FILE, KEY, m, o, s, torch.device('cpu'), ScheduleState(step=3, best=2.5))
    after = torch.rand(4)   # what the RNG draws next, after the state
    meta = torch.device('meta')
    m2, o2, s2 = fresh(meta)
    (tmp_path/'branch').mkdir()
    st, _ = (resume_schedule(tmp_path/'branch', KEY, m2, o2, s2, meta, start=tmp_path/'trunk'/STATE_FILE, start_step=3) if branch
             else resume_schedule(tmp_path/'trunk', KEY, m2, o2, s2, meta))
    assert st.step == 3 and torch.equal(torch.rand(4), after)
    assert all(v.device.type == 'meta' for g in o2.state.values() for k, v in g.items() if k != 'step')   # the moments went to the model's device

@pytest.mark.cuda
def test_resume_on_cuda_is_exact(tmp_path):
    "On a GPU: weights, optimizer and both RNGs (CPU and CUDA) come back from a state written on CUDA."
    dev = torch.device('cuda')
    m, o, s = fresh(dev)
    x = torch.arange(16, device=dev)[None] % 512
    m(input_ids=x, labels=x).loss.backward(); o.step(); s.step(); o.zero_grad()
    save_schedule(tmp_path/STATE_FILE, KEY, m, o, s, dev, ScheduleState(step=1))
    after, after_cuda = torch.rand(4), torch.rand(4, device=dev)
    m2, o2, s2 = fresh(dev)
    st, _ = resume_schedule(tmp_path, KEY, m2, o2, s2, dev)
    assert st.step == 1 and torch.equal(torch.rand(4), after) and torch.equal(torch.rand(4, device=dev), after_cuda)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))

def test_the_digest_of_older_states_is_unchanged():
    "A state written by an earlier lmeff still verifies: the checksum covers the same names, dtypes, shapes and bytes."
    weights = {'w': torch.arange(6, dtype=torch.float32).reshape(2, 3), 'b': torch.arange(3, dtype=torch.bfloat16)}
    optim = {'state': {0: {'step': torch.tensor(5.0), 'exp_avg': torch.ones(2, 3)}}, 'param_groups': [{'lr': 1e-3, 'betas': (0.9, 0.999), 'params': [0]}]}
    assert _digest(weights, optim) == 'dc0f2bc2bea2cfa0b6a37d3931bce3695140f627dd047c136b44837df80799fc'

def test_a_state_is_written_as_it_was_when_saved(tmp_path):
    "The writer copies the tensors before it returns: training may change them while the file is written; the file verifies and resumes."
    m, o, s = trained()
    writer = StateWriter()
    for step in (3, 4):   # the second save reuses the first one's buffers
        want = {k: v.clone() for k, v in m.state_dict().items()}
        want_avg = [g['exp_avg'].clone() for g in o.state.values()]
        writer.save(tmp_path/STATE_FILE, KEY, m, o, s, torch.device('cpu'), ScheduleState(step=step))
        with torch.no_grad():
            for p in m.parameters(): p.add_(1.0)                  # the next step, while the state is being written
        for g in o.state.values(): g['exp_avg'].add_(1.0)
    writer.wait()
    m2, o2, s2 = fresh()
    st, _ = resume_schedule(tmp_path, KEY, m2, o2, s2, torch.device('cpu'))
    assert st.step == 4 and all(torch.equal(want[k], v) for k, v in m2.state_dict().items())
    assert all(torch.equal(a, g['exp_avg']) for a, g in zip(want_avg, o2.state.values()))

def cfg(data, out, **kw):
    base = dict(seq_length=32, anchors=(0.004,), milestones=(), batch_size=8, grad_accum=1, eval_every=100, eval_sequences=16,
                epochs=1, out=str(out), progress=False, device='cpu', save_every=2, log_every=1)
    return TrainConfig.make('tiny', 'synthetic', data, 512, **(base | kw))

def test_training_goes_on_while_its_state_is_written(data, tmp_path, monkeypatch):
    "The loop waits for a copy of the tensors, not for the disk: while the state of step 2 is being written, steps 3 and 4 train."
    real, lines_when_written = torch.save, []
    def slow_save(obj, f):
        if isinstance(obj, dict) and obj.get('step') == 2 and 'model' in obj:
            log = Path(f).parent/'train_log.jsonl'
            deadline = time.time() + 20
            while time.time() < deadline and len(log.read_text().splitlines()) < 4: time.sleep(0.01)
            lines_when_written.append(len(log.read_text().splitlines()))
        real(obj, f)
    monkeypatch.setattr(torch, 'save', slow_save)
    res = train(cfg(data, tmp_path))
    assert lines_when_written and lines_when_written[0] >= 4
    folder = Path(res['run_dir'])/'anchor-0.004M'
    assert [json.loads(l)['step'] for l in (folder/'train_log.jsonl').read_text().splitlines()] == list(range(1, 17))

def test_a_failed_state_write_stops_training_with_its_error(data, tmp_path, monkeypatch):
    "A full disk while the state is written in the background: training stops with an error naming the file; no half-written state is left."
    def full(obj, f):
        Path(f).write_bytes(b'partial')
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(torch, 'save', full)
    with pytest.raises(LmeffError, match=r'no space left on the device while writing .*state\.pt'): train(cfg(data, tmp_path))
    assert not [p.name for p in tmp_path.rglob('*') if 'state.pt' in p.name]
