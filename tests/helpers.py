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
