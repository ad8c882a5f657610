"""riffusion.defaults: one home for generation defaults and their ranges."""

import dataclasses

import numpy as np
import pytest

from riffusion.datatypes import InferenceInput, PromptInput
from riffusion.defaults import GENERATION, GenerationDefaults, check_generation


def test_defaults_are_frozen_and_read_by_the_request_types():
    with pytest.raises(dataclasses.FrozenInstanceError):
        GENERATION.num_inference_steps = 3  # type: ignore[misc]
    start = PromptInput(prompt="jazz", seed=1)
    assert (start.denoising, start.guidance) == (GENERATION.denoising, GENERATION.guidance)
    inputs = InferenceInput(start=start, end=start, alpha=0.0)
    assert inputs.num_inference_steps == GENERATION.request_num_inference_steps
    assert inputs.seed_image_id == GENERATION.seed_image_id
    assert GenerationDefaults() == GENERATION


def test_check_generation_accepts_values_in_range():
    check_generation(num_inference_steps=1, denoising=0.0, guidance=7.0, alpha=1.0)
    check_generation(num_inference_steps=np.int64(GENERATION.max_inference_steps), denoising=1.0, alpha=0.0)
    check_generation()  # nothing given, nothing checked


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(num_inference_steps=0), "num_inference_steps must be at least 1, got 0"),
        (dict(num_inference_steps=GENERATION.max_inference_steps + 1), "must be at most"),
        (dict(num_inference_steps=2.5), "must be a whole number"),
        (dict(num_inference_steps=True), "must be a whole number"),
        (dict(denoising=1.2), r"denoising must be in \[0, 1\], got 1.2"),
        (dict(alpha=-0.1), r"alpha must be in \[0, 1\]"),
        (dict(guidance=float("nan")), "guidance must be a finite number"),
    ],
)
def test_check_generation_names_the_value_and_the_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_generation(**kwargs)


def test_check_generation_uses_the_callers_labels():
    with pytest.raises(ValueError, match="--num-inference-steps must be at least 1"):
        check_generation(num_inference_steps=0, labels={"num_inference_steps": "--num-inference-steps"})
