"""nn.save / nn.load with .safetensors: read back by the real readers (safetensors,
PyTorch), files written by PyTorch read in, the atomic write, and refusing bad files."""

import json
import os
import signal

import numpy as np
import pytest

import autograd as ag
import nn

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")
st_numpy = pytest.importorskip("safetensors.numpy")
safetensors = pytest.importorskip("safetensors")

V, T, D, H = 11, 3, 4, 8  # the language model: vocabulary, context, embedding, hidden


# ---------------------------------------------------------------- equivalent models


def _mlp():
    return (nn.MLP([3, 5, 4, 2], activation="tanh"),
            _TorchMLP(torch.nn.Linear(3, 5), torch.nn.Tanh(), torch.nn.Linear(5, 4),
                      torch.nn.Tanh(), torch.nn.Linear(4, 2)))


class _TorchMLP(torch.nn.Module):
    """nn.MLP's layout in PyTorch: the layers in ``self.layers``."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


def _cnn():
    ours = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 3, 3, stride=1, padding=1), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(3 * 2 * 2, 5))
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 3, 3, stride=1, padding=1),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(3 * 2 * 2, 5))
    return ours, theirs


def _language_model():
    ours = nn.Sequential(nn.Embedding(V, D), nn.Flatten(), nn.Linear(T * D, H),
                         nn.BatchNorm1d(H), nn.Tanh(), nn.Linear(H, V))
    theirs = torch.nn.Sequential(torch.nn.Embedding(V, D), torch.nn.Flatten(),
                                 torch.nn.Linear(T * D, H), torch.nn.BatchNorm1d(H),
                                 torch.nn.Tanh(), torch.nn.Linear(H, V))
    return ours, theirs


def _inputs(kind, rng, n):
    if kind == "language_model":
        return rng.integers(0, V, (n, T))
    return rng.standard_normal((n, 3) if kind == "mlp" else (n, 2, 8, 8))


MODELS = {"mlp": _mlp, "cnn": _cnn, "language_model": _language_model}


def _train_a_little(model, x):
    """A few training-mode passes, so that running statistics are not their defaults."""
    if isinstance(model, nn.Module):
        model.train()
        for k in range(3):
            model(x[k::3])
    else:
        model.train()
        with torch.no_grad():
            for k in range(3):
                model(torch.from_numpy(x[k::3]))
    model.eval()


def _torch_out(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("kind", list(MODELS))
def test_chainrule_file_loads_into_pytorch(tmp_path, kind):
    rng = np.random.default_rng(0)
    nn.manual_seed(0)
    ours, theirs = MODELS[kind]()
    theirs.double()
    _train_a_little(ours, _inputs(kind, rng, 12))
    path = tmp_path / "model.safetensors"
    nn.save(ours, path)
    state = st_torch.load_file(str(path))
    assert list(state) == list(ours.state_dict())  # buffers too
    assert theirs.load_state_dict(state, strict=True)  # no missing or unexpected keys
    theirs.eval()
    x = _inputs(kind, rng, 7)
    np.testing.assert_allclose(_torch_out(theirs, x), ours(x).data, rtol=1e-12, atol=1e-12)
    # and the plain NumPy reader sees the same arrays
    arrays = st_numpy.load_file(str(path))
    for k, v in ours.state_dict().items():
        assert arrays[k].dtype == v.dtype and arrays[k].shape == v.shape
        np.testing.assert_array_equal(arrays[k], v)


@pytest.mark.parametrize("kind", list(MODELS))
def test_pytorch_file_loads_into_chainrule(tmp_path, kind):
    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    ours, theirs = MODELS[kind]()
    theirs.double()
    _train_a_little(theirs, _inputs(kind, rng, 12))
    path = tmp_path / "model.safetensors"
    st_torch.save_file(theirs.state_dict(), str(path))
    ours.load_state_dict(nn.load(path), strict=True)
    ours.eval()
    x = _inputs(kind, rng, 7)
    np.testing.assert_allclose(ours(x).data, _torch_out(theirs, x), rtol=1e-12, atol=1e-12)
    if kind == "cnn":  # the buffers came along, the step counter as an int64 0-d array
        assert ours.state_dict()["1.num_batches_tracked"].item() == 3
        assert not np.allclose(ours.state_dict()["1.running_var"], 1.0)


def test_header_metadata_and_dtypes(tmp_path):
    model = nn.MLP([3, 4, 2], dtype=np.float32, rng=0)
    path = tmp_path / "m.safetensors"
    nn.save(model, path, metadata={"task": "case study"})
    with safetensors.safe_open(str(path), "np") as f:
        meta = f.metadata()
    assert meta["architecture"] == "MLP" and meta["dtype"] == "float32"
    assert meta["chainrule_version"] == ag.__version__ and meta["task"] == "case study"
    state = {"f": np.arange(6.0).reshape(2, 3).T, "i": np.arange(4, dtype=np.int32),
             "b": np.array([True, False]), "s": np.array(7), "e": np.zeros((0, 3)),
             "big": np.arange(3, dtype=">f8")}
    nn.save(state, path)
    back = nn.load(path)
    assert list(back) == list(state)
    theirs = st_numpy.load_file(str(path))
    for k, v in state.items():
        for got in (back[k], theirs[k]):
            assert got.shape == v.shape and got.dtype == v.dtype.newbyteorder("=")
            np.testing.assert_array_equal(got, v)
    with pytest.raises(TypeError, match="'c'.*complex128.*safetensors"):
        nn.save({"c": np.zeros(2, dtype=complex)}, tmp_path / "c.safetensors")
    with pytest.raises(TypeError, match="strings"):
        nn.save(model, path, metadata={"epochs": 3})
    with pytest.raises(ValueError, match="metadata.*safetensors"):
        nn.save(model, tmp_path / "m.npz", metadata={"a": "b"})
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]


# ---------------------------------------------------------------- bad files


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.safetensors"
    nn.save(nn.MLP([3, 4, 2], rng=0), path)
    return path


@pytest.mark.parametrize("keep", [0, 5, 8, 40, 0.5, 0.95])
def test_truncated_file(saved, keep):
    raw = saved.read_bytes()
    saved.write_bytes(raw[:keep if isinstance(keep, int) else int(len(raw) * keep)])
    with pytest.raises(nn.LoadError, match=r"model.safetensors.*(truncated|empty)"):
        nn.load(saved)


def _rewrite_header(path, change):
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    change(header)
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + raw[8 + n:])


@pytest.mark.parametrize("change, message", [
    (lambda h: h["layers.0.bias"].update(dtype="BF16"), r"'layers.0.bias'.*'BF16'"),
    (lambda h: h["layers.0.bias"].update(shape=[5]), r"'layers.0.bias'.*needs 40 bytes"),
    (lambda h: h["layers.0.bias"].update(shape=[-4]), r"'layers.0.bias'.*shape"),
    (lambda h: h["layers.2.bias"].update(data_offsets=[0, 16]), r"no gap or overlap"),
    (lambda h: h.update(extra={"dtype": "F64"}), r"'extra'"),
    (lambda h: h.update(__metadata__={"epochs": 3}), r"__metadata__"),
])
def test_corrupt_header(saved, change, message):
    _rewrite_header(saved, change)
    with pytest.raises(nn.LoadError, match="model.safetensors.*" + message):
        nn.load(saved)


def test_foreign_files(tmp_path, saved):
    text = tmp_path / "notes.safetensors"
    text.write_bytes(b"these are my notes, not tensors at all")
    with pytest.raises(nn.LoadError, match="notes.safetensors.*announce a header"):
        nn.load(text)
    npz = tmp_path / "weights.safetensors"
    nn.save({"w": np.zeros(3)}, tmp_path / "w.npz")
    os.replace(tmp_path / "w.npz", npz)
    with pytest.raises(nn.LoadError, match="weights.safetensors.*zip archive"):
        nn.load(npz)
    misnamed = tmp_path / "model.npz"  # a safetensors file under the other suffix
    misnamed.write_bytes(saved.read_bytes())
    with pytest.raises(nn.LoadError, match="model.npz.*looks like a .safetensors file"):
        nn.load(misnamed)
    raw = bytearray(saved.read_bytes())
    raw[9:13] = b"\xff\xfe{["  # not UTF-8 JSON any more
    saved.write_bytes(bytes(raw))
    with pytest.raises(nn.LoadError, match="model.safetensors.*not JSON"):
        nn.load(saved)
    array = tmp_path / "list.safetensors"
    array.write_bytes((8).to_bytes(8, "little") + b"[1,2,3] ")
    with pytest.raises(nn.LoadError, match="list.safetensors.*JSON list"):
        nn.load(array)


def test_huge_header_length_is_refused_before_reading(tmp_path, saved, monkeypatch):
    path = tmp_path / "huge.safetensors"
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(nn.LoadError, match=r"huge.safetensors.*4,611,686,018,427,387,904"):
        nn.load(path)
    # a header within the file but over the format's limit (100 MB; lowered here)
    monkeypatch.setattr(nn.io, "_MAX_HEADER_BYTES", 64)
    with pytest.raises(nn.LoadError, match=r"model.safetensors.*larger than the format"):
        nn.load(saved)


# ---------------------------------------------------------------- atomic write

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@needs_fork
def test_kill_during_save_leaves_the_old_file(tmp_path):
    path = tmp_path / "model.safetensors"
    old = {"old": np.arange(3.0)}
    nn.save(old, path)
    before = path.read_bytes()
    big = {"a": np.ones(1000), "b": np.zeros(200_000)}

    pid = os.fork()
    if pid == 0:  # the child dies by SIGKILL after writing the first tensor
        try:
            real = nn.io._raw_bytes
            calls = []

            def raw_then_die(arr):
                calls.append(1)
                if len(calls) == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
                return real(arr)

            nn.io._raw_bytes = raw_then_die
            nn.save(big, path)
        finally:
            os._exit(1)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == -signal.SIGKILL
    assert path.read_bytes() == before  # intact
    left = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(left) == 1 and left[0].startswith(".model.safetensors.")
    np.testing.assert_array_equal(nn.load(path)["old"], old["old"])
    nn.save(big, path)  # the next save completes and removes the dead one's file
    assert os.listdir(tmp_path) == ["model.safetensors"]
    np.testing.assert_array_equal(st_numpy.load_file(str(path))["b"], big["b"])
