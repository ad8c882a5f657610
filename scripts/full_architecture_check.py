"""Drive the CLI and the server through a stand-in of riffusion-model-v1, without a network.

The stand-in has riffusion-model-v1's exact architecture (Stable Diffusion 1.5: an 860M-parameter UNet,
the VAE, and the CLIP ViT-L/14 text encoder with its full 49,408-token vocabulary) and random weights,
built from configs; the vocabulary is built offline from the BPE merges file that the ``open_clip_torch``
wheel ships. The script saves it as a diffusers folder, runs
``riffusion text-to-audio --model DIR --num-inference-steps N`` and ``python -m riffusion.server
--checkpoint DIR`` (its warm-up, then one ``/run_inference/`` request), checks the answers' shapes and
prints the timings of each stage.

    python scripts/full_architecture_check.py                        # CPU: about 10 minutes
    python scripts/full_architecture_check.py --device cuda --dtype float16
    python scripts/full_architecture_check.py --wheel open_clip_torch-3.3.0-py3-none-any.whl

The merges file is read from an installed ``open_clip`` package, else from ``--wheel`` (``pip download
--no-deps open_clip_torch`` fetches one). See docs/riffusion-model-v1.md.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

#: The merges file's name inside the open_clip package (and so inside its wheel).
MERGES_NAME = "bpe_simple_vocab_16e6.txt.gz"
#: CLIP's vocabulary: 256 byte symbols, the same 256 ending a word, 48,894 merges, start and end of text.
CLIP_VOCAB_SIZE = 49408
CLIP_MERGES = CLIP_VOCAB_SIZE - 2 * 256 - 2
START, END = "<|startoftext|>", "<|endoftext|>"


# --- the tokenizer ----------------------------------------------------------------------------------------


def read_clip_merges(wheel: str | os.PathLike | None = None) -> list[str]:
    """CLIP's BPE merges ("a b" lines, highest priority first), from the installed ``open_clip`` package
    or, when ``wheel`` is given, from that ``open_clip_torch`` wheel.

    Raises
    ------
    FileNotFoundError
        If neither holds the merges file (the message says how to get a wheel).
    """
    if wheel is not None:
        wheel = Path(wheel)
        if not wheel.is_file():
            raise FileNotFoundError(f"no open_clip_torch wheel at {wheel}")
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.endswith("/" + MERGES_NAME)]
            if not names:
                raise FileNotFoundError(f"{wheel} holds no {MERGES_NAME} (is it an open_clip_torch wheel?)")
            data = archive.read(names[0])
    else:
        spec = importlib.util.find_spec("open_clip")
        path = Path(spec.origin).parent / MERGES_NAME if spec is not None and spec.origin else None
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"open_clip is not installed and no --wheel was given: the CLIP vocabulary is built from its "
                f"{MERGES_NAME}; get a wheel with `pip download --no-deps open_clip_torch -d DIR` and pass --wheel")
        data = path.read_bytes()
    lines = gzip.decompress(data).decode("utf-8").split("\n")
    # The first line is a version header; CLIP uses the first CLIP_MERGES merges after it.
    merges = [line for line in lines[1:1 + CLIP_MERGES] if line]
    if len(merges) != CLIP_MERGES:
        raise ValueError(f"the merges file has {len(merges)} merges, expected {CLIP_MERGES}")
    return merges


def build_clip_tokenizer(folder: str | os.PathLike, wheel: str | os.PathLike | None = None):
    """Write CLIP's tokenizer (vocab.json, merges.txt and configs) to ``folder`` and load it.

    The vocabulary's order is CLIP's: the byte symbols, the byte symbols ending a word (``</w>``), each
    merge's result in priority order, then the start and end tokens: 49,408 tokens.

    Returns
    -------
    transformers.CLIPTokenizer
    """
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    merges = read_clip_merges(wheel)
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + [m.replace(" ", "") for m in merges] + [START, END]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != CLIP_VOCAB_SIZE:
        raise ValueError(f"built {len(vocab)} distinct tokens, expected {CLIP_VOCAB_SIZE}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "bos_token": START, "eos_token": END,
        "unk_token": END, "pad_token": END, "do_lower_case": True,
    }), encoding="utf-8")
    return CLIPTokenizer.from_pretrained(str(folder))


# --- the model ----------------------------------------------------------------------------------------------


def stand_in_modules(tokenizer) -> dict:
    """riffusion-model-v1's UNet, VAE and text encoder, freshly initialised (build them under
    ``torch.device("meta")`` to see their shapes and key names without the memory)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet = UNet2DConditionModel(  # Stable Diffusion 1.5's UNet
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, scaling_factor=0.18215,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(  # CLIP ViT-L/14's text tower
        vocab_size=len(tokenizer), hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))
    return {"unet": unet, "vae": vae, "text_encoder": text_encoder}


def build_stand_in(folder: str | os.PathLike, *, wheel=None, dtype: str = "float32", seed: int = 0) -> Path:
    """riffusion-model-v1's architecture with random weights, saved as a diffusers folder at ``folder``.

    Returns the folder. Parameter counts are printed (UNet about 860M, VAE 84M, text encoder 123M).
    """
    import torch

    from riffusion.checkpoints import tiny_random_components
    from riffusion.riffusion_pipeline import RiffusionPipeline

    with tempfile.TemporaryDirectory() as scratch:
        tokenizer = build_clip_tokenizer(scratch, wheel)
    torch.manual_seed(seed)
    modules = stand_in_modules(tokenizer)
    for name, module in modules.items():
        print(f"  {name}: {sum(p.numel() for p in module.parameters()) / 1e6:.0f}M parameters", flush=True)
    # riffusion-model-v1's scheduler is the one tiny-random carries
    scheduler = tiny_random_components(seed)["scheduler"]
    pipeline = RiffusionPipeline(**modules, tokenizer=tokenizer, scheduler=scheduler,
                                 model_id="riffusion-model-v1-stand-in")
    if dtype != "float32":  # the modules are built in float32
        pipeline.to(dtype=getattr(torch, dtype))
    return pipeline.save_pretrained(Path(folder), overwrite=True)


# --- driving the CLI and the server -------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def run_cli(model: Path, out: Path, *, device: str, steps: int) -> float:
    """Seconds ``riffusion text-to-audio`` takes for one clip (model loading included)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "riffusion", "text-to-audio", "--model", str(model), "--device", device,
                    "--num-inference-steps", str(steps), "--prompt", "jazzy saxophone",
                    "--audio", str(out / "cli.wav"), "--image", str(out / "cli.png")],
                   check=True, env=_env())
    elapsed = time.monotonic() - started
    from PIL import Image

    from riffusion.audio import read_audio

    with Image.open(out / "cli.png") as image:
        size = image.size
    waveform, rate = read_audio(out / "cli.wav")
    print(f"  cli: {size[0]}x{size[1]} image, {waveform.shape[-1] / rate:.2f} s of {rate} Hz audio", flush=True)
    return elapsed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_server(model: Path, out: Path, *, device: str, steps: int, warmup: bool,
               timeout_s: float = 3600.0) -> dict[str, float]:
    """Seconds ``python -m riffusion.server --checkpoint`` takes to listen (loading and warm-up), and one
    ``/run_inference/`` request of ``steps`` steps then takes."""
    import httpx
    from PIL import Image

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "riffusion.server", "--checkpoint", str(model), "--device", device,
            "--port", str(port)]
    if not warmup:
        args += ["--no-warmup", "--num-inference-steps", str(steps)]
    log_path = out / "server.log"
    started = time.monotonic()
    with open(log_path, "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=_env())
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"the server did not listen within {timeout_s:g} s")
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        ready_s = time.monotonic() - started
        defaults = httpx.get(f"{url}/api/v1/defaults").json()
        prompt = {"prompt": "jazzy saxophone", "seed": 1, "denoising": 0.75, "guidance": 7.0}
        body = {"alpha": 0.25, "num_inference_steps": steps, "seed_image_id": "og_beat",
                "start": prompt, "end": {**prompt, "prompt": "church bells", "seed": 2}}
        started = time.monotonic()
        response = httpx.post(f"{url}/run_inference/", json=body, timeout=timeout_s)
        request_s = time.monotonic() - started
        response.raise_for_status()
        answer = response.json()
        image = Image.open(io.BytesIO(base64.b64decode(answer["image"].split(",", 1)[1])))
        print(f"  server: {image.size[0]}x{image.size[1]} image, {answer['duration_s']} s of audio; the jam would "
              f"ask for {defaults['num_inference_steps']} steps (keeps up: {defaults['keeps_up']}, "
              f"{defaults['seconds_per_clip']} s per clip)", flush=True)
        return {"server_ready_s": ready_s, "server_request_s": request_s,
                "jam_steps": defaults["num_inference_steps"], "jam_seconds_per_clip": defaults["seconds_per_clip"]}
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        for line in log_path.read_text().splitlines():
            if "warm-up" in line or "keep up" in line:
                print(f"  server log: {line.strip()}", flush=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="folder for the model and outputs (default: a temporary one, removed)")
    parser.add_argument("--wheel", help="an open_clip_torch wheel to read the BPE merges from "
                        "(default: the installed open_clip package)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (the CLI and the server run there)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16"),
                        help="precision of the saved weights (the CLI and server use float16 on CUDA anyway)")
    parser.add_argument("--steps", type=int, default=2,
                        help="scheduler steps per clip (2 is the fewest that denoise at 0.75: one UNet step)")
    parser.add_argument("--no-server-warmup", dest="server_warmup", action="store_false",
                        help="start the server with --no-warmup (faster on a CPU; no steps measured)")
    parser.add_argument("--skip-server", action="store_true", help="only the CLI")
    parser.add_argument("--json", help="also write the timings to this file")
    args = parser.parse_args(argv)

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="riffusion-full-"))
    out.mkdir(parents=True, exist_ok=True)
    timings: dict = {"device": args.device, "dtype": args.dtype, "steps": args.steps}
    try:
        print(f"building riffusion-model-v1's architecture with random weights in {out / 'model'}", flush=True)
        started = time.monotonic()
        model = build_stand_in(out / "model", wheel=args.wheel, dtype=args.dtype)
        timings["build_and_save_s"] = time.monotonic() - started
        print(f"running the CLI ({args.steps} steps)", flush=True)
        timings["cli_s"] = run_cli(model, out, device=args.device, steps=args.steps)
        if not args.skip_server:
            print(f"starting the server (warm-up: {'yes' if args.server_warmup else 'no'}) and asking for one clip",
                  flush=True)
            timings.update(run_server(model, out, device=args.device, steps=args.steps, warmup=args.server_warmup))
    finally:
        if not args.out:
            shutil.rmtree(out, ignore_errors=True)
    print("timings:")
    for key, value in timings.items():
        print(f"  {key}: {value:.1f}" if isinstance(value, float) else f"  {key}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(timings, indent=2) + "\n")
    return timings


if __name__ == "__main__":
    main()
