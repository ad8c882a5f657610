"""Benchmark: how long a jam session takes to re-render offline, at the jam's settings and at higher quality.

    python bench/bench_sessions.py                                  # 20 clips of the shipped model
    python bench/bench_sessions.py --clips 40 --steps 30 --phase mel-griffin-lim:128

The session is built as the jam builds one on a server of ``--model`` with its start-up defaults (what
``/api/v1/defaults`` announces: steps, denoising, guidance, seed loop, phase method): each new prompt is
reached over four clips (alpha 0.25, 0.5, 0.75, 1), the prompt changes every four clips and one segment
plays a weighted mix of prompts, as the jam's mixer sends it. It is rendered with
:func:`riffusion.sessions.render_session` three ways in one process, on the same session:

* ``jam settings``: the session as recorded (the baseline: the audio as heard);
* ``more steps``: every clip with ``--steps`` steps and the server's phase method (a small model runs at
  most its own step count, which the row then says);
* ``higher quality``: ``--steps`` steps and ``--phase`` (the slowest, best-sounding reconstruction).

Printed per setting: seconds, seconds per clip, the real-time factor (render seconds over the rendered
session's seconds: below 1 renders faster than it plays) and the time against the baseline's.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import time

PROMPTS = ("lofi hip hop beat", "jazz piano trio", "funky bass and drums", "ambient synth pads", "rock band")
MIX = (("jazz piano trio", 0.8), ("rain on a roof", 0.4))


def jam_defaults(pipeline, model: str) -> dict:
    """What a server of ``pipeline`` announces to the jam at start-up without a warm-up measurement."""
    from riffusion.server.settings import ServerSettings
    from riffusion.server.state import ServerState

    state = ServerState(ServerSettings(model=model, warmup=False), pipeline)
    try:
        return {"steps": state.web_steps, "denoising": state.info.denoising, "guidance": state.info.guidance,
                "seed_image_id": state.default_seed_image(), "phase": str(state.phase)}
    finally:
        state.stop()


def jam_session(pipeline, model: str, clips: int, defaults: dict) -> dict:
    """A session document as the jam writes it: a prompt change every four clips, one mixed segment."""
    width = pipeline.image_size[0]
    duration = pipeline.spectrogram_params.duration_s(width)

    def end(segment: int) -> dict:
        wire = {"seed": 1000 + segment, "denoising": defaults["denoising"], "guidance": defaults["guidance"]}
        if segment == 2:  # the mixer on: the playing prompt and another, weighted
            return {**wire, "prompts": [{"prompt": p, "weight": w} for p, w in MIX]}
        return {**wire, "prompt": PROMPTS[segment % len(PROMPTS)]}

    entries = []
    for i in range(clips):
        segment, step = divmod(i, 4)
        request = {"alpha": 0.25 * (step + 1), "num_inference_steps": defaults["steps"],
                   "seed_image_id": defaults["seed_image_id"], "mask_image_id": None,
                   "start": end(segment), "end": end(segment + 1)}
        entries.append({"start_s": round(i * (duration - 0.03), 6), "duration_s": round(duration, 6),
                        "bar_s": round(duration / 2, 6), "loop_bars": 0, "request": request})
    return {"schema": "riffusion-session", "version": 1, "model": model,
            "sample_rate": pipeline.spectrogram_params.sample_rate, "phase": defaults["phase"], "crossfade_s": 0.03,
            "clips": entries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="default: the package's default model")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--steps", type=int, default=20, help="steps of the higher-quality renders")
    parser.add_argument("--phase", default="mel-griffin-lim:96", help="phase method of the highest-quality render")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import torch

    from riffusion.loading import DEFAULT_MODEL, load_pipeline
    from riffusion.sessions import parse_session, render_session

    model = args.model or DEFAULT_MODEL
    pipeline = load_pipeline(model, device=args.device)
    defaults = jam_defaults(pipeline, model)
    session = parse_session(jam_session(pipeline, model, args.clips, defaults))
    ran = pipeline.effective_num_inference_steps(args.steps)  # a small model runs at most its own count
    steps = f"{args.steps} steps" + (f" ({ran} run)" if ran != args.steps else "")
    settings = (
        (f"jam settings ({defaults['steps']} steps, {defaults['phase']})", None, None),
        (f"more steps ({steps}, {defaults['phase']})", args.steps, None),
        (f"higher quality ({steps}, {args.phase})", args.steps, args.phase),
    )
    print(f"model {pipeline.model_id}, {args.clips} clips, device {args.device}, torch threads "
          f"{torch.get_num_threads()}, jam defaults: {defaults}", flush=True)
    render_session(parse_session(jam_session(pipeline, model, 1, defaults)), pipeline)  # warm the caches
    print(f"{'setting':<54} {'seconds':>8} {'s per clip':>10} {'audio s':>8} {'RTF':>6} {'x baseline':>10}")
    baseline = None
    for name, steps, phase in settings:
        started = time.perf_counter()
        rendered = render_session(session, pipeline, num_inference_steps=steps, phase=phase)
        seconds = time.perf_counter() - started
        audio_s = rendered.waveform.shape[-1] / rendered.sample_rate
        baseline = baseline or seconds
        print(f"{name:<54} {seconds:8.1f} {seconds / args.clips:10.2f} {audio_s:8.1f} {seconds / audio_s:6.2f} "
              f"{seconds / baseline:10.2f}", flush=True)


if __name__ == "__main__":
    main()
