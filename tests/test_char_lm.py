"""A character-level language model on real names (Bengio et al. 2003, as in the
makemore lectures): the census first names, split by word, trained in chainrule and in
PyTorch from the same initial weights on the same mini-batches; the data helpers it uses
(``nn.data.load_names``, ``char_examples``, ``split_words``, ``sample_names``)."""

import math

import numpy as np
import pytest
from support import require_module

import autograd as ag
import nn
import nn.functional as F

BLOCK, EMB, HIDDEN, V = 3, 10, 100, len(nn.data.CHARS)
STEPS, BATCH, LR = 1000, 32, 0.1


# ----------------------------------------------------------------------------- data


def test_load_names_is_real_lowercase_and_deterministic():
    require_module("names", "load_names")
    words = nn.data.load_names()
    assert len(words) > 5000 and words == sorted(set(words))
    assert {"emma", "olivia", "james", "john"} <= set(words)
    assert set("".join(words)) <= set("abcdefghijklmnopqrstuvwxyz")
    assert nn.data.load_names() == words
    male, female = nn.data.load_names("male"), nn.data.load_names("female")
    assert set(words) == set(male) | set(female)
    assert len(nn.data.load_names("last")) > 80_000
    with pytest.raises(ValueError, match="kind must be one of"):
        nn.data.load_names("middle")


def test_char_examples_pads_with_dots_and_ends_each_word():
    X, y = nn.data.char_examples(["emma", "al"], block_size=3)
    decode = "".join
    C = nn.data.CHARS
    got = [(decode(C[i] for i in row), C[t]) for row, t in zip(X, y)]
    assert got == [("...", "e"), ("..e", "m"), (".em", "m"), ("emm", "a"), ("mma", "."),
                   ("...", "a"), ("..a", "l"), (".al", ".")]
    assert X.dtype == y.dtype == np.int64 and X.shape == (8, 3)
    X0, y0 = nn.data.char_examples([], block_size=3)
    assert X0.shape == (0, 3) and y0.shape == (0,)
    X1, y1 = nn.data.char_examples(["ab"], block_size=1)
    assert X1[:, 0].tolist() == [0, 1, 2] and y1.tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="'E' is not one of"):
        nn.data.char_examples(["Emma"])
    with pytest.raises(ValueError, match="block_size must be >= 1"):
        nn.data.char_examples(["emma"], block_size=0)


def test_split_words_is_seeded_disjoint_and_complete():
    words = [f"w{i}" for i in range(100)]
    tr, va, te = nn.data.split_words(words, rng=3)
    assert (len(tr), len(va), len(te)) == (80, 10, 10)
    assert sorted(tr + va + te) == sorted(words)
    assert nn.data.split_words(words, rng=3) == (tr, va, te)
    assert nn.data.split_words(words, rng=4) != (tr, va, te)
    with pytest.raises(ValueError, match="leave no training words"):
        nn.data.split_words(words[:2], val_size=1, test_size=1)


def test_sample_names_follows_the_model_and_restores_its_mode():
    # a "model" that always says: after "a", end; otherwise "a"
    def always_a_then_end(context):
        z = np.full((len(context), V), -50.0)
        last = context[:, -1]
        z[np.arange(len(context)), np.where(last == 1, 0, 1)] = 50.0
        return ag.Tensor(z)

    assert nn.data.sample_names(always_a_then_end, n=3, rng=0) == ["a", "a", "a"]
    model = nn.Sequential(nn.Embedding(V, 2), nn.Flatten(), nn.Linear(2 * BLOCK, V))
    model.train()
    words = nn.data.sample_names(model, n=4, max_length=5, rng=1)
    assert len(words) == 4 and all(len(w) <= 5 for w in words)
    assert model.training and all(m.training for m in model.modules())
    assert nn.data.sample_names(model, n=4, max_length=5, rng=1) == words


# ---------------------------------------------------------------------------- model


def _torch_model(torch):
    return torch.nn.Sequential(
        torch.nn.Embedding(V, EMB), torch.nn.Flatten(), torch.nn.Linear(BLOCK * EMB, HIDDEN),
        torch.nn.BatchNorm1d(HIDDEN), torch.nn.Tanh(), torch.nn.Linear(HIDDEN, V)).double()


def _model():
    return nn.Sequential(
        nn.Embedding(V, EMB, dtype=np.float64), nn.Flatten(),
        nn.Linear(BLOCK * EMB, HIDDEN, dtype=np.float64), nn.BatchNorm1d(HIDDEN,
                                                                        dtype=np.float64),
        nn.Tanh(), nn.Linear(HIDDEN, V, dtype=np.float64))


@pytest.mark.slow
def test_language_model_trains_like_pytorch_and_samples_names():
    torch = require_module("torch", "the language model against PyTorch")
    require_module("names", "the language model")
    train, dev, _ = nn.data.split_words(nn.data.load_names(), rng=2003)
    Xtr, Ytr = nn.data.char_examples(train, BLOCK)
    Xdev, Ydev = nn.data.char_examples(dev, BLOCK)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: a thread pool on busy cores costs 100x
    try:
        _train_both(torch, Xtr, Ytr, Xdev, Ydev)
    finally:
        torch.set_num_threads(threads)


def _train_both(torch, Xtr, Ytr, Xdev, Ydev):
    batches = np.random.default_rng(0).integers(0, len(Xtr), size=(STEPS, BATCH))
    torch.manual_seed(0)
    ref = _torch_model(torch)
    ours = _model()
    ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    opt_ref = torch.optim.SGD(ref.parameters(), lr=LR)
    opt = nn.optim.SGD(ours.parameters(), lr=LR)
    for ix in batches:
        loss_ref = torch.nn.functional.cross_entropy(ref(torch.from_numpy(Xtr[ix])),
                                                     torch.from_numpy(Ytr[ix]))
        opt_ref.zero_grad()
        loss_ref.backward()
        opt_ref.step()
        loss = F.cross_entropy(ours(Xtr[ix]), Ytr[ix])
        opt.zero_grad()
        loss.backward()
        opt.step()

    ref.eval()
    ours.eval()
    with torch.no_grad():
        dev_ref = torch.nn.functional.cross_entropy(ref(torch.from_numpy(Xdev)),
                                                    torch.from_numpy(Ydev)).item()
    with ag.no_grad():
        dev_ours = F.cross_entropy(ours(Xdev), Ydev).item()
    # the bar is 0.02; but in float64 the same ops on the same numbers agree to rounding,
    # and rounding differences (a sum in another order) do not grow in these 1000 steps:
    # the two dev losses agree to 1e-9 (on the machine this was written on: identical)
    assert abs(dev_ours - dev_ref) < 0.02
    assert abs(dev_ours - dev_ref) < 1e-9, (dev_ours, dev_ref)
    state = ours.state_dict()
    for k, v in ref.state_dict().items():
        np.testing.assert_allclose(state[k], v.numpy(), rtol=1e-8, atol=1e-9, err_msg=k)
    assert dev_ours < math.log(V) - 0.7  # uniform guessing: ln 27 = 3.30

    sampled = nn.data.sample_names(ours, n=10, block_size=BLOCK, rng=0)
    print(f"dev loss {dev_ours:.6f} (PyTorch {dev_ref:.6f}, apart {abs(dev_ours - dev_ref):.1e});"
          f" sampled: {', '.join(sampled)}")
    assert all(w and set(w) <= set(nn.data.CHARS[1:]) for w in sampled)
    assert not ours.training
