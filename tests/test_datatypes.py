"""The request values: a prompt end with a weighted mix of prompts, validated once on construction."""

import dataclasses
import math

import pytest

from riffusion.datatypes import InferenceInput, PromptInput


def test_a_plain_prompt_is_heard_alone():
    end = PromptInput("jazz", seed=1)
    assert end.mix is None and end.weighted_prompts == (("jazz", 1.0),)


def test_a_mix_is_stored_as_given_and_heard_normalised():
    end = PromptInput.mixed([("jazz", 1), ("rain", 0.25), ("wind", 0)], seed=3, guidance=5.0)
    assert end.prompt == "jazz" and end.guidance == 5.0
    assert end.mix == (("jazz", 1.0), ("rain", 0.25), ("wind", 0.0))
    assert end.weighted_prompts == (("jazz", 0.8), ("rain", 0.2))
    assert math.fsum(w for _, w in end.weighted_prompts) == 1.0


def test_ends_with_a_mix_are_hashable_and_keyed_by_it():
    a = PromptInput.mixed([("jazz", 1.0), ("rain", 0.4)], seed=1)
    b = PromptInput.mixed([["jazz", 1.0], ["rain", 0.4]], seed=1)  # lists become tuples
    c = PromptInput.mixed([("jazz", 1.0), ("rain", 0.5)], seed=1)
    assert a == b and hash(a) == hash(b) and a != c
    assert len({InferenceInput(a, a, 0.0), InferenceInput(b, b, 0.0), InferenceInput(c, c, 0.0)}) == 2
    assert a != PromptInput("jazz", seed=1)


@pytest.mark.parametrize("mix, message", [
    ([], r"mix must have 1 to 4 prompts, got 0"),
    ([("a", 1.0)] * 5, r"mix must have 1 to 4 prompts, got 5"),
    ("jazz", r"mix must be a sequence of \(prompt, weight\) pairs, got str"),
    ([("jazz",)], r"mix\[0\] must be a \(prompt, weight\) pair"),
    ([("jazz", 1.0), ("  ", 1.0)], r"mix\[1\] prompt must be a non-empty string"),
    ([("jazz", -0.1)], r"mix\[0\] weight must be a finite number >= 0, got -0.1"),
    ([("jazz", float("inf"))], r"mix\[0\] weight must be a finite number >= 0, got inf"),
    ([("jazz", "1")], r"mix\[0\] weight must be a finite number >= 0, got '1'"),
    ([("jazz", 0.0), ("rain", 0)], r"mix weights must have a positive sum"),
])
def test_a_bad_mix_is_refused_on_construction(mix, message):
    with pytest.raises(ValueError, match=message):
        PromptInput("jazz", seed=1, mix=mix)
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(PromptInput("jazz", seed=1), mix=mix)
