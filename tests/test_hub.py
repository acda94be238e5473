"Hub storage: uploads in the background with retries, queued uploads kept with the run, and model cards that scoring can rewrite without invalidating a snapshot."
import json, threading
from pathlib import Path
import pytest
from huggingface_hub import ModelCard
import lmeff.hub
from lmeff.config import LmeffError
from lmeff.hub import CARD_DATASETS, PENDING_FILE, HubStore, write_model_card
from lmeff.store import CARD_FILE, SnapshotMeta, check_snapshot, verify_snapshot, write_hashes

class SlowHub:
    "Stands in for huggingface_hub.HfApi: each upload waits for `go` (at most 10 s) and records whether it had to; can fail the first n attempts."
    def __init__(self, fail=0, error=ConnectionError('hub unreachable')):
        self.calls, self.fail, self.error, self.go = [], fail, error, threading.Event()
    def whoami(self): return {'name': 'lab', 'orgs': []}
    def create_repo(self, repo_id, exist_ok=False): pass
    def create_branch(self, repo_id, branch, exist_ok=False): pass
    def upload_folder(self, repo_id, folder_path, revision, commit_message=None):
        released = self.go.wait(10)
        self.calls.append((revision, released))
        if self.fail: self.fail -= 1; raise self.error

def snapshot(folder:Path, milestone='25', **kw)->Path:
    folder.mkdir(parents=True)
    (folder/'model.safetensors').write_bytes(b'weights'); (folder/'config.json').write_text('{}')
    SnapshotMeta(**dict(milestone=milestone, tokens_seen=25_001_984, dataset='tinystories', model_config='20m', seed=0, vocab_size=16000,
                        global_step=1526, anchor=25, schedule='cosine', lmeff_version='0.0.1') | kw).write(folder)
    write_hashes(folder)
    return folder

@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv('HF_TOKEN', 'hf_x'); monkeypatch.setenv('HF_NAMESPACE', 'lab')

def test_upload_returns_while_the_snapshot_uploads(tmp_path, token):
    "Training goes on during an upload: `upload` returns before the Hub has answered; `flush` waits for it."
    hub = SlowHub()
    store = HubStore('tinystories', '20m', 16000, 0, run_dir=tmp_path, api=hub)
    fut = store.upload(snapshot(tmp_path/'milestone-25M'), '25')
    assert not fut.done() and hub.calls == []
    assert json.loads((tmp_path/PENDING_FILE).read_text()) == [[str(tmp_path/'milestone-25M'), 'seed-0-tokens-25M']]   # a killed process retries it
    hub.go.set()
    assert store.flush() == [] and hub.calls == [('seed-0-tokens-25M', True)] and not (tmp_path/PENDING_FILE).exists()

def test_uploads_go_in_order_one_at_a_time(tmp_path, token):
    hub = SlowHub(); hub.go.set()
    store = HubStore('tinystories', '20m', 16000, 0, run_dir=tmp_path, api=hub)
    for m in ('25', '50', 'final'): store.upload(snapshot(tmp_path/m, milestone=m), m)
    assert store.flush() == [] and [c[0] for c in hub.calls] == ['seed-0-tokens-25M', 'seed-0-tokens-50M', 'seed-0']

def test_failed_attempts_are_retried_after_waits(tmp_path, token, monkeypatch):
    waits = []
    monkeypatch.setattr(lmeff.hub, 'RETRY_WAITS', (1, 5, 30)); monkeypatch.setattr(lmeff.hub.time, 'sleep', waits.append)
    hub = SlowHub(fail=2); hub.go.set()
    store = HubStore('tinystories', '20m', 16000, 0, run_dir=tmp_path, api=hub)
    store.upload(snapshot(tmp_path/'s'), '25')
    assert store.flush() == [] and waits == [1, 5] and len(hub.calls) == 3
    hub, waits[:] = SlowHub(fail=100), []; hub.go.set()
    store = HubStore('tinystories', '20m', 16000, 0, run_dir=tmp_path, api=hub)
    store.upload(tmp_path/'s', '25')
    [(folder, branch, err)] = store.flush()                                  # every attempt failed: reported, and kept with the run
    assert (branch, type(err), waits, len(hub.calls)) == ('seed-0-tokens-25M', ConnectionError, [1, 5, 30], 4)
    assert json.loads((tmp_path/PENDING_FILE).read_text()) == [[str(tmp_path/'s'), 'seed-0-tokens-25M']]

def test_a_refusal_is_not_retried(tmp_path, token):
    class Forbidden(Exception): response = type('R', (), {'status_code': 403})()
    hub = SlowHub(fail=100, error=Forbidden('403 forbidden')); hub.go.set()
    store = HubStore('tinystories', '20m', 16000, 0, run_dir=tmp_path, api=hub)
    store.upload(snapshot(tmp_path/'s'), '25')
    assert [type(e) for _, _, e in store.flush()] == [Forbidden] and len(hub.calls) == 1

def test_a_damaged_snapshot_is_never_uploaded(tmp_path, token):
    hub = SlowHub(); hub.go.set()
    store = HubStore('tinystories', '20m', 16000, 0, run_dir=tmp_path, api=hub)
    s = snapshot(tmp_path/'s'); (s/'model.safetensors').write_bytes(b'weightz')
    store.upload(s, '25')
    [(_, _, err)] = store.flush()
    assert isinstance(err, LmeffError) and 'model.safetensors' in str(err) and hub.calls == []

def test_model_card_metadata_and_text(tmp_path):
    s = snapshot(tmp_path/'s')
    meta = SnapshotMeta.read(s)
    write_model_card(s, meta)
    card = ModelCard.load(s/CARD_FILE)
    assert (card.data.library_name, card.data.language, card.data.datasets) == ('transformers', 'en', ['roneneldan/TinyStories'])
    assert 'lmeff' in card.data.tags and not card.data.eval_results
    for text in ('25,001,984', '| global step | 1526 |', '| seed | 0 |', '| vocabulary | 16000 |', '20m (', 'cosine', '0.0.1',
                 'AutoModelForCausalLM.from_pretrained("path/to/this/folder")', 'Not scored yet'):
        assert text in card.text, text
    results = {'results': {'blimp': {'acc,none': 0.6125, 'acc_stderr,none': 0.0019}}, 'phenomena': {'island effects': 0.41},
               'config': {'n_pairs': 67000}}
    write_model_card(s, meta, scores=results)
    write_model_card(s, meta, repo_id='lab/tinystories-20m-tok16000', revision='seed-0-tokens-25M')   # the upload keeps the scores
    card = ModelCard.load(s/CARD_FILE)
    assert card.data.eval_results[0].metric_value == 0.6125 and card.data.eval_results[0].dataset_type == 'nyu-mll/blimp'
    assert '**0.6125** ± 0.0019 over 67,000' in card.text and '| island effects | 0.4100 |' in card.text
    assert 'from_pretrained("lab/tinystories-20m-tok16000", revision="seed-0-tokens-25M")' in card.text

def test_wsd_cards_say_trunk_or_branch(tmp_path):
    end = snapshot(tmp_path/'a', schedule='wsd', decay_fraction=0.2, decay_shape='sqrt', branch_step=1220)
    trunk = snapshot(tmp_path/'b', schedule='wsd', trunk=True)
    assert 'decayed over the last 20% of its tokens (sqrt shape), branched from the trunk at step 1220' in write_model_card(end, SnapshotMeta.read(end)).read_text()
    text = write_model_card(trunk, SnapshotMeta.read(trunk)).read_text()
    assert 'undecayed checkpoint of the trunk' in text and 'wsd-trunk' in text

def test_a_rewritten_card_keeps_the_snapshot_valid(tmp_path):
    "The card is documentation: hashes.json does not cover it, so scoring can rewrite it; the weights are still checked."
    s = snapshot(tmp_path/'s')
    write_model_card(s, SnapshotMeta.read(s)); write_hashes(s)
    assert CARD_FILE not in json.loads((s/'hashes.json').read_text())
    write_model_card(s, SnapshotMeta.read(s), scores=dict(accuracy=0.7))
    assert verify_snapshot(s)
    (s/'model.safetensors').write_bytes(b'weightz')
    with pytest.raises(LmeffError, match='model.safetensors: its SHA-256 differs'): check_snapshot(s)

def test_upload_puts_repo_and_branch_on_the_card(tmp_path, token):
    hub = SlowHub(); hub.go.set()
    s = snapshot(tmp_path/'s')
    store = HubStore('tinystories', '20m', 16000, 0, run_dir=tmp_path, api=hub)
    store.upload(s, '25'); assert store.flush() == []
    assert ModelCard.load(s/CARD_FILE).data.to_dict()['lmeff'] == {'repo_id': 'lab/tinystories-20m-tok16000', 'revision': 'seed-0-tokens-25M'}
    assert verify_snapshot(s)

def test_card_datasets_are_the_corpora_lmeff_reads():
    from lmeff.data import HYBRID_SOURCES
    assert CARD_DATASETS['hybrid_3.7B'] == [hub for _, hub, _ in HYBRID_SOURCES.values()]
