"""Datasets, splits and mini-batches.

- ``train_val_test_split(X, y, val_size=0.15, test_size=0.15, stratify=None, rng=None)``
  returns ``(train, val, test)``, each an ``(X, y)`` pair, ready for ``nn.fit``.
- ``batches(X, y, batch_size)`` yields shuffled mini-batches ``(X_batch, y_batch)``.
- ``make_case_study(n=1000, d=10, seed=0)``: the classic binary task of this project.
- ``load_breast_cancer``, ``load_digits``, ``load_moons``: scikit-learn's small real
  datasets, split and standardised with the training set's statistics.
- ``load_names``, ``split_words``, ``char_examples``, ``sample_names``: real names for a
  character-level language model, one character at a time (``CHARS``: "." and a-z).

Binary labels come as float columns of shape (n, 1), matching a network with one output
unit and ``BCELoss``; multi-class labels as integer vectors of shape (n,) for
``CrossEntropyLoss``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .init import get_rng

__all__ = ["Splits", "train_val_test_split", "batches", "standardize", "make_case_study",
           "load_breast_cancer", "load_digits", "load_moons"]


class Splits(NamedTuple):
    """``(train, val, test)``, each an ``(X, y)`` pair."""

    train: tuple
    val: tuple
    test: tuple


def _count(size, n: int, what: str) -> int:
    if isinstance(size, (float, np.floating)):
        if not 0.0 <= size < 1.0:
            raise ValueError(f"train_val_test_split: {what} as a fraction must be in "
                             f"[0, 1), got {size}")
        return int(round(size * n))
    if isinstance(size, (int, np.integer)) and 0 <= size <= n:
        return int(size)
    raise ValueError(f"train_val_test_split: {what} must be a fraction or a count of at "
                     f"most {n} samples, got {size!r}")


def _labels_1d(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        return y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"stratify: labels must have shape (n,) or (n, 1), got {y.shape}")
    return y


def train_val_test_split(X, y, val_size=0.15, test_size=0.15, stratify=None, shuffle=True,
                         rng=None) -> Splits:
    """Split ``(X, y)`` into training, validation and test sets.

    ``val_size`` / ``test_size``: fractions of the samples (or counts). ``stratify``:
    True to keep each class's share of ``y`` equal in all three parts (or an array of
    labels to stratify by). ``rng``: a Generator or seed (default: ``nn.manual_seed``'s).
    Returns ``Splits(train=(X, y), val=(X, y), test=(X, y))``.
    """
    X, y = np.asarray(X), np.asarray(y)
    n = len(X)
    if len(y) != n:
        raise ValueError(f"train_val_test_split: X has {n} samples but y has {len(y)}")
    n_val, n_test = _count(val_size, n, "val_size"), _count(test_size, n, "test_size")
    if n_val + n_test >= n:
        raise ValueError(f"train_val_test_split: val ({n_val}) + test ({n_test}) leave no "
                         f"training samples out of {n}")
    rng = get_rng(rng)
    if stratify is None or stratify is False:
        order = rng.permutation(n) if shuffle else np.arange(n)
        test, val, train = np.split(order, [n_test, n_test + n_val])
    else:
        labels = _labels_1d(y if stratify is True else stratify)
        if len(labels) != n:
            raise ValueError(f"train_val_test_split: stratify has {len(labels)} labels for "
                             f"{n} samples")
        parts = ([], [], [])
        for cls in np.unique(labels):
            idx = np.flatnonzero(labels == cls)
            if shuffle:
                idx = rng.permutation(idx)
            k_test = int(round(len(idx) * n_test / n))
            k_val = int(round(len(idx) * n_val / n))
            for part, chunk in zip(parts, np.split(idx, [k_test, k_test + k_val])):
                part.append(chunk)
        test, val, train = (np.concatenate(p) for p in parts)
        if shuffle:
            test, val, train = rng.permutation(test), rng.permutation(val), rng.permutation(train)
    return Splits((X[train], y[train]), (X[val], y[val]), (X[test], y[test]))


def batches(X, y=None, batch_size: int = 32, shuffle: bool = True, rng=None,
            drop_last: bool = False):
    """Yield mini-batches ``(X_batch, y_batch)`` (or ``X_batch`` when ``y`` is None).

    A new random order each call when ``shuffle`` (from ``rng``, a Generator or seed);
    the last batch is smaller unless ``drop_last``. ``batch_size=None``: one full batch.
    """
    X = np.asarray(X)
    n = len(X)
    if y is not None and len(y) != n:
        raise ValueError(f"batches: X has {n} samples but y has {len(y)}")
    bs = n if batch_size is None else int(batch_size)
    if bs < 1:
        raise ValueError(f"batches: batch_size must be >= 1, got {batch_size}")
    order = get_rng(rng).permutation(n) if shuffle else None
    stop = n - n % bs if drop_last else n
    for start in range(0, stop, bs):
        if order is None:
            sel = slice(start, start + bs)
        else:
            sel = order[start:start + bs]
        yield X[sel] if y is None else (X[sel], np.asarray(y)[sel])


def standardize(train, *others, std_floor: float = 0.0):
    """Scale features to zero mean and unit variance using ``train``'s statistics.

    Returns ``(train_scaled, *others_scaled, (mean, scale))``: every array becomes
    ``(x - mean) / scale``, with ``mean`` and ``scale`` computed on ``train`` only.

    ``scale`` is each feature's standard deviation, as with scikit-learn's
    ``StandardScaler``; a constant feature is only centred (it becomes 0).

    ``std_floor > 0`` is for features that share one unit, such as the pixels of an
    image: the divisor is then never less than ``std_floor`` times the typical spread
    (the median standard deviation of the non-constant features). Without it a nearly
    constant feature, like a border pixel of the digits images that is blank in all
    but a few pictures (std 0.03 grey levels where a typical pixel has 4.3), is
    magnified 140 times more than a typical pixel, and its rare non-zero values become
    outliers of 40 standard deviations. With it, such a feature keeps its small weight
    (its variance stays below 1) and a constant feature is divided by the floor too.
    Do not use it for features in different units (a floor on their spreads would
    depend on the units chosen).
    """
    if not 0.0 <= std_floor < 1.0:
        raise ValueError(f"standardize: std_floor must be in [0, 1), got {std_floor}")
    train = np.asarray(train, dtype=np.float64)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    # spread lost in rounding (a constant column of 0.1s) counts as none
    varies = std > 1e-12 * np.maximum(np.abs(mean), 1.0)
    floor = std_floor * float(np.median(std[varies])) if np.any(varies) else 0.0
    scale = np.where(varies, np.maximum(std, floor), floor if floor > 0 else 1.0)
    out = [(train - mean) / scale] + [(np.asarray(o, dtype=np.float64) - mean) / scale
                                      for o in others]
    return (*out, (mean, scale))


# ---------------------------------------------------------------------- case study

_TEACHER_SEED = 20_240_601  # the teacher network is fixed: every seed labels alike


def _teacher(d: int):
    """The fixed labelling network: d inputs -> 4 tanh units -> 1 score.

    Along one direction u₁ two units form a bump, tanh(3u₁·x + 2.1) - tanh(3u₁·x - 2.1),
    a band that no straight line separates; two more units, tanh(2u₂·x) and
    tanh(2u₃·x), tilt it. u₁, u₂, u₃ are orthonormal directions from a fixed seed.
    A linear classifier gets about 75% right; a small MLP well over 90%.
    """
    g = np.random.default_rng([_TEACHER_SEED, d])
    U, _ = np.linalg.qr(g.standard_normal((d, min(d, 3))))
    U = np.pad(U, ((0, 0), (0, 3 - U.shape[1])))  # d < 3: the missing directions are 0
    W1 = np.stack([3 * U[:, 0], 3 * U[:, 0], 2 * U[:, 1], 2 * U[:, 2]], axis=1)
    b1 = np.array([2.1, -2.1, 0.0, 0.0])
    w2 = np.array([1.0, -1.0, 1.0, 0.5])
    # centre the score so about half of N(0, I) inputs fall on each side
    ref = np.random.default_rng([_TEACHER_SEED, d, 1]).standard_normal((20_000, d))
    offset = float(np.median(np.tanh(ref @ W1 + b1) @ w2))

    def score(X):
        return np.tanh(X @ W1 + b1) @ w2 - offset

    return score


def make_case_study(n: int = 1000, d: int = 10, seed=0, label_noise: float = 0.0):
    """The classic binary classification task: ``n`` samples with ``d`` features.

    Features are standard normal; labels come from a fixed nonlinear teacher (a small
    tanh network with fixed weights, the same for every ``seed``): y = 1 where its score
    is positive, which splits the inputs roughly in half, along a curved band that a
    linear model cannot follow (logistic regression: about 75% accuracy). ``seed`` (or a Generator)
    draws the samples; ``label_noise`` flips that fraction of labels at random.
    An MLP 10-5-5-1 with sigmoid units trained with BCE reaches >= 0.9 test accuracy.

    Returns ``X`` (n, d) float64 and ``y`` (n, 1) float64 in {0, 1}.
    """
    if n < 1 or d < 1:
        raise ValueError(f"make_case_study: n and d must be positive, got n={n}, d={d}")
    rng = get_rng(seed) if not isinstance(seed, (int, np.integer)) else \
        np.random.default_rng(int(seed))
    X = rng.standard_normal((n, d))
    y = (_teacher(d)(X) > 0).astype(np.float64)
    if label_noise > 0:
        flip = rng.random(n) < label_noise
        y[flip] = 1.0 - y[flip]
    return X, y.reshape(n, 1)


# ---------------------------------------------------------------------- real datasets


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError:
        raise ImportError("nn.data: the real datasets come from scikit-learn; install it "
                          "with: pip install 'chainrule[data]' (or scikit-learn)") from None
    return datasets


def _split_scaled(X, y, val_size, test_size, seed, std_floor=0.0) -> Splits:
    s = train_val_test_split(X, y, val_size=val_size, test_size=test_size, stratify=True,
                             rng=np.random.default_rng(seed))
    Xtr, Xva, Xte, _ = standardize(s.train[0], s.val[0], s.test[0], std_floor=std_floor)
    return Splits((Xtr, s.train[1]), (Xva, s.val[1]), (Xte, s.test[1]))


def load_breast_cancer(val_size=0.15, test_size=0.2, seed: int = 0) -> Splits:
    """Wisconsin breast cancer: 569 samples, 30 features, binary y (n, 1) float
    (1 = benign). Stratified split, standardised with training statistics."""
    X, y = _sklearn_datasets().load_breast_cancer(return_X_y=True)
    return _split_scaled(X, y.astype(np.float64).reshape(-1, 1), val_size, test_size, seed)


def load_digits(val_size=0.15, test_size=0.2, seed: int = 0, images: bool = False) -> Splits:
    """8×8 handwritten digits: 1797 samples, y (n,) int in 0..9, in a stratified split.

    ``images=False``: X of shape (n, 64), each pixel standardised with the training
    set's statistics; the pixels share one unit, so nearly blank border pixels are
    scaled with a floor (``standardize``'s ``std_floor=0.1``) instead of being blown up.

    ``images=True``: X of shape (n, 1, 8, 8) (batch, channel, height, width) for a
    convolutional network, every pixel scaled alike by the mean and standard deviation
    of all training pixels together: a convolution slides the same kernel over every
    position, so a grey level must mean the same everywhere.
    """
    data = _sklearn_datasets().load_digits()
    y = data.target.astype(np.int64)
    if not images:
        return _split_scaled(data.data, y, val_size, test_size, seed, std_floor=0.1)
    s = train_val_test_split(data.images[:, None], y, val_size=val_size,
                             test_size=test_size, stratify=True,
                             rng=np.random.default_rng(seed))
    mean, std = s.train[0].mean(), s.train[0].std()
    return Splits(*(((X - mean) / std, labels) for X, labels in s))


def load_moons(n: int = 1000, noise: float = 0.2, val_size=0.15, test_size=0.2,
               seed: int = 0) -> Splits:
    """Two interleaving half circles in 2-D, binary y (n, 1) float. Standardised."""
    X, y = _sklearn_datasets().make_moons(n_samples=n, noise=noise, random_state=seed)
    return _split_scaled(X, y.astype(np.float64).reshape(-1, 1), val_size, test_size, seed)


# ------------------------------------------------------------- names, one character at a time

__all__ += ["CHARS", "load_names", "char_examples", "split_words", "sample_names"]

CHARS = ".abcdefghijklmnopqrstuvwxyz"  # index 0, ".", marks both the start and the end
_NAME_FILES = {"male": ("dist.male.first",), "female": ("dist.female.first",),
               "first": ("dist.male.first", "dist.female.first"), "last": ("dist.all.last",),
               "all": ("dist.male.first", "dist.female.first", "dist.all.last")}


def load_names(kind: str = "first") -> list:
    """Real names: the US census lists bundled with the ``names`` package.

    ``kind``: "first" (male and female first names, 5,000 or so), "male", "female",
    "last" (88,799 surnames) or "all". Each name is lower-cased; a name with any
    character outside a-z is left out. Every name appears once, in alphabetical order,
    so the list is the same on every machine.
    """
    if kind not in _NAME_FILES:
        raise ValueError(f"load_names: kind must be one of {sorted(_NAME_FILES)}, got {kind!r}")
    try:
        import names
    except ImportError:
        raise ImportError("nn.data.load_names: the census name lists come with the `names` "
                          "package; install it with: pip install 'chainrule[data]' (or "
                          "names)") from None
    from pathlib import Path

    folder = Path(names.__file__).parent
    found = set()
    for file in _NAME_FILES[kind]:
        # each line: NAME, frequency in percent, cumulative percent, rank
        for line in (folder / file).read_text(encoding="ascii").splitlines():
            word = line.split(maxsplit=1)[0].lower() if line.strip() else ""
            if word and word.isascii() and word.isalpha():
                found.add(word)
    return sorted(found)


def _codes(text: str) -> np.ndarray:
    """``text`` (".", a-z) as indices into ``CHARS``."""
    b = np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64)
    bad = (b != ord(".")) & ((b < ord("a")) | (b > ord("z")))
    if bad.any():
        raise ValueError(f"char_examples: {chr(b[bad][0])!r} is not one of {CHARS!r}; "
                         "lower-case the words and keep only a-z")
    return np.where(b == ord("."), 0, b - ord("a") + 1)


def char_examples(words, block_size: int = 3):
    """Next-character examples for a character-level language model.

    Each word, padded as ``"." * block_size + word + "."``, gives one example per
    character after the padding: ``X`` holds the ``block_size`` characters before it
    and ``y`` the character itself, both as indices into ``CHARS`` (0 is "."). A word of
    n letters gives n + 1 examples; the last one predicts the ending ".".

    Returns ``X`` (examples, block_size) and ``y`` (examples,), both int64.
    """
    block_size = int(block_size)
    if block_size < 1:
        raise ValueError(f"char_examples: block_size must be >= 1, got {block_size}")
    words = list(words)
    if not words:
        return np.zeros((0, block_size), dtype=np.int64), np.zeros(0, dtype=np.int64)
    pad = "." * block_size
    codes = _codes("".join(pad + w + "." for w in words))
    windows = np.lib.stride_tricks.sliding_window_view(codes, block_size + 1)
    # keep the windows that end on a word's letter or its ending ".", not in its padding
    lengths = np.array([len(w) + block_size + 1 for w in words], dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    ends = np.flatnonzero(np.arange(len(codes)) - starts >= block_size)
    rows = windows[ends - block_size]
    return rows[:, :block_size].copy(), rows[:, block_size].copy()


def split_words(words, val_size=0.1, test_size=0.1, rng=None):
    """Split a list of words into ``(train, val, test)`` lists (by word, so no word
    lends examples to two parts). Sizes: fractions or counts; ``rng``: a Generator or
    seed (default: ``nn.manual_seed``'s)."""
    words = list(words)
    n = len(words)
    n_val, n_test = _count(val_size, n, "val_size"), _count(test_size, n, "test_size")
    if n_val + n_test >= n:
        raise ValueError(f"split_words: val ({n_val}) + test ({n_test}) leave no training "
                         f"words out of {n}")
    order = get_rng(rng).permutation(n)
    test, val, train = np.split(order, [n_test, n_test + n_val])
    return tuple([words[i] for i in part] for part in (train, val, test))


def sample_names(model, n: int = 10, block_size: int = 3, max_length: int = 30,
                 rng=None) -> list:
    """Draw ``n`` words from a character-level language model.

    ``model`` maps contexts ``(n, block_size)`` of indices into ``CHARS`` to logits
    ``(n, len(CHARS))``. Every word starts from an all-"." context; each step draws the
    next character from the softmax of the logits, until "." (the end) or
    ``max_length`` letters. A ``Module`` is run in eval mode (batch norm with its
    running statistics) and left in the modes it had. ``rng``: a Generator or seed.
    """
    import autograd as ag

    rng = get_rng(rng)
    modes = [(m, m.training) for m in model.modules()] if hasattr(model, "modules") else []
    if modes:
        model.eval()
    context = np.zeros((n, block_size), dtype=np.int64)
    out = np.zeros((n, max_length), dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    try:
        with ag.no_grad():
            for t in range(max_length):
                logits = model(context)
                z = np.asarray(logits.numpy() if isinstance(logits, ag.Tensor) else logits,
                               dtype=np.float64)
                p = np.exp(z - z.max(axis=1, keepdims=True))
                cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
                ix = np.minimum((cdf < rng.random((n, 1))).sum(axis=1), len(CHARS) - 1)
                alive &= ix != 0
                if not alive.any():
                    break
                out[:, t] = np.where(alive, ix, 0)
                context = np.concatenate([context[:, 1:], ix[:, None]], axis=1)
    finally:
        for m, mode in modes:
            m.__dict__["training"] = mode
    letters = np.array(list(CHARS))
    return ["".join(letters[row[row > 0]]) for row in out]
