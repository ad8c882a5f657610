"""riffusion.devices: known device kinds and fallback to a usable one."""

import pytest
import torch

from riffusion import devices
from riffusion.util import torch_util


def test_compat_module_reexports_the_engine_functions():
    assert torch_util.check_device is devices.check_device
    assert torch_util.validate_device is devices.validate_device


def test_check_device_picks_a_usable_device():
    assert devices.check_device("cpu") == "cpu"
    assert devices.check_device("auto") in devices.DEVICE_KINDS


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_device_falls_back_with_a_warning():
    with pytest.warns(UserWarning, match="not available"):
        assert devices.check_device("cuda:0", backup="cpu") == "cpu"


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device 'tpu'; expected"):
        devices.check_device("tpu")
    with pytest.raises(ValueError, match="unknown device"):
        devices.validate_device("gpu")
