"""A1111 prompt weighting and chunking of long prompts."""

import pytest
import torch

from riffusion.loading import tiny_random_components
from riffusion.prompts import (
    CHUNK_TOKENS,
    encode_prompt,
    pad_embeddings,
    parse_prompt_weights,
    strip_prompt_weights,
    tokenize_prompt,
)


@pytest.fixture(scope="module")
def text():
    parts = tiny_random_components()
    return parts["text_encoder"], parts["tokenizer"]


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("plain words", [("plain words", 1.0)]),
        ("a (house) b", [("a ", 1.0), ("house", 1.1), (" b", 1.0)]),
        ("((x))", [("x", pytest.approx(1.21))]),
        ("[x]", [("x", pytest.approx(1 / 1.1))]),
        ("(x:1.5) y", [("x", 1.5), (" y", 1.0)]),
        ("(x:0.25)", [("x", 0.25)]),
        ("((x):2)", [("x", pytest.approx(2.2))]),
        (r"\(literal\) \[too\]", [("(literal) [too]", 1.0)]),
        ("(unclosed", [("unclosed", pytest.approx(1.1))]),
        ("ratio 1:2", [("ratio 1:2", 1.0)]),
        ("a BREAK b", [("a ", 1.0), ("BREAK", -1.0), (" b", 1.0)]),
        ("", [("", 1.0)]),
    ],
)
def test_parse_prompt_weights(prompt, expected):
    assert parse_prompt_weights(prompt) == expected


def test_parse_rejects_non_strings():
    with pytest.raises(TypeError, match="prompt must be a string"):
        parse_prompt_weights(None)


def test_strip_prompt_weights():
    assert strip_prompt_weights(r"jazz (piano:1.3) [drums] \(live\)") == "jazz piano drums (live)"


def test_long_prompts_are_cut_into_chunks_of_75(text):
    _, tokenizer = text
    prompt = "music " * 200
    chunks = tokenize_prompt(tokenizer, prompt)
    total = len(tokenizer(prompt, add_special_tokens=False).input_ids)
    assert len(chunks) == -(-total // CHUNK_TOKENS)
    assert all(len(ids) == len(weights) <= CHUNK_TOKENS for ids, weights in chunks)
    assert sum(len(ids) for ids, _ in chunks) == total


def test_break_starts_a_new_chunk(text):
    _, tokenizer = text
    chunks = tokenize_prompt(tokenizer, "jazz BREAK rock")
    assert len(chunks) == 2


def test_encode_prompt_shape_and_padding(text):
    encoder, tokenizer = text
    short = encode_prompt(encoder, tokenizer, "jazz")
    long = encode_prompt(encoder, tokenizer, "jazz " * 100)
    assert short.shape == (1, 77, encoder.config.hidden_size)
    tokens = len(tokenizer("jazz " * 100, add_special_tokens=False).input_ids)
    assert long.shape[1] == 77 * -(-tokens // CHUNK_TOKENS) and long.shape[1] > 77
    padded = encode_prompt(encoder, tokenizer, "jazz", min_chunks=3)
    assert padded.shape[1] == 77 * 3
    assert torch.equal(padded[:, :77], short)
    empty = encode_prompt(encoder, tokenizer, "", use_weights=False)
    a, b = pad_embeddings([short, long], empty)
    assert a.shape == b.shape == long.shape


def test_weights_change_the_embedding_but_keep_its_mean(text):
    encoder, tokenizer = text
    plain = encode_prompt(encoder, tokenizer, "jazz piano")
    unit = encode_prompt(encoder, tokenizer, "jazz (piano:1.0)")
    weighted = encode_prompt(encoder, tokenizer, "jazz (piano:1.5)")
    assert torch.allclose(plain, unit, atol=1e-5)
    assert not torch.allclose(plain, weighted, atol=1e-4)
    assert torch.allclose(plain.mean(), weighted.mean(), atol=1e-5)


def test_weights_can_be_ignored(text):
    encoder, tokenizer = text
    literal = encode_prompt(encoder, tokenizer, "(piano:1.5)", use_weights=False)
    weighted = encode_prompt(encoder, tokenizer, "(piano:1.5)")
    assert not torch.allclose(literal, weighted)


def test_strip_prompt_weights_drops_break_and_keeps_every_weighted_word():
    assert strip_prompt_weights("jazz BREAK drums") == "jazz  drums"
    assert strip_prompt_weights("(quiet:-1) piano ((loud))") == "quiet piano loud"


# --- prompt mixes -----------------------------------------------------------------------------------------


def test_check_prompt_mix_returns_tuples_of_floats():
    from riffusion.prompts import check_prompt_mix

    assert check_prompt_mix([["jazz", 1], ("rain", 0.4)]) == (("jazz", 1.0), ("rain", 0.4))


def test_check_prompt_mix_names_the_field():
    from riffusion.prompts import check_prompt_mix

    with pytest.raises(ValueError, match=r"prompts\[0\] weight must be a finite number >= 0, got nan"):
        check_prompt_mix([("jazz", float("nan"))], field="prompts")


def test_normalise_prompt_mix_drops_silent_prompts_and_sums_to_one():
    from riffusion.prompts import normalise_prompt_mix

    assert normalise_prompt_mix([("jazz", 3), ("rain", 1), ("wind", 0)]) == (("jazz", 0.75), ("rain", 0.25))
    assert normalise_prompt_mix([("jazz", 0.3)]) == (("jazz", 1.0),)
    assert normalise_prompt_mix([("", 1.0)]) == (("", 1.0),)  # a plain empty prompt: the unconditional one


def test_plain_prompt_is_one_prompt_at_weight_one_the_empty_one_included():
    from riffusion.prompts import plain_prompt

    assert plain_prompt((("", 1.0),)) == ""
    assert plain_prompt([["jazz", 1]]) == "jazz"


@pytest.mark.parametrize("mix", [[("jazz", 0.5)], [("jazz", 1.0), ("rain", 1.0)], [("jazz", True)], "jazz", [],
                                 [("jazz",)], None])
def test_plain_prompt_is_none_for_anything_else(mix):
    from riffusion.prompts import plain_prompt

    assert plain_prompt(mix) is None


def test_blend_embeddings_is_the_weighted_sum_and_one_is_itself():
    import torch

    from riffusion.prompts import blend_embeddings

    a, b = torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    torch.testing.assert_close(blend_embeddings([a, b], [0.25, 0.75]), 0.25 * a + 0.75 * b)
    assert blend_embeddings([a], [1.0]) is a


def test_blend_embeddings_refuses_mismatched_inputs():
    import torch

    from riffusion.prompts import blend_embeddings

    with pytest.raises(ValueError, match="one weight per embedding"):
        blend_embeddings([torch.zeros(1, 2, 3)], [0.5, 0.5])
    with pytest.raises(ValueError, match="one shape"):
        blend_embeddings([torch.zeros(1, 2, 3), torch.zeros(1, 4, 3)], [0.5, 0.5])
