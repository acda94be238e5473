"The store: the files between stages are written atomically, laid out by one set of functions, and read back exactly."
import errno, os, random, time
from pathlib import Path
import pytest
from lmeff.config import LmeffError
from lmeff.store import (SnapshotMeta, check_snapshot, clean_stale_temps, milestone_folder, milestone_label, milestone_of_folder,
                         open_atomic, parse_results_dir, read_json, results_dir, snapshot_dir, verify_snapshot, write_dir_atomic,
                         write_file_atomic, write_hashes, write_json, write_text)

def test_results_dir_and_its_inverse_agree():
    rng = random.Random(0)
    for _ in range(200):
        m = dict(dataset=rng.choice(['tinystories', 'babylm3', 'hybrid_3.7B', 'synthetic']), model_config=rng.choice(['tiny', '20m', '180m']),
                 seed=rng.randrange(100), vocab_size=rng.choice([512, 8000, 50257]),
                 milestone=rng.choice(['final', 25, 0.0125, 1250.0, '0.050']))
        got = parse_results_dir(results_dir('R', m, benchmark='glue'))
        assert got == {**m, 'benchmark': 'glue', 'milestone': milestone_label(m['milestone'])}

def test_milestone_labels_and_folders_round_trip():
    for m in (25, 0.0125, 1750, 'final', ' Final'):
        assert milestone_of_folder(milestone_folder(m)) == milestone_label(m)
        assert milestone_of_folder(snapshot_dir('run', m).name) == milestone_label(m)
    for bad in ('-1', '0', 'inf', 'nan', 'x'):
        with pytest.raises(ValueError): milestone_label(bad)

def test_failed_writes_leave_the_old_version_and_no_temporary_files(tmp_path):
    write_json(tmp_path/'m.json', {'v': 1})
    with pytest.raises(OSError):
        write_file_atomic(tmp_path/'m.json', lambda tmp: (tmp.write_text('{"v": 2'), (_ for _ in ()).throw(OSError('disk full'))))
    with pytest.raises(KeyboardInterrupt):
        with open_atomic(tmp_path/'m.json') as f: f.write('{"v": 3'); raise KeyboardInterrupt
    def fill(tmp): (tmp/'w').write_text('half'); raise RuntimeError('killed')
    write_dir_atomic(tmp_path/'snap', lambda tmp: (tmp/'w').write_text('whole'))
    with pytest.raises(RuntimeError): write_dir_atomic(tmp_path/'snap', fill)
    assert read_json(tmp_path/'m.json') == {'v': 1} and (tmp_path/'snap'/'w').read_text() == 'whole'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []

def test_written_files_have_ordinary_permissions(tmp_path):
    "Atomic writes go through mkstemp/mkdtemp (owner-only); the results must be readable like any file the user writes."
    (tmp_path/'plain').write_text('x'); (tmp_path/'plain_dir').mkdir()
    write_json(tmp_path/'a.json', {}); write_dir_atomic(tmp_path/'d', lambda tmp: None)
    with open_atomic(tmp_path/'s.bin', 'wb') as f: f.write(b'1')
    mode = lambda p: p.stat().st_mode & 0o777
    assert mode(tmp_path/'a.json') == mode(tmp_path/'s.bin') == mode(tmp_path/'plain')
    assert mode(tmp_path/'d') == mode(tmp_path/'plain_dir')

def test_a_writer_that_replaces_its_file_still_gets_the_umask(tmp_path):
    "Writers such as safetensors' `save_file` write their own owner-only file over the temporary one; the umask still decides the result."
    def owner_only(path):
        path.unlink(missing_ok=True); os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    old = os.umask(0o027)
    try:
        write_file_atomic(tmp_path/'w.safetensors', owner_only)
        write_dir_atomic(tmp_path/'snap', lambda tmp: (owner_only(tmp/'model.safetensors'), (tmp/'sub').mkdir(mode=0o700), owner_only(tmp/'sub'/'x')))
    finally: os.umask(old)
    mode = lambda p: p.stat().st_mode & 0o777
    assert mode(tmp_path/'w.safetensors') == mode(tmp_path/'snap'/'model.safetensors') == mode(tmp_path/'snap'/'sub'/'x') == 0o640
    assert mode(tmp_path/'snap') == mode(tmp_path/'snap'/'sub') == 0o750

def test_snapshot_meta_and_hashes(tmp_path):
    meta = SnapshotMeta(milestone=0.05, tokens_seen=51_200, dataset='synthetic', model_config='tiny', seed=3, vocab_size=512,
                        batch_source='row', anchor=0.05)
    meta.write(tmp_path); (tmp_path/'model.safetensors').write_bytes(b'w')
    write_hashes(tmp_path)
    assert SnapshotMeta.read(tmp_path) == meta and verify_snapshot(tmp_path)
    write_json(tmp_path/'milestone_meta.json', {**read_json(tmp_path/'milestone_meta.json'), 'future_key': 1})
    assert SnapshotMeta.read(tmp_path).seed == 3                     # keys a newer lmeff adds do not break reading
    assert not verify_snapshot(tmp_path)                             # but the edit is noticed
    write_json(tmp_path/'milestone_meta.json', {'milestone': 'soon', 'tokens_seen': 1, 'dataset': 'd', 'model_config': 't', 'seed': 0, 'vocab_size': 1})
    with pytest.raises(LmeffError, match=r"milestone_meta\.json: milestone must be"): SnapshotMeta.read(tmp_path)

def flip_byte(path, at=-1):
    "Corrupt `path` in place: one byte changed, same size."
    b = bytearray(path.read_bytes()); b[at] ^= 0xFF; path.write_bytes(bytes(b))

def test_check_snapshot_names_the_file_that_differs(tmp_path):
    snap = tmp_path/'milestone-25M'; snap.mkdir()
    SnapshotMeta(milestone=25, tokens_seen=1, dataset='d', model_config='tiny', seed=0, vocab_size=512,
                 weights_sha256=None).write(snap)
    (snap/'model.safetensors').write_bytes(b'weights' * 100); (snap/'tokenizer.json').write_text('{}')
    hashes = write_hashes(snap)
    assert check_snapshot(snap) == hashes and verify_snapshot(snap)
    flip_byte(snap/'model.safetensors', 300)
    with pytest.raises(LmeffError, match=rf"^{snap/'model.safetensors'}: its SHA-256 differs from the one in hashes\.json"): check_snapshot(snap)
    assert not verify_snapshot(snap)
    (snap/'model.safetensors').unlink()
    with pytest.raises(LmeffError, match=rf"^{snap/'model.safetensors'}: missing \(listed in hashes\.json\)"): check_snapshot(snap)
    (snap/'hashes.json').write_text('[1, 2')
    with pytest.raises(LmeffError, match=r"hashes\.json: not a JSON object of file names"): check_snapshot(snap)
    write_json(snap/'hashes.json', {'../outside': 'x'})
    with pytest.raises(LmeffError, match=r"hashes\.json: not a JSON object of file names"): check_snapshot(snap)
    (snap/'hashes.json').unlink()
    with pytest.raises(LmeffError, match=r"hashes\.json: missing"): check_snapshot(snap)

def test_check_snapshot_compares_the_metadata_hashes(tmp_path):
    "A snapshot whose weights were swapped and whose hashes.json was rewritten still disagrees with its milestone_meta.json."
    (tmp_path/'model.safetensors').write_bytes(b'trained')
    SnapshotMeta(milestone=25, tokens_seen=1, dataset='d', model_config='tiny', seed=0, vocab_size=512,
                 weights_sha256=write_hashes(tmp_path)['model.safetensors']).write(tmp_path)
    write_hashes(tmp_path); assert verify_snapshot(tmp_path)
    (tmp_path/'model.safetensors').write_bytes(b'other'); write_hashes(tmp_path)
    with pytest.raises(LmeffError, match=r"model\.safetensors: its SHA-256 differs from the weights_sha256 in milestone_meta\.json"):
        check_snapshot(tmp_path)

def age(path, seconds):
    t = time.time() - seconds
    for p in [path, *(path.rglob('*') if path.is_dir() else [])]: os.utime(p, (t, t), follow_symlinks=False)

def test_clean_stale_temps_removes_only_old_store_temporaries(tmp_path):
    (tmp_path/'final').mkdir(); (tmp_path/'final'/'w').write_text('current')
    stale = {'file': tmp_path/'.state.pt.ab12cd_9.tmp', 'dir': tmp_path/'.milestone-25M.tmp-x8k2m0qz', 'old': tmp_path/'.final.old-4242'}
    stale['file'].write_bytes(b'half'); stale['dir'].mkdir(); (stale['dir']/'model.safetensors').write_bytes(b'half')
    stale['old'].mkdir(); (stale['old']/'w').write_text('previous')
    lost = tmp_path/'.milestone-50M.old-77'; lost.mkdir(); (lost/'w').write_text('the only copy')   # killed between the two renames
    young = tmp_path/'.final.tmp-abcdefgh'; young.mkdir(); (young/'w').write_text('a writer is filling me')
    keep = [tmp_path/'.notes.txt', tmp_path/'.tokenizer-512-seed-0.lock', tmp_path/'.x.tmp', tmp_path/'.data.ABCDEFGH.tmp']
    for p in keep: p.write_text('not a temporary of the store')
    for p in [*stale.values(), lost, *keep]: age(p, 7200)
    old_dir_young_file = tmp_path/'.milestone-75M.tmp-slowslow'; old_dir_young_file.mkdir()
    (old_dir_young_file/'big').write_text('still being written'); age(old_dir_young_file, 7200); os.utime(old_dir_young_file/'big')
    done = clean_stale_temps(tmp_path, older_than_s=3600)
    assert sorted(done) == sorted([*stale.values(), lost])
    assert not any(p.exists() for p in stale.values()) and (tmp_path/'final'/'w').read_text() == 'current'
    assert (tmp_path/'milestone-50M'/'w').read_text() == 'the only copy'          # put back, not deleted
    assert young.is_dir() and old_dir_young_file.is_dir() and all(p.is_file() for p in keep)
    assert clean_stale_temps(tmp_path/'missing') == []

def test_writers_clean_up_after_killed_writes(tmp_path):
    "A killed write leaves a temporary; the next write into that folder removes it once it is old enough to be dead."
    write_dir_atomic(tmp_path/'milestone-1M', lambda tmp: (tmp/'w').write_text('1'))
    killed = [tmp_path/'.milestone-2M.tmp-q1w2e3r4', tmp_path/'.state.pt.q1w2e3r4.tmp']
    killed[0].mkdir(); (killed[0]/'w').write_text('half'); killed[1].write_bytes(b'half')
    for p in killed: age(p, 2*86400)
    write_dir_atomic(tmp_path/'milestone-2M', lambda tmp: (tmp/'w').write_text('2'))
    assert not killed[0].exists() and not killed[1].exists()
    killed[1].write_bytes(b'half'); age(killed[1], 2*86400)
    write_json(tmp_path/'x.json', {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ['milestone-1M', 'milestone-2M', 'x.json']

def no_space(*args, **kw): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_version(tmp_path, monkeypatch):
    write_json(tmp_path/'m.json', {'v': 1})
    write_dir_atomic(tmp_path/'snap', lambda tmp: (tmp/'w').write_text('whole'))
    with open_atomic(tmp_path/'s.bin', 'wb') as f: f.write(b'old')
    dest = tmp_path/'m.json'
    with pytest.raises(LmeffError, match=rf"^no space left on the device while writing {dest}"):
        write_file_atomic(dest, lambda tmp: (tmp.write_text('{"v": 2'), no_space()))
    with pytest.raises(LmeffError, match=rf"^no space left on the device while writing {tmp_path/'snap'}"):
        write_dir_atomic(tmp_path/'snap', lambda tmp: ((tmp/'w').write_text('half'), no_space()))
    with pytest.raises(LmeffError, match=rf"^no space left on the device while writing {tmp_path/'s.bin'}"):
        with open_atomic(tmp_path/'s.bin', 'wb') as f: f.write(b'new'); no_space()
    def wrapped(tmp):   # libraries that wrap the OSError (torch.save, safetensors) are recognised too
        try: no_space()
        except OSError as e: raise RuntimeError('I/O error: No space left on device (os error 28)') from e
    with pytest.raises(LmeffError, match='no space left on the device'): write_file_atomic(dest, wrapped)
    monkeypatch.setattr(Path, 'write_text', no_space)
    with pytest.raises(LmeffError, match=rf"^no space left on the device while writing {dest}"): write_text(dest, 'x')
    monkeypatch.undo()
    assert read_json(dest) == {'v': 1} and (tmp_path/'snap'/'w').read_text() == 'whole' and (tmp_path/'s.bin').read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith('.')] == []
    with pytest.raises(OSError, match='Permission denied'):          # other errors are not disguised
        write_file_atomic(dest, lambda tmp: (_ for _ in ()).throw(PermissionError(errno.EACCES, 'Permission denied')))
