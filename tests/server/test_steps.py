"""Step counts the server accepts and recommends: never one that runs no UNet evaluation; the warm-up
measures a few short clips and says when the machine cannot keep up with playback."""

import time

import httpx
import pytest

from riffusion.server.settings import ServerSettings
from riffusion.server.state import ServerState, check_web_steps

from .conftest import clip_body


@pytest.mark.parametrize("path", ["/run_inference/", "/api/v1/generate"])
def test_a_request_whose_steps_do_not_denoise_is_a_422_naming_the_steps(in_process_server, path):
    with in_process_server() as server:
        response = httpx.post(f"{server.url}{path}", json=clip_body(steps=1), timeout=60)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "num_inference_steps"]
    assert "1 steps at denoising 0.75 run no UNet evaluation" in error["msg"] and "at least 2" in error["msg"]


def test_the_fewest_steps_that_denoise_are_accepted(in_process_server):
    with in_process_server() as server:
        body = clip_body(steps=1)
        body["start"]["denoising"] = body["end"]["denoising"] = 1.0
        assert httpx.post(f"{server.url}/api/v1/generate", json=body, timeout=60).status_code == 200


def test_a_step_setting_that_does_not_denoise_is_refused(tiny_pipeline):
    assert check_web_steps(ServerSettings(num_inference_steps=2), tiny_pipeline) == 2
    with pytest.raises(ValueError, match="num_inference_steps=1 runs no UNet evaluation.*at least 2"):
        check_web_steps(ServerSettings(num_inference_steps=1), tiny_pipeline)
    with pytest.raises(ValueError, match="num_inference_steps=1"):
        ServerState(ServerSettings(num_inference_steps=1), tiny_pipeline)


@pytest.mark.parametrize("entry", [["-m", "riffusion", "serve", "--model"], ["-m", "riffusion.server", "--checkpoint"]])
def test_both_entry_points_refuse_such_a_setting_in_one_line(entry):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, *entry, "tiny-random", "--num-inference-steps", "1", "--port", "0"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("use at least 2")
    assert "Traceback" not in result.stderr


def test_warm_up_recommends_steps_that_denoise_and_keep_up(tiny_pipeline):
    state = ServerState(ServerSettings(), tiny_pipeline)
    try:
        state.warm_up()
    finally:
        state.stop()
    assert state.min_steps <= state.web_steps <= state.default_steps
    assert state.keeps_up is True and 0 < state.seconds_per_clip < 5.11


def test_a_machine_that_cannot_keep_up_is_said_so(in_process_server, tiny_pipeline, caplog):
    # A UNet evaluation of 4 s: even the fewest steps that denoise (2 at 0.75: one evaluation) take longer than
    # the 3.6 s a 5.1 s clip may take.
    hook = tiny_pipeline.unet.register_forward_pre_hook(lambda module, args: time.sleep(4.0))
    try:
        with caplog.at_level("WARNING", logger="riffusion.server"), in_process_server(
                warmup=True, num_inference_steps=None) as server:
            defaults = httpx.get(f"{server.url}/api/v1/defaults").json()
    finally:
        hook.remove()
    assert defaults["keeps_up"] is False and defaults["num_inference_steps"] == 2
    assert defaults["seconds_per_clip"] > 0.7 * defaults["duration_s"]
    # the estimate counts UNet evaluations (one here), not steps (two, which would say 8 s)
    assert tiny_pipeline.unet_evaluations(2, 0.75) == 1
    assert 4.0 <= defaults["seconds_per_clip"] < 7.0
    assert "cannot keep up" in caplog.text


def test_defaults_say_nothing_about_keeping_up_without_a_warm_up(in_process_server):
    with in_process_server() as server:
        defaults = httpx.get(f"{server.url}/api/v1/defaults").json()
    assert defaults["keeps_up"] is None and defaults["seconds_per_clip"] is None
