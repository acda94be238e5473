import json, pytest, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from lmeff.config import MODEL_SIZES, register_model_size, n_params
from lmeff.model import llama_config, build_model, init_random, check_model_folder
from lmeff.tokens import load_encoder, load_tokenizer
from lmeff.store import random_init_dir, sha256_file, verify_snapshot
from lmeff.config import LmeffError
from transformers import LlamaForCausalLM
from helpers import tiny_tokenizer

@pytest.mark.parametrize('size,expected', [('20m', 21.1), ('60m', 58.3), ('180m', 180.3)])
def test_parameter_counts_at_vocab_16000(size, expected):
    with torch.device('meta'): model = LlamaForCausalLM(llama_config(size, 16000, 256))
    real = sum(p.numel() for p in model.parameters())
    assert real == n_params(size, 16000)
    assert round(real/1e6, 1) == expected

def test_architecture():
    cfg = llama_config('60m', 8000, seq_length=512)
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, cfg.num_hidden_layers) == (512, 1024, 8, 16)
    assert cfg.num_key_value_heads == 8 and cfg.tie_word_embeddings is False
    assert cfg.max_position_embeddings == 512
    assert (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (0, 1, 2)

def test_registering_a_size_is_one_call():
    register_model_size('test_5m', hidden=128, mlp=256, heads=4, layers=4, lr=1e-3, weight_decay=0.0, batch_size=8, grad_accum=1)
    try:
        model = build_model('test_5m', 1000, seed=0, seq_length=32)
        assert sum(p.numel() for p in model.parameters()) == n_params('test_5m', 1000)
    finally: MODEL_SIZES.pop('test_5m')

def test_unknown_size_is_a_clear_error():
    with pytest.raises(LmeffError, match="unknown model size '1b'"): llama_config('1b', 8000)

def test_init_is_deterministic(tmp_path):
    a = init_random('tiny', 512, 0, tmp_path/'a', seq_length=64)
    b = init_random('tiny', 512, 0, tmp_path/'b', seq_length=64)
    c = init_random('tiny', 512, 1, tmp_path/'c', seq_length=64)
    assert (a/'model.safetensors').read_bytes() == (b/'model.safetensors').read_bytes()
    assert (a/'model.safetensors').read_bytes() != (c/'model.safetensors').read_bytes()
    meta = json.loads((a/'init_meta.json').read_text())
    assert meta['model_sha256'] == sha256_file(a/'model.safetensors')
    assert (meta['model_config'], meta['vocab_size'], meta['seed']) == ('tiny', 512, 0)

def test_init_roundtrip_through_auto_class(tmp_path):
    out = init_random('tiny', 512, 3, tmp_path/'init', seq_length=64)
    model = AutoModelForCausalLM.from_pretrained(out)
    ref = build_model('tiny', 512, 3, seq_length=64)
    for (n, p), (n2, q) in zip(model.state_dict().items(), ref.state_dict().items()):
        assert n == n2 and torch.equal(p, q)
    assert model.config.tie_word_embeddings is False

def test_init_is_written_once(tmp_path):
    out = init_random('tiny', 512, 0, tmp_path/'init', seq_length=64)
    mtime = (out/'model.safetensors').stat().st_mtime_ns
    init_random('tiny', 512, 0, out, seq_length=64)
    assert (out/'model.safetensors').stat().st_mtime_ns == mtime
    with pytest.raises(LmeffError, match='different init'): init_random('tiny', 512, 1, out, seq_length=64)

def test_init_refuses_a_foreign_folder(tmp_path):
    (tmp_path/'x').mkdir(); (tmp_path/'x'/'notes.txt').write_text('mine')
    with pytest.raises(LmeffError, match='not an lmeff random init'): init_random('tiny', 512, 0, tmp_path/'x')
    assert (tmp_path/'x'/'notes.txt').read_text() == 'mine'

def test_no_partial_folder_after_a_failed_write(tmp_path, monkeypatch):
    def boom(*a, **k): raise RuntimeError('disk full')
    monkeypatch.setattr(LlamaForCausalLM, 'save_pretrained', boom)
    with pytest.raises(RuntimeError): init_random('tiny', 512, 0, tmp_path/'init')
    assert list(tmp_path.iterdir()) == []

def test_init_with_tokenizer_is_a_complete_model(tmp_path):
    tj = tiny_tokenizer(tmp_path/'tokenizer_300.json', 300)
    out = init_random('tiny', None, 0, tmp_path/'init', tokenizer=tj, seq_length=64)
    assert (out/'tokenizer.json').read_bytes() == tj.read_bytes()          # the data stage's file, byte for byte
    assert json.loads((out/'tokenizer_config.json').read_text())['add_prefix_space'] is True
    assert json.loads((out/'special_tokens_map.json').read_text()) == {'pad_token': '<pad>', 'bos_token': '<s>', 'eos_token': '</s>'}
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.vocab_size == len(tok) <= 300
    assert (tok.pad_token, tok.bos_token, tok.eos_token) == ('<pad>', '<s>', '</s>')
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    ids = tok('the cat sees', return_tensors='pt').input_ids
    assert model(ids).logits.shape == (1, ids.shape[1], len(tok))
    enc = load_encoder(tj)
    for hf in (tok, load_tokenizer(out), load_tokenizer(tj)):             # prefix space on: "the" at the start is " the"
        assert hf('the cat sees', add_special_tokens=False).input_ids == hf(' the cat sees', add_special_tokens=False).input_ids \
            == enc.encode('the cat sees', add_special_tokens=False).ids
        assert json.loads(hf.backend_tokenizer.pre_tokenizer.__getstate__())['add_prefix_space'] is True

def test_tokenizer_vocab_mismatch(tmp_path):
    tj = tiny_tokenizer(tmp_path/'tokenizer_300.json', 300)
    with pytest.raises(LmeffError, match='disagrees'): init_random('tiny', 256, 0, tmp_path/'init', tokenizer=tj)
    out = init_random('tiny', 512, 0, tmp_path/'big', tokenizer=tj)   # a larger embedding than the tokenizer is fine
    assert AutoModelForCausalLM.from_pretrained(out).config.vocab_size == 512

def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(LmeffError, match='no such tokenizer'): load_tokenizer(tmp_path/'missing.json')
    (tmp_path/'bad.json').write_text('{not json')
    with pytest.raises(LmeffError, match='not a tokenizers JSON'): load_tokenizer(tmp_path/'bad.json')
    with pytest.raises(LmeffError, match='not a tokenizers JSON'): init_random('tiny', None, 0, tmp_path/'init', tokenizer=tmp_path/'bad.json')
    with pytest.raises(LmeffError, match='no tokenizer.json in this folder'): load_tokenizer(tmp_path)
    assert not (tmp_path/'init').exists()

def test_default_layout():
    assert str(random_init_dir('output', '20m', 16000, 2)) == 'output/models/random/llama-20m/tokenizer-16000-seed-2'

def flip_byte(path, at=-1):
    "Corrupt `path` in place: one byte changed, same size."
    b = bytearray(path.read_bytes()); b[at] ^= 0xFF; path.write_bytes(bytes(b))

def test_a_corrupt_init_is_not_reused(tmp_path):
    "Every schedule of every run starts from the init: its bytes are checked against init_meta.json each time it is reused."
    out = init_random('tiny', 512, 0, tmp_path/'init', seq_length=64)
    assert verify_snapshot(out)                                            # a checkable folder, like a snapshot
    flip_byte(out/'model.safetensors')
    with pytest.raises(LmeffError, match=rf"^{out/'model.safetensors'}: its SHA-256 differs"): init_random('tiny', 512, 0, out, seq_length=64)
    (out/'hashes.json').unlink()                                           # an init written before hashes.json: init_meta.json's hash
    with pytest.raises(LmeffError, match=rf"^{out/'model.safetensors'}: its SHA-256 differs from the model_sha256 in init_meta\.json"):
        init_random('tiny', 512, 0, out, seq_length=64)
    (out/'model.safetensors').unlink()
    with pytest.raises(LmeffError, match=rf"^{out/'model.safetensors'}: missing"): init_random('tiny', 512, 0, out, seq_length=64)
    (out/'init_meta.json').write_text('{"model_config": "tiny", ')
    with pytest.raises(LmeffError, match=rf"^{out/'init_meta.json'}: not valid JSON"): init_random('tiny', 512, 0, out, seq_length=64)

def test_an_edited_init_config_is_noticed(tmp_path):
    out = init_random('tiny', 512, 0, tmp_path/'init', seq_length=64)
    cfg = json.loads((out/'config.json').read_text()); cfg['rms_norm_eps'] = 0.1
    (out/'config.json').write_text(json.dumps(cfg))
    with pytest.raises(LmeffError, match=rf"^{out/'config.json'}: its SHA-256 differs"): init_random('tiny', 512, 0, out, seq_length=64)

def test_check_model_folder_names_what_is_wrong(tmp_path):
    out = init_random('tiny', None, 0, tmp_path/'init', tokenizer=tiny_tokenizer(tmp_path/'tok.json', 280), seq_length=64)
    assert check_model_folder(out)['vocab_size'] == 280
    w = out/'model.safetensors'; whole = w.read_bytes()
    w.write_bytes(whole[:len(whole)//2])
    with pytest.raises(LmeffError, match=rf"^{w}: {len(whole)//2:,} bytes where its header promises {len(whole):,}"): check_model_folder(out)
    w.write_bytes(whole[:5])
    with pytest.raises(LmeffError, match=rf"^{w}: not a safetensors file"): check_model_folder(out)
    w.unlink()
    with pytest.raises(LmeffError, match=rf"^{w}: missing \(no weights in {out}\)"): check_model_folder(out)
    w.write_bytes(whole)
    bigger = load_encoder(out); bigger.add_tokens([f'word{i}' for i in range(20)]); bigger.save(str(out/'tokenizer.json'))   # another model's
    n = load_encoder(out).get_vocab_size(); assert n == 300
    with pytest.raises(LmeffError, match=rf"^{out/'tokenizer.json'}: the tokenizer has {n} tokens, more than the 280 rows of the model's embedding \({out/'config.json'}\)"):
        check_model_folder(out)
    cfg = json.loads((out/'config.json').read_text())
    (out/'config.json').write_text(json.dumps({**cfg, 'vocab_size': 300}))
    with pytest.raises(LmeffError, match=rf"^{w}: (lm_head|model.embed_tokens).weight has 280 rows, but {out/'config.json'} says vocab_size 300"):
        check_model_folder(out)
    (out/'config.json').write_text('{"vocab_size": ')
    with pytest.raises(LmeffError, match=rf"^{out/'config.json'}: not valid JSON"): check_model_folder(out)
