"Which device a training process takes: under torchrun, `cuda` means the GPU of the process's LOCAL_RANK (checked without a GPU)."
import pytest, torch
from lmeff.config import LmeffError
from lmeff.train_config import TrainConfig
import lmeff.train as T

@pytest.fixture
def four_gpus(monkeypatch):
    "As if this machine had 4 CUDA GPUs."
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 4)

def device(d): return TrainConfig.make('tiny', 'synthetic', 'data', 512, device=d)

@pytest.mark.parametrize('flag', ['cuda', 'auto'])
def test_each_torchrun_process_takes_the_gpu_of_its_local_rank(four_gpus, monkeypatch, flag):
    monkeypatch.setenv('RANK', '6'); monkeypatch.setenv('WORLD_SIZE', '8'); monkeypatch.setenv('LOCAL_RANK', '2')   # 2 machines of 4 GPUs
    rank, world, local_rank = T._dist()
    assert T._device(device(flag), local_rank) == torch.device('cuda:2')

def test_one_process_takes_gpu_0_or_the_one_named(four_gpus):
    assert T._device(device('cuda'), 0) == torch.device('cuda:0')
    assert T._device(device('cuda:3'), 0) == torch.device('cuda:3')

def test_devices_torchrun_cannot_use_are_refused(four_gpus):
    with pytest.raises(LmeffError, match=r'--device cuda:1: every one of the 2 torchrun processes .* give --device cuda'):
        T._device(device('cuda:1'), 1, world=2)
    with pytest.raises(LmeffError, match=r'LOCAL_RANK 4, but this machine has 4 CUDA GPUs'):
        T._device(device('cuda'), 4, world=8)
