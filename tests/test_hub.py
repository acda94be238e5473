"Hub storage: uploads in the background with retries, queued uploads kept with the run, and model cards that scoring can rewrite without invalidating a snapshot."
import json, os, threading
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

# --- a failing Hub, through the command line: which failure it was, in one line naming the endpoint -----------------------------

def hub_answering(status:int, headers:dict|None=None):
    "A loopback HTTP server that answers every request with `status` (and `headers`), as the Hub does when it refuses or fails; its URL."
    import http.server
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"error": "refused"}'
            self.send_response(status)
            for k, v in {'Content-Type': 'application/json', 'Content-Length': str(len(body)), **(headers or {})}.items(): self.send_header(k, v)
            self.end_headers(); self.wfile.write(body)
        do_HEAD = do_POST = do_GET
        def log_message(self, *args): pass
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"

UNREACHABLE = 'http://127.0.0.1:9'   # the discard port on loopback: nothing listens, the connection is refused at once

@pytest.fixture
def endpoint(monkeypatch):
    "Point huggingface_hub at an endpoint (what HF_ENDPOINT does when it loads); servers started are shut down afterwards."
    import huggingface_hub.constants
    servers = []
    def use(status:int|None=None, headers:dict|None=None)->str:
        url = UNREACHABLE
        if status is not None: server, url = hub_answering(status, headers); servers.append(server)
        monkeypatch.setattr(huggingface_hub.constants, 'ENDPOINT', url)
        return url
    yield use
    for s in servers: s.shutdown()

def cli_error(capsys, *argv)->str:
    "The stderr of `lmeff ARGV` run here, once it exited with status 2 printing one line and no traceback."
    from lmeff.cli import main
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and 'Traceback' not in err, err
    return err.strip()

TRAIN_HF = ['train', '--model-config', 'tiny', '--dataset', 'synthetic', '--vocab-size', '512', '--seq-length', '32', '--anchors', '[0.004]',
            '--batch-size', '8', '--epochs', '1', '--device', 'cpu', '--no-progress', '--report-to', 'none', '--store', 'hf']

def test_store_hf_says_whether_the_hub_was_unreachable_or_refused_the_token(tmp_path, token, endpoint, capsys):
    "The token is checked before training: a network failure, a refused token and another HTTP error each say what happened, and where."
    args = [*TRAIN_HF, '--data-dir', tmp_path/'data', '--out', tmp_path/'out']
    endpoint()
    err = cli_error(capsys, *args)
    assert err.startswith(f"lmeff train: error: --store hf: cannot reach the Hugging Face Hub at {UNREACHABLE} (network unreachable: ConnectError"), err
    assert 'refused' not in err.replace('Connection refused', '')
    for status in (401, 403):
        url = endpoint(status)
        assert cli_error(capsys, *args) == (f"lmeff train: error: --store hf: the Hugging Face Hub at {url} refused the token (HTTP {status}); "
                                            "check HF_TOKEN or `hf auth login`")
    url = endpoint(500)
    assert cli_error(capsys, *args).startswith(f"lmeff train: error: --store hf: the Hugging Face Hub at {url} answered HTTP 500 (")
    assert not (tmp_path/'out').exists()

def test_store_hf_names_the_endpoint_of_hf_endpoint(tmp_path):
    "HF_ENDPOINT, as a user sets it, is the endpoint checked and named (the real command, in its own process)."
    from conftest import run_cli
    env = {k: v for k, v in os.environ.items() if not k.startswith('HF_')} | {'HF_ENDPOINT': UNREACHABLE, 'HF_TOKEN': 'hf_x'}
    r = run_cli(*TRAIN_HF, '--data-dir', tmp_path/'data', '--out', tmp_path/'out', env=env)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"cannot reach the Hugging Face Hub at {UNREACHABLE} (network unreachable: ConnectError" in r.stderr

def blimp_dir(tmp_path)->Path:
    d = tmp_path/'blimp'; d.mkdir()
    (d/'agreement.jsonl').write_text(json.dumps(dict(sentence_good='The cat runs.', sentence_bad='The cat run.')) + '\n')
    return d

def test_a_model_neither_folder_nor_repo_is_one_line_naming_both(tmp_path, endpoint, capsys, monkeypatch):
    "`lmeff blimp --model nosuch/model`: the local folder tried, then the Hub repo, and why the Hub failed; not the Hub library's text."
    monkeypatch.chdir(tmp_path)
    args = ['blimp', '--model', 'nosuch/model', '--blimp-dir', blimp_dir(tmp_path), '--out', tmp_path/'x.json', '--device', 'cpu']
    tried = f"lmeff blimp: error: nosuch/model: no local folder {tmp_path/'nosuch'/'model'}, and the Hub repo nosuch/model"
    endpoint()
    err = cli_error(capsys, *args)
    assert err.startswith(f"{tried} could not be fetched: cannot reach the Hugging Face Hub at {UNREACHABLE} (network unreachable: ConnectError"), err
    url = endpoint(401, {'X-Error-Code': 'RepoNotFound'})   # what the Hub answers for a repo that does not exist (or is private)
    assert cli_error(capsys, *args) == (f"{tried} could not be fetched: the Hugging Face Hub at {url} has no such repo, or the token "
                                        "may not read it (HTTP 401)")
    url = endpoint(404, {'X-Error-Code': 'RevisionNotFound'})
    assert cli_error(capsys, *args, '--revision', 'seed-9') == (f"{tried} at revision seed-9 could not be fetched: the Hugging Face Hub "
                                                                 f"at {url} has no such revision (HTTP 404)")
    assert not (tmp_path/'x.json').exists()
