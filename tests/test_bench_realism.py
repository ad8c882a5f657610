"""The realism benchmark's statistics (bench/bench_realism.py) on synthetic feature sets: numpy only."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_realism as br  # noqa: E402


def _sets(shift: float, n: int = 120, d: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    x[:, 0] += shift
    groups = [f"g{i // 6}" for i in range(n)]  # 20 groups of 6
    return x, groups, y, list(groups)


def test_identical_distributions_are_indistinguishable():
    x, gx, y, gy = _sets(0.0)
    assert abs(br.two_sample_accuracy(x, gx, y, gy) - 0.5) < 0.1
    assert br.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert br.frechet_distance(x, y) < 0.5
    assert br.variety(x, y) == pytest.approx(1.0, abs=0.1)


def test_shifted_distributions_are_told_apart():
    x, gx, y, gy = _sets(3.0)
    assert br.two_sample_accuracy(x, gx, y, gy) > 0.9
    assert br.frechet_distance(x, y) == pytest.approx(9.0, rel=0.2)  # |mean shift|^2, same covariance


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20000, 2))
    y = 2 * rng.normal(size=(20000, 2))  # tr(I + 4I - 2 * 2I) = 2
    assert br.frechet_distance(x, y) == pytest.approx(2.0, rel=0.05)


def test_variety_of_copies_is_low():
    x, _, y, _ = _sets(0.0)
    copies = x[:1] + 0.01 * x
    assert br.variety(copies, y) < 0.05


def test_grouped_folds_never_split_a_group():
    groups = [f"track{i % 7}" for i in range(50)]
    folds = br.grouped_folds(groups, 5, seed=3)
    for g in set(groups):
        assert len({f for f, h in zip(folds, groups) if h == g}) == 1
    assert set(folds) == set(range(5))


def test_accuracy_does_not_learn_tracks():
    """Each group has its own offset, the same in both sets: a classifier that split groups across folds
    would learn them; grouped folds keep it near chance."""
    rng = np.random.default_rng(2)
    offsets = 3 * rng.normal(size=(10, 4))
    x = np.repeat(offsets, 8, axis=0) + 0.1 * rng.normal(size=(80, 4))
    y = np.repeat(offsets, 8, axis=0) + 0.1 * rng.normal(size=(80, 4))
    groups = [f"t{i // 8}" for i in range(80)]
    assert br.two_sample_accuracy(x, groups, y, [f"other{i // 8}" for i in range(80)]) < 0.7


def test_fit_logistic_separates_a_line():
    x = np.linspace(-2, 2, 40)[:, None]
    w, b = br.fit_logistic(x, (x[:, 0] > 0).astype(float), l2=0.1)
    assert w[0] > 0 and abs(b) < 0.5


def test_clip_features_shape_and_loudness_invariance():
    t = np.arange(br.SAMPLE_RATE * 2) / br.SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + (np.sin(2 * np.pi * 2 * t) > 0))
    features = br.clip_features(tone, br.SAMPLE_RATE)
    assert features.shape == (len(br.FEATURE_NAMES),) and np.isfinite(features).all()
    assert np.allclose(br.clip_features(0.1 * tone, br.SAMPLE_RATE), features, atol=1e-6)
    chroma = features[[i for i, n in enumerate(br.FEATURE_NAMES) if n.startswith("chroma")]]
    assert np.argmax(chroma) == 0  # pitch class A


@pytest.mark.parametrize(("call", "match"), [
    (lambda: br.frechet_distance(np.zeros((5, 3)), np.zeros((5, 2))), "same features"),
    (lambda: br.variety(np.zeros((1, 3)), np.ones((4, 3))), "at least 2 samples"),
    (lambda: br.variety(np.ones((3, 2)), np.ones((4, 2))), "no spread"),
    (lambda: br.grouped_folds(["a", "b"], 3), "at least that many groups"),
    (lambda: br.two_sample_accuracy(np.ones((4, 2)), ["a"], np.ones((4, 2)), list("abcd")), "one group per sample"),
    (lambda: br.fit_logistic(np.ones((3, 2)), np.array([0, 1, 2])), "in \\{0, 1\\}"),
    (lambda: br.clip_features(np.zeros(br.SAMPLE_RATE), br.SAMPLE_RATE), "RMS"),
])
def test_errors_name_the_bad_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()
