"The store: the files between stages are written atomically, laid out by one set of functions, and read back exactly."
import os, random
from pathlib import Path
import pytest
from lmeff.config import LmeffError
from lmeff.store import (SnapshotMeta, milestone_folder, milestone_label, milestone_of_folder, open_atomic, parse_results_dir,
                         read_json, results_dir, snapshot_dir, verify_snapshot, write_dir_atomic, write_file_atomic, write_hashes,
                         write_json)

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
