"""The training loop: accelerate-based, EMA, periodic samples, atomic resumable checkpoints.

Run folder::

    <output_dir>/
      train_config.json         the configuration (a resumed run reuses it)
      checkpoints/step-XXXXXXXX.pt   model, EMA, optimiser, step, elapsed time (written atomically)
      model/                    the latest export in diffusers-like layout (EMA weights, fp16)
      samples/step-XXXXXXXX/    sample images (.png, EXIF) and audio (.wav) with prompts.txt
      log.jsonl                 step, loss, learning rate, samples/s, elapsed seconds

Resuming: the batch order and the noise of every step are pure functions of (seed, step), so a run
killed at any moment and restarted with the same command continues from its newest checkpoint exactly
as if it had not stopped (SIGINT/SIGTERM first write a checkpoint).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import signal
import time
import typing as T
from pathlib import Path

import torch

DEFAULT_SAMPLE_PROMPTS = (
    "solo flute melody",
    "deep bass line",
    "drums playing a fast rock beat",
    "warm sustained synth pad chords",
    "jazz piano trio with walking bass",
    "epic orchestral soundtrack",
)


@dataclasses.dataclass
class TrainConfig:
    data_dir: str
    output_dir: str
    model: T.Optional[str] = None  # None: a new riffusion-small; else a folder / shipped name / loader id
    lora_rank: int = 0  # > 0: LoRA on attention projections (Stable Diffusion models)
    max_steps: int = 10000
    batch_size: int = 16
    learning_rate: float = 3e-4
    warmup_steps: int = 200
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    uncond_prob: float = 0.1  # caption dropout, for classifier-free guidance
    rhythm_drop_prob: float = 0.2  # models with a rhythm input: share of steps' clips trained without one
    min_snr_gamma: float = 5.0  # Min-SNR loss weighting (Hang et al., 2023); 0 disables
    checkpoint_every: int = 250  # steps
    checkpoint_minutes: float = 5.0  # also checkpoint when this much wall time passed since the last one
    keep_checkpoints: int = 2
    sample_every: int = 1000  # steps; 0 disables samples
    sample_prompts: tuple[str, ...] = DEFAULT_SAMPLE_PROMPTS
    sample_steps: int = 12
    seed: int = 0
    mixed_precision: str = "no"  # accelerate: "no" | "fp16" | "bf16"
    export_fp16: bool = True
    small_config: dict = dataclasses.field(default_factory=dict)  # riffusion-small architecture overrides
    caption_variants: bool = False  # train on short caption variants too (riffusion.dataset.captions)
    oversample: tuple[str, ...] = ()  # "REGEX=FACTOR": captions matching REGEX are seen FACTOR times per epoch
    device: str = "auto"

    def to_dict(self) -> dict[str, T.Any]:
        data = dataclasses.asdict(self)
        data["sample_prompts"] = list(self.sample_prompts)
        data["oversample"] = list(self.oversample)
        return data

    @classmethod
    def from_dict(cls, data: T.Mapping[str, T.Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown training options {unknown}")
        kwargs = dict(data)
        for name in ("sample_prompts", "oversample"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        return cls(**kwargs)

    def validate(self) -> None:
        checks = {
            "max_steps": self.max_steps >= 1, "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0, "warmup_steps": self.warmup_steps >= 0,
            "ema_decay": 0 <= self.ema_decay < 1, "uncond_prob": 0 <= self.uncond_prob < 1,
            "rhythm_drop_prob": 0 <= self.rhythm_drop_prob <= 1,
            "checkpoint_every": self.checkpoint_every >= 1, "keep_checkpoints": self.keep_checkpoints >= 1,
            "sample_every": self.sample_every >= 0, "lora_rank": self.lora_rank >= 0,
            "mixed_precision": self.mixed_precision in ("no", "fp16", "bf16"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"invalid training option {name}={getattr(self, name)!r}")
        from riffusion.training.data import parse_oversample
        from riffusion.devices import validate_device

        try:
            validate_device(self.device)
        except ValueError as error:
            raise ValueError(f"invalid training option device={self.device!r}: {error}") from None

        for rule in self.oversample:
            parse_oversample(rule)


# Fields a resumed run may change; everything else must match the run's saved configuration.
_RESUMABLE_CHANGES = ("max_steps", "checkpoint_every", "checkpoint_minutes", "keep_checkpoints", "sample_every",
                      "sample_prompts", "sample_steps", "device", "export_fp16", "caption_variants")


@dataclasses.dataclass
class TrainResult:
    output_dir: Path
    step: int
    loss: float
    elapsed_s: float
    model_dir: Path
    resumed_from: T.Optional[int]
    stopped: bool  # interrupted by a signal before max_steps


class _EMA:
    """Exponential moving average of the trainable parameters, with the usual warm-up of the decay."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {n: p.detach().clone().float() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for name, param in model.named_parameters():
            if name in self.shadow:
                shadow = self.shadow[name]
                shadow.lerp_(param.detach().to(shadow.device, torch.float32), 1 - decay)

    def copy_into(self, model: torch.nn.Module) -> torch.nn.Module:
        averaged = copy.deepcopy(model)
        with torch.no_grad():
            for name, param in averaged.named_parameters():
                if name in self.shadow:
                    param.copy_(self.shadow[name].to(param.dtype))
        return averaged

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: T.Mapping[str, torch.Tensor]) -> None:
        missing = set(self.shadow) - set(state)
        if missing:
            raise ValueError(f"EMA state misses {len(missing)} parameters (e.g. {sorted(missing)[:3]})")
        for name in self.shadow:
            self.shadow[name].copy_(state[name])


def list_checkpoints(output_dir: T.Union[str, Path]) -> list[tuple[int, Path]]:
    """(step, path) of the run's complete checkpoints, oldest first."""
    folder = Path(output_dir) / "checkpoints"
    found = []
    for path in folder.glob("step-*.pt"):
        try:
            found.append((int(path.stem.split("-")[1]), path))
        except (IndexError, ValueError):
            continue
    return sorted(found)


def _atomic_torch_save(obj: T.Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def train(config: TrainConfig, *, progress: T.Optional[bool] = None, log: T.Callable[[str], None] = print,
          stop_after: T.Optional[int] = None) -> TrainResult:
    """Train (or resume) a model as ``config`` says.

    ``stop_after`` ends this call after that many steps of this session (tests use it to simulate an
    interruption); a later call resumes.
    """
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from riffusion.training.adapters import make_adapter
    from riffusion.training.data import SpectrogramImages, batch_indices, oversampled_order, parse_oversample

    config.validate()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(exist_ok=True)

    # 1. Configuration: a resumed run keeps its own, except the fields that may change.
    saved_path = out / "train_config.json"
    checkpoints = list_checkpoints(out)
    if saved_path.is_file() and checkpoints:
        saved = TrainConfig.from_dict(json.loads(saved_path.read_text()))
        changed = [f.name for f in dataclasses.fields(TrainConfig)
                   if f.name not in _RESUMABLE_CHANGES and getattr(saved, f.name) != getattr(config, f.name)]
        if changed:
            raise ValueError(
                f"{str(out)!r} holds a run with different {changed}; resume with the same options or choose "
                "another --output-dir"
            )
    _write_json(saved_path, config.to_dict())

    from riffusion.devices import check_device

    # "auto": CUDA or the CPU (MPS only when asked for: it is untested here); an absent one: the CPU, with a warning
    device = ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else check_device(config.device)
    accelerator = Accelerator(mixed_precision=config.mixed_precision, cpu=device == "cpu")
    if accelerator.device.type != torch.device(device).type:
        # accelerate keeps one state per process: the device of the first Accelerator made here sticks, and a
        # later one silently trains there (measured: "cuda" after a CPU run in one process ran on the CPU)
        raise ValueError(f"device {device!r} was asked for, but this process already trains on "
                         f"{accelerator.device.type!r} (accelerate's state is per process): train on {device!r} "
                         "in a new process")

    # 2. Model and data.
    adapter = make_adapter(config.model, lora_rank=config.lora_rank, small_config=config.small_config,
                           device=str(accelerator.device), seed=config.seed)
    data = SpectrogramImages(config.data_dir, width=adapter.width, height=adapter.height, params=adapter.params, log=log)
    if config.caption_variants:
        from riffusion.dataset.captions import caption_variants

        variants = [caption_variants(row) for row in data.rows]
        flat = [c for vs in variants for c in vs]
        embeddings = _caption_embeddings(adapter, flat, out / "text_embeddings_variants.pt")
        offsets, position = [], 0
        for vs in variants:
            offsets.append((position, len(vs)))
            position += len(vs)
        log(f"caption variants: {len(set(flat))} distinct captions for {len(data)} images")
    else:
        embeddings = _caption_embeddings(adapter, data.captions, out / "text_embeddings.pt")
        offsets = [(i, 1) for i in range(len(data))]
    rules = [parse_oversample(rule) for rule in config.oversample]
    order = oversampled_order(variants if config.caption_variants else data.captions, rules)
    if len(order) != len(data):
        log(f"oversampling: {len(order)} draws per epoch for {len(data)} images ({', '.join(config.oversample)})")
    uncond = adapter.encode_text([""])[0]
    column_s = adapter.params.step_size_ms / 1000.0
    if adapter.rhythm_channels:
        grids = data.beat_grids(column_s=column_s)
        log(f"rhythm input: beat grids for {sum(g is not None for g in grids)} of {len(data)} images")
    model = adapter.model
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)

    # 3. Resume from the newest checkpoint.
    step = 0
    elapsed = 0.0
    resumed_from = None
    if checkpoints:
        ckpt_step, ckpt_path = checkpoints[-1]
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        step, elapsed, resumed_from = int(state["step"]), float(state["elapsed_s"]), ckpt_step
        log(f"resumed from {ckpt_path} (step {step}, {elapsed / 60:.1f} min trained)")

    model, optimizer = accelerator.prepare(model, optimizer)
    # The average lives where the model now is (a GPU's memory on CUDA: no copy to the host every step).
    ema = _EMA(accelerator.unwrap_model(model), config.ema_decay)
    if checkpoints:
        ema.load_state_dict(state["ema"])
        del state
    noise_scheduler = adapter.noise_scheduler
    alphas_cumprod = noise_scheduler.alphas_cumprod.float()
    num_train_timesteps = noise_scheduler.config.num_train_timesteps

    stop = {"flag": False}

    def on_signal(signum, _frame):
        stop["flag"] = True

    previous = {}
    if accelerator.is_main_process:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, on_signal)
            except ValueError:  # not in the main thread
                pass

    def save_checkpoint() -> None:
        if not accelerator.is_main_process:
            return
        unwrapped = accelerator.unwrap_model(model)
        state = {
            "step": step, "elapsed_s": elapsed, "config": config.to_dict(),
            "model": {k: v for k, v in unwrapped.state_dict().items()},
            "optimizer": optimizer.state_dict() if not hasattr(optimizer, "optimizer") else optimizer.optimizer.state_dict(),
            "ema": ema.state_dict(),
        }
        _atomic_torch_save(state, out / "checkpoints" / f"step-{step:08d}.pt")
        for _, old in list_checkpoints(out)[: -config.keep_checkpoints]:
            old.unlink(missing_ok=True)
        adapter.export(out / "model", ema.copy_into(unwrapped), fp16=config.export_fp16)

    def write_samples() -> None:
        if not accelerator.is_main_process or not config.sample_prompts:
            return
        _write_samples(adapter, ema.copy_into(accelerator.unwrap_model(model)), config, out / "samples" / f"step-{step:08d}")

    # 4. The loop.
    bar = tqdm(total=config.max_steps, initial=step, desc="train", disable=None if progress is None else not progress,
               dynamic_ncols=True)
    last_checkpoint_time = time.monotonic()
    session_steps = 0
    loss_value = float("nan")
    log_handle = open(out / "log.jsonl", "a", encoding="utf-8")
    try:
        while step < config.max_steps and not stop["flag"]:
            t0 = time.monotonic()
            generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
            indices = [order[j] for j in batch_indices(step, size=len(order), batch_size=config.batch_size,
                                                       seed=config.seed, rank=accelerator.process_index,
                                                       world=accelerator.num_processes)]
            pixels = data.batch(indices)
            cond = embeddings[[_pick(offsets[i], generator, config.caption_variants) for i in indices]].clone()
            drop = torch.rand(len(indices), generator=generator) < config.uncond_prob
            cond[drop] = uncond
            x0 = adapter.encode_images(pixels.to(accelerator.device), generator)
            noise = torch.randn(x0.shape, generator=generator)
            t = torch.randint(0, num_train_timesteps, (len(indices),), generator=generator)
            x_t = noise_scheduler.add_noise(x0.cpu(), noise, t)
            if adapter.prediction_type == "v_prediction":
                target = noise_scheduler.get_velocity(x0.cpu(), noise, t)
            elif adapter.prediction_type == "epsilon":
                target = noise
            else:
                target = x0.cpu()
            lr = config.learning_rate * min(1.0, (step + 1) / max(1, config.warmup_steps))
            for group in optimizer.param_groups:
                group["lr"] = lr
            rhythm = None
            if adapter.rhythm_channels:
                # the clips' beat grids, or none (zeros) for a share of them, so the model also learns to
                # choose a rhythm itself (text to audio without a loop)
                rhythm = data.rhythm(indices, column_s=column_s)
                keep = torch.rand(len(indices), generator=generator) >= config.rhythm_drop_prob
                rhythm = (rhythm * keep[:, None, None]).to(accelerator.device)
            with accelerator.autocast():
                pred = adapter.predict(model, x_t.to(accelerator.device), t.to(accelerator.device),
                                       cond.to(accelerator.device), rhythm=rhythm)
            per_sample = (pred.float() - target.to(pred.device)).pow(2).mean(dim=tuple(range(1, pred.ndim)))
            if config.min_snr_gamma > 0:
                snr = alphas_cumprod[t] / (1 - alphas_cumprod[t]).clamp_min(1e-8)
                weight = snr.clamp(max=config.min_snr_gamma)
                weight = weight / (snr + 1) if adapter.prediction_type == "v_prediction" else weight / snr.clamp_min(1e-8)
                per_sample = per_sample * weight.to(per_sample.device)
            loss = per_sample.mean()
            accelerator.backward(loss)
            if config.grad_clip > 0:
                accelerator.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            ema.update(accelerator.unwrap_model(model), step)
            step += 1
            session_steps += 1
            dt = time.monotonic() - t0
            elapsed += dt
            loss_value = float(loss.detach())
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}")
            if accelerator.is_main_process:
                log_handle.write(json.dumps({"step": step, "loss": round(loss_value, 6), "lr": lr,
                                             "samples_per_s": round(len(indices) / dt, 2),
                                             "elapsed_s": round(elapsed, 1)}) + "\n")
                log_handle.flush()
            due = step % config.checkpoint_every == 0 or (
                time.monotonic() - last_checkpoint_time > config.checkpoint_minutes * 60)
            if due or step == config.max_steps:
                save_checkpoint()
                last_checkpoint_time = time.monotonic()
            if config.sample_every and step % config.sample_every == 0:
                write_samples()
            if stop_after is not None and session_steps >= stop_after:
                break
        stopped = step < config.max_steps
        if stopped and list_checkpoints(out) and list_checkpoints(out)[-1][0] != step:
            save_checkpoint()
        elif not list_checkpoints(out):
            save_checkpoint()
        if not stopped and config.sample_every and step % config.sample_every:
            write_samples()
    finally:
        bar.close()
        log_handle.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return TrainResult(output_dir=out, step=step, loss=loss_value, elapsed_s=elapsed, model_dir=out / "model",
                       resumed_from=resumed_from, stopped=stopped)


def _pick(offset: tuple[int, int], generator: torch.Generator, variants: bool) -> int:
    """Index of the caption embedding for one image: the full caption, or with ``variants`` the full
    caption 40 % of the time and a short variant otherwise (drawn from the step's generator)."""
    start, count = offset
    if not variants or count == 1:
        return start
    if float(torch.rand((), generator=generator)) < 0.4:
        return start
    return start + 1 + int(torch.randint(0, count - 1, (), generator=generator))


def _caption_embeddings(adapter, captions: list[str], cache: Path) -> torch.Tensor:
    """Text conditioning of every caption, computed once per unique caption and cached in the run folder."""
    import hashlib

    unique = sorted(set(captions))
    key = hashlib.sha256(("\n".join(unique) + repr(adapter.describe().get("kind"))).encode()).hexdigest()
    table = None
    if cache.is_file():
        saved = torch.load(cache, map_location="cpu", weights_only=False)
        if saved.get("key") == key:
            table = saved["embeddings"]
    if table is None:
        chunks = [adapter.encode_text(unique[i : i + 64]) for i in range(0, len(unique), 64)]
        table = torch.cat(chunks)
        _atomic_torch_save({"key": key, "embeddings": table}, cache)
    index = {caption: i for i, caption in enumerate(unique)}
    return table[[index[c] for c in captions]]


def _write_samples(adapter, model, config: TrainConfig, folder: Path) -> None:
    import numpy as np

    from riffusion.audio import write_audio
    from riffusion.image import save_image, waveform_from_image

    folder.mkdir(parents=True, exist_ok=True)
    images = adapter.sample(model, list(config.sample_prompts), seed=config.seed, steps=config.sample_steps)
    lines = []
    for i, (prompt, image) in enumerate(zip(config.sample_prompts, images)):
        save_image(image, folder / f"{i:02d}.png")
        waveform = waveform_from_image(image, adapter.params, generator=torch.Generator().manual_seed(i))
        write_audio(folder / f"{i:02d}.wav", np.asarray(waveform), adapter.params.sample_rate)
        lines.append(f"{i:02d}\t{prompt}")
    (folder / "prompts.txt").write_text("\n".join(lines) + "\n")


def _write_json(path: Path, data: T.Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
