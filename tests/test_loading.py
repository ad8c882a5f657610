"""Model loading: tiny-random, folders, single files, hub ids offline, registry, precision."""

import json

import numpy as np
import pytest
import torch

from riffusion import loading
from riffusion.datatypes import InferenceInput, PromptInput
from riffusion.loading import ModelNotFoundError, load_pipeline, pick_dtype
from riffusion.riffusion_pipeline import RiffusionPipeline
from riffusion.seed_images import load_seed_image


@pytest.fixture(scope="module")
def tiny():
    return load_pipeline("tiny-random", device="cpu")


def clip_pixels(pipe):
    p = PromptInput("jazz (piano:1.2)", seed=5, negative_prompt="noise")
    q = PromptInput("church bells", seed=6)
    inputs = InferenceInput(start=p, end=q, alpha=0.4, num_inference_steps=6)
    return np.asarray(pipe.riffuse(inputs, load_seed_image("og_beat")))


def test_tiny_random_is_sd_shaped(tiny):
    assert isinstance(tiny, RiffusionPipeline)
    assert tiny.model_id == "tiny-random"
    assert tiny.image_size == (512, 512)
    assert tiny.vae_scale_factor == 8
    assert tiny.unet.config.in_channels == 4
    assert tiny.text_encoder.config.max_position_embeddings == 77
    assert tiny.dtype == torch.float32 and tiny.device.type == "cpu"
    assert tiny.spectrogram_params == loading.spectrogram_params_of(None)


def test_attention_runs_through_sdpa(tiny):
    assert {type(p).__name__ for p in tiny.unet.attn_processors.values()} == {"AttnProcessor2_0"}
    assert tiny.text_encoder.config._attn_implementation == "sdpa"


def test_tiny_random_is_the_same_every_time_and_leaves_global_rng_alone(tiny):
    state = torch.random.get_rng_state()
    again = loading.build_tiny_random()
    assert torch.equal(state, torch.random.get_rng_state())
    for name in ("unet", "vae", "text_encoder"):
        a, b = getattr(tiny, name).state_dict(), getattr(again, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_save_and_load_folder_round_trip(tiny, tmp_path):
    folder = tiny.save_pretrained(tmp_path / "model")
    assert (folder / "model_index.json").is_file() and (folder / "spectrogram_params.json").is_file()
    assert list((folder / "unet").glob("*.safetensors"))
    loaded = load_pipeline(str(folder), device="cpu")
    assert loaded.model_id == str(folder)
    assert np.array_equal(clip_pixels(tiny), clip_pixels(loaded))


def test_saved_folder_is_a_plain_diffusers_pipeline(tiny, tmp_path):
    from diffusers import StableDiffusionPipeline

    folder = tiny.save_pretrained(tmp_path / "model")
    sd = StableDiffusionPipeline.from_pretrained(str(folder), safety_checker=None, local_files_only=True)
    assert sd.unet.config.cross_attention_dim == 32


def test_save_refuses_to_overwrite(tiny, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        tiny.save_pretrained(tmp_path / "model")


def test_single_file_round_trip(tiny, tmp_path):
    path = tiny.save_single_file(tmp_path / "tiny.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.safetensors"]  # no temporary left behind
    loaded = load_pipeline(str(path), device="cpu")
    assert np.array_equal(clip_pixels(tiny), clip_pixels(loaded))


def test_single_file_must_be_safetensors(tiny, tmp_path):
    with pytest.raises(ValueError, match="safetensors"):
        tiny.save_single_file(tmp_path / "tiny.ckpt")


def test_missing_hub_model_offline_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"riffusion download riffusion/riffusion-model-v1"):
        load_pipeline("riffusion/riffusion-model-v1", device="cpu", cache_dir=str(tmp_path))
    assert issubclass(ModelNotFoundError, LookupError)


@pytest.mark.parametrize("model, message", [
    ("./no/such/folder", "does not exist"),
    ("missing.safetensors", "does not exist"),
    ("no-such-model", "unknown model 'no-such-model'.*tiny-random"),
])
def test_unknown_models_are_clear_errors(model, message):
    with pytest.raises(ModelNotFoundError, match=message):
        load_pipeline(model, device="cpu")


def test_folder_without_model_is_an_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not a model folder"):
        load_pipeline(str(tmp_path), device="cpu")


def test_registered_model_kind_is_used_for_its_folders(tmp_path):
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "custom_model.json").write_text(json.dumps({"kind": "custom"}))
    calls = []

    class Custom:
        model_id = "set by the loader"

    def load(path, **options):
        calls.append((path, options))
        return Custom()

    loading.register_model_kind("test-custom", detect=lambda p: (p / "custom_model.json").is_file(), load=load)
    try:
        assert "test-custom" in loading.model_kinds()
        pipeline = load_pipeline(str(folder), device="cpu")
        assert isinstance(pipeline, Custom) and pipeline.model_id == str(folder)
        assert calls[0][0] == str(folder) and calls[0][1]["device"] == "cpu"
    finally:
        loading._KINDS.pop("test-custom", None)


def test_the_small_model_kind_is_registered():
    pytest.importorskip("riffusion.small")
    assert "riffusion-small" in loading.model_kinds()


def test_default_model_is_shipped_or_the_hub_model(monkeypatch):
    assert loading.default_model() in [*loading.shipped_models(), loading.HUB_MODEL]
    monkeypatch.setenv("RIFFUSION_MODEL", "tiny-random")
    assert loading.default_model() == "tiny-random"


def test_dtype_choice():
    assert pick_dtype("cuda") == torch.float16
    assert pick_dtype("cuda:1") == torch.float16
    assert pick_dtype("cpu") == torch.float32
    assert pick_dtype("mps") == torch.float32
    assert pick_dtype("cpu", "bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        pick_dtype("cpu", "float8")


def test_scheduler_option_and_error():
    pipe = load_pipeline("tiny-random", device="cpu", scheduler="euler-a")
    assert pipe.scheduler_name == "euler-a"
    with pytest.raises(ValueError, match="unknown scheduler"):
        load_pipeline("tiny-random", device="cpu", scheduler="nope")


def test_bad_device_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        load_pipeline("tiny-random", device="tpu")
