"Small fixtures shared by the tests."
from pathlib import Path
from tokenizers import Tokenizer, models, trainers, pre_tokenizers, decoders

def tiny_tokenizer(path:Path, vocab_size:int=300, texts=None)->Path:
    "Train a small byte-level BPE tokenizer with lmeff's special tokens and save it as JSON."
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    texts = texts or ['the cat sees the dogs', 'a dog that the cats see runs', 'the girls like herself'] * 20
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=['<pad>', '<s>', '</s>'],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path

def train_ddp_and_single(common:list, out, port_offset:int=0):
    "Train `lmeff train *common` twice: torchrun with 2 CPU processes of batch 4 (OUT/ddp), and one process of batch 8 (OUT/one); return both run folders."
    import os, subprocess, sys
    from conftest import run_cli
    env, out = {**os.environ, 'OMP_NUM_THREADS': '1'}, Path(out)
    exe = str(Path(sys.executable).with_name('lmeff'))
    ddp = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(29500 + port_offset + os.getpid() % 1000),
                          '--no-python', exe, 'train', *map(str, common), '--batch-size', '4', '--out', str(out/'ddp')],
                         env=env, capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = run_cli('train', *common, '--batch-size', '8', '--out', out/'one', env=env)
    assert one.returncode == 0, one.stderr
    return tuple(o/'models'/'synthetic'/'llama-tiny'/'tokenizer-512-seed-0' for o in (out/'ddp', out/'one'))
