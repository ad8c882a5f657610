"""scripts/full_architecture_check.py: CLIP's vocabulary built offline from the open_clip_torch wheel, the
stand-in's key names against tiny-random's, and (``-m heavy``, outside the default run) the whole check:
riffusion-model-v1's architecture with random weights through the CLI and the server."""

from __future__ import annotations

import importlib.util
import os
import re
import zipfile
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "full_architecture_check.py"
#: Where the test set-up leaves the wheel (`pip download --no-deps open_clip_torch -d /tmp/wheels`).
WHEEL_DIR = Path(os.environ.get("RIFFUSION_WHEEL_DIR", "/tmp/wheels"))


def load_script():
    spec = importlib.util.spec_from_file_location("full_architecture_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = load_script()


def open_clip_wheel():
    wheels = sorted(WHEEL_DIR.glob("open_clip_torch-*.whl"))
    if wheels:
        return wheels[-1]
    if importlib.util.find_spec("open_clip") is not None:
        return None  # the installed package holds the merges file
    pytest.skip(f"no open_clip_torch wheel in {WHEEL_DIR} and open_clip is not installed")


def test_the_tokenizer_built_from_the_wheel_is_clips(tmp_path):
    tokenizer = check.build_clip_tokenizer(tmp_path, open_clip_wheel())
    assert len(tokenizer) == 49408
    assert tokenizer.bos_token_id == 49406 and tokenizer.eos_token_id == 49407 == tokenizer.pad_token_id
    # CLIP's own ids for this sentence
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merges.txt", "tokenizer_config.json", "vocab.json"]


def test_a_wheel_without_the_merges_file_is_a_clear_error(tmp_path):
    wheel = tmp_path / "not_open_clip-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("not_open_clip/__init__.py", "")
    with pytest.raises(FileNotFoundError, match="holds no bpe_simple_vocab_16e6.txt.gz"):
        check.read_clip_merges(wheel)
    with pytest.raises(FileNotFoundError, match="no open_clip_torch wheel at"):
        check.read_clip_merges(tmp_path / "missing.whl")


def _family(key: str) -> str:
    return re.sub(r"\.\d+\.", ".N.", key)


def test_tiny_random_has_the_full_architectures_key_names(tmp_path):
    """The default run's stand-in (tiny-random) uses riffusion-model-v1's key names, so what loading tests
    check on it holds for the full model: the full model's modules, built without memory (meta device)."""
    from riffusion.checkpoints import tiny_random_components

    tiny = tiny_random_components()
    with torch.device("meta"):
        full = check.stand_in_modules(tiny["tokenizer"])
    assert sum(p.numel() for p in full["unet"].parameters()) == pytest.approx(860e6, rel=0.01)
    for name in ("vae", "text_encoder"):
        assert set(tiny[name].state_dict()) <= set(full[name].state_dict()), name
    # The UNets differ in which levels attend; every kind of key tiny-random has, the full one has too.
    full_families = {_family(k) for k in full["unet"].state_dict()}
    assert {_family(k) for k in tiny["unet"].state_dict()} <= full_families


@pytest.mark.heavy
def test_the_full_architecture_runs_through_the_cli_and_the_server(tmp_path):
    """About 10 minutes on a CPU: a 4 GB model saved, loaded by the CLI, then by the server (warm-up)."""
    wheel = open_clip_wheel()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args = ["--out", str(tmp_path), "--device", device, "--steps", "2"]
    if device == "cuda":
        args += ["--dtype", "float16"]
    if wheel is not None:
        args += ["--wheel", str(wheel)]
    timings = check.main(args)
    assert timings["cli_s"] > 0 and timings["server_request_s"] > 0
    assert timings["jam_steps"] >= 2  # the fewest steps that denoise at 0.75
