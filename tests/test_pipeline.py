"""RiffusionPipeline on tiny-random: interpolation semantics, determinism, masks, prompts, schedulers."""

import numpy as np
import pytest
import torch
from PIL import Image

from riffusion.datatypes import InferenceInput, PromptInput
from riffusion.loading import load_pipeline
from riffusion.riffusion_pipeline import RiffusionPipeline
from riffusion.schedulers import DEFAULT_SCHEDULER, scheduler_names
from riffusion.seed_images import load_seed_image

STEPS = 8


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline("tiny-random", device="cpu")


@pytest.fixture(scope="module")
def seed():
    return load_seed_image("og_beat")


def request(start="jazzy rapping", end="church bells", *, seed_a=1, seed_b=2, alpha=0.5, steps=STEPS, **kw):
    denoising = kw.pop("denoising", 0.75)
    guidance = kw.pop("guidance", 7.0)
    negative = kw.pop("negative_prompt", None)
    return InferenceInput(
        start=PromptInput(start, seed=seed_a, denoising=denoising, guidance=guidance, negative_prompt=negative),
        end=PromptInput(end, seed=seed_b, denoising=denoising, guidance=guidance, negative_prompt=negative),
        alpha=alpha, num_inference_steps=steps, **kw,
    )


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_output_is_a_512_rgb_image_with_spectrogram_exif(pipe, seed):
    image = pipe.riffuse(request(), seed)
    assert image.size == (512, 512) and image.mode == "RGB"
    from riffusion.image import params_from_image

    assert params_from_image(image, warn=False) == pipe.spectrogram_params


def test_same_request_same_image(pipe, seed):
    torch.manual_seed(123)  # global RNG state must not matter
    a = pixels(pipe.riffuse(request(), seed))
    torch.manual_seed(456)
    b = pixels(pipe.riffuse(request(), seed))
    assert np.array_equal(a, b)


def test_seed_changes_the_image(pipe, seed):
    a = pixels(pipe.riffuse(request(seed_a=1, seed_b=1, alpha=0.0), seed))
    b = pixels(pipe.riffuse(request(seed_a=7, seed_b=7, alpha=0.0), seed))
    assert np.abs(a - b).mean() > 1.0


@pytest.mark.parametrize("scheduler", [DEFAULT_SCHEDULER, "pndm", "euler-a"])
def test_alpha_0_and_1_equal_the_plain_endpoints(pipe, seed, scheduler):
    pipe.set_scheduler(scheduler)
    try:
        mixed0 = pixels(pipe.riffuse(request("aa", "bb", seed_a=3, seed_b=4, alpha=0.0), seed))
        plain0 = pixels(pipe.riffuse(request("aa", "aa", seed_a=3, seed_b=3, alpha=0.0), seed))
        mixed1 = pixels(pipe.riffuse(request("aa", "bb", seed_a=3, seed_b=4, alpha=1.0), seed))
        plain1 = pixels(pipe.riffuse(request("bb", "bb", seed_a=4, seed_b=4, alpha=1.0), seed))
    finally:
        pipe.set_scheduler(DEFAULT_SCHEDULER)
    assert np.array_equal(mixed0, plain0)
    assert np.array_equal(mixed1, plain1)
    assert not np.array_equal(mixed0, mixed1)


def test_alpha_moves_smoothly_between_the_ends(pipe, seed):
    images = [pixels(pipe.riffuse(request(alpha=a), seed)).astype(float) for a in (0.0, 0.5, 1.0)]
    ends = np.abs(images[0] - images[2]).mean()
    assert np.abs(images[1] - images[0]).mean() < ends
    assert np.abs(images[1] - images[2]).mean() < ends


def test_denoising_zero_returns_the_seed_image_through_the_vae(pipe, seed):
    a = pixels(pipe.riffuse(request(denoising=0.0, seed_a=1), seed))
    b = pixels(pipe.riffuse(request(denoising=0.0, seed_a=99, seed_b=98, start="x", end="y"), seed))
    assert np.array_equal(a, b)  # nothing generated: prompts and seeds do not matter


def test_negative_prompt_is_honoured(pipe, seed):
    plain = pixels(pipe.riffuse(request(), seed))
    negative = pixels(pipe.riffuse(request(negative_prompt="drums, noise"), seed))
    assert np.abs(plain - negative).mean() > 0.1


def test_guidance_changes_the_image(pipe, seed):
    low = pixels(pipe.riffuse(request(guidance=1.0), seed))
    high = pixels(pipe.riffuse(request(guidance=9.0), seed))
    assert np.abs(low - high).mean() > 0.1


def test_mask_keeps_the_black_region_in_latent_space(pipe, seed):
    mask = Image.new("L", (512, 512), 255)
    mask.paste(0, (0, 0, 256, 512))  # left half black: keep the seed image there
    inputs = request(alpha=0.3)
    [masked] = pipe.riffuse_batch([(inputs, seed, mask)], output_type="latent")
    [unmasked] = pipe.riffuse_batch([(inputs, seed, None)], output_type="latent")
    kept = pipe._seed_latents(seed)[0]
    assert torch.equal(masked[:, :, :32], kept[:, :, :32])
    assert not torch.allclose(unmasked[:, :, :32], kept[:, :, :32])
    assert not torch.allclose(masked[:, :, 32:], kept[:, :, 32:])


def test_mask_keeps_the_black_region_in_pixels(pipe, seed):
    mask = Image.new("L", (512, 512), 255)
    mask.paste(0, (0, 0, 256, 512))
    unchanged = pixels(pipe.riffuse(request(denoising=0.0), seed)).astype(float)
    masked = pixels(pipe.riffuse(request(), seed, mask)).astype(float)
    left = np.abs(masked - unchanged)[:, :200].mean()
    right = np.abs(masked - unchanged)[:, 312:].mean()
    assert left < 0.5 * right


def test_long_prompt_is_chunked_not_truncated(pipe, seed):
    words = "slow jazz piano with brushed drums and a walking upright bass " * 12
    embedding = pipe.encode_prompt(words)
    assert embedding.shape[1] % 77 == 0 and embedding.shape[1] >= 77 * 3
    long = pixels(pipe.riffuse(request(words, words, alpha=0.0), seed))
    extra = pixels(pipe.riffuse(request(words + " heavy metal guitar", words + " heavy metal guitar", alpha=0.0), seed))
    assert long.shape == (512, 512, 3)
    assert np.abs(long - extra).mean() > 0  # words past the first 75 tokens still count


def test_weighted_prompt_differs_from_plain(pipe, seed):
    plain = pixels(pipe.riffuse(request("jazz piano", "jazz piano", alpha=0.0), seed))
    weighted = pixels(pipe.riffuse(request("jazz (piano:1.6)", "jazz (piano:1.6)", alpha=0.0), seed))
    literal = pixels(pipe.riffuse(request("jazz (piano:1.6)", "jazz (piano:1.6)", alpha=0.0), seed, use_reweighting=False))
    assert np.abs(plain - weighted).mean() > 0
    assert np.abs(literal - weighted).mean() > 0  # without reweighting the brackets are plain text


def test_batch_matches_single_requests(pipe, seed):
    a, b = request(alpha=0.2), request("techno", "house", seed_a=5, seed_b=6, alpha=0.7, guidance=3.0)
    c = request(denoising=0.5)  # another strength: its own group
    batched = pipe.riffuse_batch([(a, seed, None), (b, seed, None), (c, seed, None)])
    for inputs, image in zip((a, b, c), batched):
        single = pixels(pipe.riffuse(inputs, seed))
        assert np.abs(pixels(image) - single).max() <= 2


def test_text_to_image_without_a_seed_image(pipe):
    image = pipe.riffuse(request(denoising=1.0))
    assert image.size == pipe.image_size


def test_pipeline_satisfies_the_protocol_and_reads_the_defaults(pipe):
    from riffusion.defaults import GENERATION
    from riffusion.protocols import SpectrogramPipeline

    assert isinstance(pipe, SpectrogramPipeline)
    assert pipe.default_num_inference_steps == GENERATION.num_inference_steps
    assert pipe.default_guidance == GENERATION.guidance
    assert pipe.width_multiple == pipe.vae_scale_factor == 8


def test_text_to_image_is_a_same_prompt_request(pipe):
    image = pipe.text_to_image("jazzy rapping", seed=1, num_inference_steps=4)
    p = PromptInput(prompt="jazzy rapping", seed=1, denoising=1.0)
    same = pipe.riffuse(InferenceInput(start=p, end=p, alpha=0.0, num_inference_steps=4))
    assert image.size == pipe.image_size
    np.testing.assert_array_equal(pixels(image), pixels(same))
    with pytest.raises(ValueError, match="num_inference_steps must be at least 1"):
        pipe.riffuse(InferenceInput(start=p, end=p, alpha=0.0, num_inference_steps=0))


def test_wider_seed_image_makes_a_wider_image(pipe):
    wide = load_seed_image("og_beat", width=768)
    assert pipe.riffuse(request(steps=4), wide).size == (768, 512)


@pytest.mark.parametrize("name", scheduler_names())
def test_every_named_scheduler_runs(pipe, seed, name):
    pipe.set_scheduler(name)
    try:
        image = pipe.riffuse(request(steps=4), seed)
    finally:
        pipe.set_scheduler(DEFAULT_SCHEDULER)
    assert image.size == (512, 512)
    assert pixels(image).std() > 0


def test_unet_evaluations_match_the_original_with_pndm(pipe):
    pipe.set_scheduler("pndm")
    try:
        assert pipe.unet_evaluations(50, 0.75) == 38  # the original's count
    finally:
        pipe.set_scheduler(DEFAULT_SCHEDULER)
    assert pipe.unet_evaluations(pipe.default_num_inference_steps, 0.75) == 18


def test_unknown_scheduler_is_a_clear_error(pipe):
    with pytest.raises(ValueError, match="unknown scheduler 'warp-drive'.*unipc"):
        pipe.set_scheduler("warp-drive")


def test_seed_image_size_must_be_a_multiple_of_8(pipe):
    with pytest.raises(ValueError, match="500x512 is not a multiple of 8"):
        pipe.riffuse(request(), Image.new("RGB", (500, 512)))


@pytest.mark.parametrize(
    "inputs, message",
    [
        (request(alpha=1.5), "alpha must be in"),
        (request(denoising=1.2), "denoising must be in"),
        (request(steps=0), "num_inference_steps must be at least 1"),
    ],
)
def test_bad_requests_are_clear_errors(pipe, seed, inputs, message):
    with pytest.raises(ValueError, match=message):
        pipe.riffuse(inputs, seed)


def test_mask_without_seed_image_is_an_error(pipe):
    with pytest.raises(ValueError, match="mask needs a seed image"):
        pipe.riffuse(request(), None, Image.new("L", (512, 512)))


def test_load_checkpoint_compat_falls_back_to_cpu_float32():
    with pytest.warns(UserWarning, match="not available"):
        pipe = RiffusionPipeline.load_checkpoint("tiny-random", device="cuda" if not torch.cuda.is_available() else "mps")
    assert pipe.dtype == torch.float32 and pipe.device.type == "cpu"


def test_original_embedding_methods(pipe):
    assert torch.equal(pipe.embed_text("jazz"), pipe.encode_prompt("jazz", use_weights=False))
    assert not torch.equal(pipe.embed_text_weighted("(jazz:1.5) x"), pipe.embed_text("(jazz:1.5) x"))


@pytest.mark.parametrize("denoising, fewest", [(1.0, 1), (0.75, 2), (0.5, 2), (0.3, 4), (0.1, 10), (0.0, 1)])
def test_min_num_inference_steps_is_the_fewest_that_run_the_unet(pipe, denoising, fewest):
    assert pipe.min_num_inference_steps(denoising) == fewest
    if denoising > 0:
        assert pipe.unet_evaluations(fewest, denoising) >= 1
        assert fewest == 1 or pipe.unet_evaluations(fewest - 1, denoising) == 0


def test_min_num_inference_steps_refuses_a_denoising_outside_0_1(pipe):
    with pytest.raises(ValueError, match="denoising must be in"):
        pipe.min_num_inference_steps(1.5)


def test_a_step_count_that_runs_no_unet_evaluation_is_refused(pipe, seed):
    # int(1 * 0.75) = 0 evaluations: the clip would be the seed image through the VAE, whatever the prompt.
    with pytest.raises(ValueError, match=r"num_inference_steps=1 at denoising 0.75 .*no UNet.*at least 2 steps"):
        pipe.riffuse(request(steps=1), seed)
    with pytest.raises(ValueError, match="at least 4 steps"):
        pipe.riffuse_batch([(request(steps=8), seed, None), (request(steps=3, denoising=0.3), seed, None)])
    # From noise (no seed image) every step denoises.
    assert pipe.riffuse(request(steps=1, denoising=0.75)).size == pipe.image_size


# --- prompt mixes -----------------------------------------------------------------------------------------


def mixed(mix, *, seed_a=1, seed_b=2, alpha=0.0, steps=STEPS):
    return InferenceInput(start=PromptInput.mixed(mix, seed_a), end=PromptInput.mixed(mix, seed_b),
                          alpha=alpha, num_inference_steps=steps)


@pytest.mark.parametrize("weight", [1.0, 0.3])
def test_a_mix_of_one_prompt_is_bit_for_bit_the_prompt(pipe, seed, weight):
    plain = pixels(pipe.riffuse(request("jazzy rapping", "jazzy rapping", alpha=0.0), seed))
    one = pixels(pipe.riffuse(mixed([("jazzy rapping", weight)]), seed))
    assert np.array_equal(plain, one)


def test_a_mix_is_the_weighted_average_of_the_embeddings(pipe):
    a, b = pipe.encode_prompt("jazz"), pipe.encode_prompt("rain on a roof")
    blended = pipe.encode_prompt_mix([("jazz", 3.0), ("rain on a roof", 1.0)])
    torch.testing.assert_close(blended, 0.75 * a + 0.25 * b)
    assert pipe.encode_prompt_mix([("jazz", 6.0), ("rain on a roof", 2.0)]) is blended  # cached by the mix
    long = "piano " * 100  # two chunks: the shorter prompt is padded with empty chunks
    assert pipe.encode_prompt_mix([("jazz", 1.0), (long, 1.0)]).shape == pipe.encode_prompt(long).shape


def test_a_mix_changes_the_image(pipe, seed):
    plain = pixels(pipe.riffuse(mixed([("jazzy rapping", 1.0)]), seed))
    blend = pixels(pipe.riffuse(mixed([("jazzy rapping", 1.0), ("church bells", 1.0)]), seed))
    assert np.abs(plain - blend).mean() > 0.1


def test_an_empty_prompt_is_the_unconditional_one(pipe):
    torch.testing.assert_close(pipe.encode_prompt_mix((("", 1.0),)), pipe.encode_prompt(""))
    image = pipe.riffuse(request("", "jazzy rapping", alpha=0.0))
    assert image.size[0] > 0


def test_a_bad_mix_is_a_clear_error(pipe):
    with pytest.raises(ValueError, match=r"mix\[1\] weight must be a finite number >= 0"):
        pipe.encode_prompt_mix([("jazz", 1.0), ("rain", -1.0)])
