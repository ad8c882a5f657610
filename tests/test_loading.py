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


def rewrite_single_file(path, change):
    """Apply ``change(tensors) -> tensors`` to a single-file model in place, keeping its metadata."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    save_file(change(tensors), str(path), metadata=metadata)


def older_text_encoder_layout(tensors):
    # Earlier transformers versions: every text encoder key under ``text_model.``, and the constant
    # position ids stored as a weight.
    renamed = {("text_encoder.text_model." + k[len("text_encoder."):] if k.startswith("text_encoder.") else k): v
               for k, v in tensors.items()}
    renamed["text_encoder.text_model.embeddings.position_ids"] = torch.arange(77)[None]
    return renamed


def test_single_file_in_the_older_text_encoder_key_layout_loads_every_weight(tiny, tmp_path):
    path = tiny.save_single_file(tmp_path / "older.safetensors")
    rewrite_single_file(path, older_text_encoder_layout)
    loaded = load_pipeline(str(path), device="cpu")
    for name, value in tiny.text_encoder.state_dict().items():
        assert torch.equal(loaded.text_encoder.state_dict()[name], value), name
    assert np.array_equal(clip_pixels(tiny), clip_pixels(loaded))


@pytest.mark.parametrize("component, removed", [("text_encoder", "final_layer_norm"), ("unet", "conv_out"),
                                                ("vae", "decoder.conv_out")])
def test_a_truncated_single_file_is_refused_naming_keys(tiny, tmp_path, component, removed):
    path = tiny.save_single_file(tmp_path / "truncated.safetensors")
    rewrite_single_file(path, lambda t: {k: v for k, v in t.items() if not k.startswith(f"{component}.{removed}")})
    with pytest.raises(loading.WeightsMismatchError, match=rf"truncated.safetensors.*{component} weights.*2 missing "
                                                           rf"\({removed}.bias, {removed}.weight\)"):
        load_pipeline(str(path), device="cpu")


def test_a_single_file_with_weights_of_another_model_is_refused(tiny, tmp_path):
    path = tiny.save_single_file(tmp_path / "extra.safetensors")
    rewrite_single_file(path, lambda t: {**t, "unet.lora.weight": torch.zeros(2)})
    with pytest.raises(loading.WeightsMismatchError, match=r"unet weights.*1 unexpected \(lora.weight\)"):
        load_pipeline(str(path), device="cpu")


def test_a_folder_in_the_2022_layout_loads_every_weight(tiny, tmp_path):
    from safetensors.torch import load_file

    folder = tiny.save_pretrained(tmp_path / "model")
    weights = folder / "text_encoder" / "model.safetensors"
    older = older_text_encoder_layout({"text_encoder." + k: v for k, v in load_file(str(weights)).items()})
    torch.save({k[len("text_encoder."):]: v for k, v in older.items()}, folder / "text_encoder" / "pytorch_model.bin")
    weights.unlink()
    assert np.array_equal(clip_pixels(tiny), clip_pixels(load_pipeline(str(folder), device="cpu")))


@pytest.mark.parametrize("component", ["unet", "vae", "text_encoder"])
def test_a_truncated_folder_is_refused_naming_keys(tiny, tmp_path, component):
    from safetensors.torch import load_file, save_file

    folder = tiny.save_pretrained(tmp_path / "model")
    [weights] = (folder / component).glob("*.safetensors")
    tensors = load_file(str(weights))
    dropped = sorted(tensors)[0]
    save_file({k: v for k, v in tensors.items() if k != dropped}, str(weights), metadata={"format": "pt"})
    with pytest.raises(loading.WeightsMismatchError, match=rf"{component}'?: the {component} weights.*1 missing "
                                                           rf"\({dropped}\)"):
        load_pipeline(str(folder), device="cpu")


def test_an_original_checkpoint_without_its_configs_offline_says_what_to_pass(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = tmp_path / "original.safetensors"
    save_file({"model.diffusion_model.out.2.bias": torch.zeros(4)}, str(path))
    with pytest.raises(ModelNotFoundError, match="--model-config") as error:
        load_pipeline(str(path), device="cpu", cache_dir=str(tmp_path))
    assert ".." not in str(error.value).replace(str(tmp_path), "")
