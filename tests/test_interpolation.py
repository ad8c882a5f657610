"""riffusion.interpolation.slerp: the one spherical interpolation."""

import numpy as np
import pytest
import torch

from riffusion.interpolation import slerp


def test_slerp_keeps_the_norm_of_gaussian_noise_and_hits_the_ends():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, 4, 16, 16, generator=g)
    torch.testing.assert_close(slerp(0.0, a, b), a)
    torch.testing.assert_close(slerp(1.0, a, b), b, rtol=1e-5, atol=1e-5)
    mid = slerp(0.5, a, b)
    assert mid.dtype == a.dtype and mid.shape == a.shape
    assert abs(float(mid.norm()) - float(a.norm())) / float(a.norm()) < 0.05


def test_slerp_threshold_is_keyword_only_and_switches_to_linear():
    a = np.array([1.0, 0.0])
    b = np.array([0.0, 1.0])
    np.testing.assert_allclose(slerp(0.5, a, b, dot_threshold=-1.0), [0.5, 0.5])  # linear everywhere
    np.testing.assert_allclose(slerp(0.5, a, b), [np.sqrt(0.5), np.sqrt(0.5)])
    with pytest.raises(TypeError):
        slerp(0.5, a, b, 0.9)  # type: ignore[misc]


def test_slerp_refuses_unequal_shapes():
    with pytest.raises(ValueError, match="equal shapes"):
        slerp(0.5, np.zeros(3), np.zeros(4))
