"""nn.save / nn.load: round trip, atomic writes, and refusing bad files."""

import errno
import os
import pickle
import signal
import threading
import time
import tracemalloc
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


def test_round_trip_keeps_shapes_and_layout(tmp_path):
    # 0-d arrays (a step counter, PyTorch's num_batches_tracked) stay 0-d, and
    # non-contiguous arrays come back with the same values
    d = {"step": np.array(7), "t": np.arange(6.0).reshape(2, 3).T, "e": np.zeros((0, 3))}
    nn.save(d, tmp_path / "s.npz")
    back = nn.load(tmp_path / "s.npz")
    for k, v in d.items():
        assert back[k].shape == v.shape and back[k].dtype == v.dtype
        np.testing.assert_array_equal(back[k], v)


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


# ----------------------------------------------------------------- stale temporaries

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _temporaries(directory) -> list:
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


def _in_child(fn) -> int:
    """Run ``fn()`` in a forked process; its exit code (0: returned, 1: raised, -9: killed)."""
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        code = 1
        try:
            fn()
            code = 0
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _killed_mid_write(path, state) -> None:
    """Save ``state`` to ``path`` in a process that SIGKILLs itself inside the archive."""
    def save_and_die():
        real_write = np.lib.format.write_array

        def write(fp, array, *args, **kwargs):
            real_write(fp, array, *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)

        np.lib.format.write_array = write
        nn.save(state, path)

    assert _in_child(save_and_die) == -signal.SIGKILL


@needs_fork
def test_next_save_removes_stale_temporaries_of_its_target_only(tmp_path, model):
    path = tmp_path / "model.npz"
    nn.save({"old": np.arange(3.0)}, path)
    _killed_mid_write(path, model)
    first = _temporaries(tmp_path)
    assert len(first) == 1  # what kill -9 leaves behind
    _killed_mid_write(path, model)  # this save removed it before it was killed in turn
    stale = _temporaries(tmp_path)
    assert len(stale) == 1 and stale != first
    _killed_mid_write(tmp_path / "other.npz", model)
    stale = _temporaries(tmp_path)
    np.testing.assert_array_equal(nn.load(path)["old"], np.arange(3.0))  # target intact
    # files that are not ours, or belong to another target, stay
    others = [n for n in stale if n.startswith(".other.npz.")]
    mine = [".model.npz.notes.tmp", "model.npz.tmp", ".model.npz.tmp"]
    for name in mine:
        (tmp_path / name).write_text("the user's")
    nn.save(model, path)
    assert _temporaries(tmp_path) == sorted(others + mine)
    assert list(nn.load(path)) == [n for n, _ in model.named_parameters()]
    nn.save(model, tmp_path / "other.npz")
    assert _temporaries(tmp_path) == sorted(mine)


@needs_fork
def test_a_save_in_progress_elsewhere_keeps_its_temporary(tmp_path, model):
    # two processes save the same target at once: the second one's clean-up must leave
    # the first one's temporary file alone, and both saves succeed
    path = tmp_path / "model.npz"
    nn.save(model, path)
    started_r, started_w = os.pipe()
    go_r, go_w = os.pipe()
    theirs = {"theirs": np.arange(4.0)}

    def slow_save():
        real_write = np.lib.format.write_array

        def write(fp, array, *args, **kwargs):
            real_write(fp, array, *args, **kwargs)
            os.write(started_w, b"1")  # mid-write: tell the parent, wait for its go
            os.read(go_r, 1)

        np.lib.format.write_array = write
        nn.save(theirs, path)

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            slow_save()
            code = 0
        finally:
            os._exit(code)
    try:
        assert os.read(started_r, 1) == b"1"
        in_flight = _temporaries(tmp_path)
        assert len(in_flight) == 1
        nn.save(model, path)
        assert _temporaries(tmp_path) == in_flight  # not taken for a stale one
    finally:
        os.write(go_w, b"1")
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        for fd in (started_r, started_w, go_r, go_w):
            os.close(fd)
    assert status == 0  # its save completed: it renamed its temporary over the target
    np.testing.assert_array_equal(nn.load(path)["theirs"], theirs["theirs"])
    assert _temporaries(tmp_path) == []


def test_threads_saving_one_target_at_once(tmp_path):
    path = tmp_path / "model.npz"
    states = [{"k": np.array(k), "w": np.full(1000, float(k))} for k in range(2)]
    errors = []

    def work(k):
        try:
            for _ in range(40):
                nn.save(states[k], path)
        except Exception as err:  # reported by the assert below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = nn.load(path)
    np.testing.assert_array_equal(got["w"], states[got["k"].item()]["w"])
    assert os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.slow
@needs_fork
def test_save_killed_at_random_moments_never_corrupts_nor_litters(tmp_path):
    # a process saving a model of 24 MB again and again is killed at random moments;
    # every time the target holds one complete save, and the next save cleans up
    path = tmp_path / "model.npz"
    weights = [np.full(3_000_000, float(v)) for v in (0, 1)]

    def state(k):  # save k holds weights[k % 2]; k = -1: a small one
        return {"k": np.array(k), "w": weights[k % 2] if k >= 0 else np.zeros(3)}

    nn.save(state(0), path)
    start = time.perf_counter()
    nn.save(state(1), path)
    save_time = time.perf_counter() - start
    rng = np.random.default_rng(0)

    def save_forever():
        k = 2
        while True:
            nn.save(state(k), path)
            k += 1

    littered = 0
    for trial in range(20):
        pid = os.fork()
        if pid == 0:
            try:
                save_forever()
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 1.2 * save_time))
        os.kill(pid, signal.SIGKILL)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == -signal.SIGKILL
        got = nn.load(path)  # old or new contents, never a corrupt file
        assert set(got) == {"k", "w"}
        assert np.array_equal(got["w"], state(got["k"].item())["w"]), f"trial {trial}"
        littered += bool(_temporaries(tmp_path))
        nn.save(state(-1), path)  # the next save (a small one, to keep the test short)
        assert os.listdir(tmp_path) == ["model.npz"], f"trial {trial}"
    assert littered > 0  # some kills did land mid-write


# ----------------------------------------------------------------- errors name the target


def test_save_into_a_read_only_directory_names_the_target(tmp_path, model, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root ignores permissions: refuse as the kernel would
        real_open = os.open

        def refusing_open(name, flags, *args, **kwargs):
            if flags & os.O_CREAT and os.path.dirname(os.fspath(name)) == str(folder):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), name)
            return real_open(name, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing_open)
    target = folder / "model.npz"
    try:
        with pytest.raises(PermissionError) as info:
            nn.save(model, target)
    finally:
        folder.chmod(0o755)
    message = str(info.value)
    assert str(target) in message and ".tmp" not in message
    assert "nn.save" in message and "writable" in message


# ----------------------------------------------------------------- compressed members


def _compressed_zeros(path, key: str, n_bytes: int) -> None:
    """An .npz whose member ``key`` is ``n_bytes`` of zeros, deflated (tiny on disk)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open(key + ".npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<f8", "fortran_order": False, "shape": (n_bytes // 8,)})
            chunk = bytes(2**22)
            for _ in range(n_bytes // len(chunk)):
                f.write(chunk)


def test_load_refuses_a_member_that_inflates_past_the_limit(tmp_path):
    bomb = tmp_path / "bomb.npz"
    _compressed_zeros(bomb, "weights", 200 * 2**20)
    assert bomb.stat().st_size < 2**20  # under 1 MB on disk, 200 MB inflated
    tracemalloc.start()
    try:
        with pytest.raises(nn.LoadError, match=r"bomb.npz.*'weights'.*max_member_bytes="):
            nn.load(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20  # refused before inflating it
    # the caller can raise the limit for a file they trust
    small = tmp_path / "small.npz"
    np.savez_compressed(small, w=np.zeros(100_000))  # 800 kB inflated
    with pytest.raises(nn.LoadError, match=r"small.npz.*'w'.*800,128 bytes.*"
                                           r"max_member_bytes=100000"):
        nn.load(small, max_member_bytes=100_000)
    np.testing.assert_array_equal(nn.load(small, max_member_bytes=10**6)["w"], 0.0)
    # members stored uncompressed, as nn.save writes them, are no larger than the file
    plain = tmp_path / "plain.npz"
    nn.save({"w": np.zeros(100_000)}, plain)
    assert nn.load(plain, max_member_bytes=1000)["w"].shape == (100_000,)
    with pytest.raises(ValueError, match="max_member_bytes"):
        nn.load(plain, max_member_bytes=-1)


def test_load_refuses_compression_it_cannot_bound(tmp_path):
    # bzip2 and lzma inflate a whole chunk at once, however large: only deflate (what
    # np.savez_compressed writes) and stored members are read
    path = tmp_path / "bz.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as zf:
        with zf.open("w.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros(10))
    with pytest.raises(nn.LoadError, match=r"bz.npz.*'w'.*zip method 12"):
        nn.load(path)
