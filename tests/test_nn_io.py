"""nn.save / nn.load: round trip, atomic writes, and refusing bad files."""

import os
import pickle
import zipfile

import numpy as np
import pytest

import autograd as ag
import nn


@pytest.fixture
def model():
    return nn.MLP([3, 4, 2], rng=0)


def test_round_trip_module_and_dict(tmp_path, model):
    path = tmp_path / "model.npz"
    nn.save(model, path)
    state = nn.load(path)
    assert list(state) == [n for n, _ in model.named_parameters()]
    other = nn.MLP([3, 4, 2], rng=1)
    other.load_state_dict(state)
    x = ag.Tensor(np.ones((2, 3)))
    np.testing.assert_array_equal(other(x).data, model(x).data)
    # a plain dict of arrays, float32 and ints kept as they are
    d = {"a": np.arange(5, dtype=np.int32), "b.c": np.ones((2, 2), dtype=np.float32)}
    nn.save(d, str(tmp_path / "d.npz"))
    back = nn.load(str(tmp_path / "d.npz"))
    assert back["a"].dtype == np.int32 and back["b.c"].dtype == np.float32
    np.testing.assert_array_equal(back["a"], d["a"])
    # keys that clash with np.savez's own argument names are fine
    nn.save({"file": np.zeros(1), "allow_pickle": np.ones(1)}, tmp_path / "k.npz")
    assert set(nn.load(tmp_path / "k.npz")) == {"file", "allow_pickle"}


def test_save_refuses_objects(tmp_path):
    with pytest.raises(TypeError, match="numeric"):
        nn.save({"x": np.array([{"a": 1}], dtype=object)}, tmp_path / "o.npz")
    with pytest.raises(TypeError, match="Module or a dict"):
        nn.save([np.zeros(2)], tmp_path / "l.npz")
    assert os.listdir(tmp_path) == []  # nothing left behind


def test_save_into_missing_directory(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nn.save(model, tmp_path / "nope" / "model.npz")


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        nn.load(tmp_path / "nope.npz")


def test_load_corrupt_file(tmp_path, model):
    path = tmp_path / "model.npz"
    nn.save(model, path)
    raw = bytearray(path.read_bytes())
    # flip bytes inside the first array's data: the zip CRC catches it
    start = raw.index(b"\x93NUMPY") + 200
    for i in range(start, start + 16):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(nn.LoadError, match="model.npz"):
        nn.load(path)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not an npz archive at all")
    with pytest.raises(nn.LoadError, match="garbage.npz.*not an .npz archive"):
        nn.load(garbage)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(nn.LoadError, match="empty"):
        nn.load(empty)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_load_truncated_file(tmp_path, model, keep):
    path = tmp_path / "model.npz"
    nn.save(model, path)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(nn.LoadError, match="model.npz.*(corrupt|truncated)"):
        nn.load(path)


def test_load_refuses_pickled_object_array(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, weights=np.array([{"payload": 1}, None], dtype=object))
    with pytest.raises(nn.LoadError, match="evil.npz.*'weights'.*refused"):
        nn.load(path)


def test_load_refuses_plain_pickle_and_npy(tmp_path):
    path = tmp_path / "state.pkl"
    path.write_bytes(pickle.dumps({"w": np.zeros(2)}))
    with pytest.raises(nn.LoadError, match="state.pkl.*pickle"):
        nn.load(path)
    npy = tmp_path / "one.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(nn.LoadError, match="single .npy array"):
        nn.load(npy)
    z = tmp_path / "other.npz"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(nn.LoadError, match="not a .npy array"):
        nn.load(z)


def test_save_is_atomic_when_interrupted(tmp_path, model, monkeypatch):
    path = tmp_path / "model.npz"
    nn.save({"old": np.arange(3.0)}, path)
    before = path.read_bytes()

    calls = []
    real_write = np.lib.format.write_array

    def failing_write(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # fail in the middle of the archive
            raise OSError("disk full (simulated)")
        return real_write(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(OSError, match="disk full"):
        nn.save(model, path)
    assert path.read_bytes() == before  # the old file is intact
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary file left
    monkeypatch.undo()
    np.testing.assert_array_equal(nn.load(path)["old"], np.arange(3.0))
    # and a successful save replaces it
    nn.save(model, path)
    assert list(nn.load(path)) == [n for n, _ in model.named_parameters()]


def test_save_keeps_ordinary_permissions(tmp_path, model):
    path = tmp_path / "model.npz"
    nn.save(model, path)
    assert os.stat(path).st_mode & 0o777 == 0o644
    os.chmod(path, 0o640)
    nn.save(model, path)
    assert os.stat(path).st_mode & 0o777 == 0o640
