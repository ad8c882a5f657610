"""Clips per second on Ray Serve at 1 and 2 model replicas, beside the single-process server.

Each server is ``riffusion serve`` as a subprocess on a loopback port (``--backend ray --replicas N``, or
the default backend), with the response cache off. Two request mixes, each for a fixed time:

* ``original``: ``--clients`` clients sending distinct ``/run_inference/`` requests (MP3 + JPEG) back to
  back, as a load generator would;
* ``jam``: ``--clients`` listeners, each as the jam asks: ``POST /api/v1/generate`` for WAV + JPEG, one
  request at a time, alpha stepping 0, 0.25, 0.5, 0.75 from its prompt to the next, a new seed per
  segment.

A replica takes one CPU core: on a 2-core machine two replicas share the cores the single process
already uses (PyTorch's threads), so the gain here is only what one process leaves idle (Python between
UNet calls, phase reconstruction, encoding); on a GPU cluster each replica brings its own GPU.

    python bench/bench_ray.py                          # the shipped model, 4 clients, 60 s per cell
    python bench/bench_ray.py --model tiny-random --seconds 20
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import httpx  # noqa: E402

from server.conftest import clip_body, free_port, start_server_process, wait_healthy  # noqa: E402

PROMPTS = ("lofi hip hop beat", "jazz piano trio", "church bells on a sunday", "acoustic folk fiddle")


def jam_body(listener: int, clip: int, steps: int) -> dict:
    """The ``clip``-th request of ``listener``, as the jam sends it (alpha steps of 0.25 between prompts)."""
    segment, step = divmod(clip, 4)
    prompt = PROMPTS[(listener + segment) % len(PROMPTS)]
    following = PROMPTS[(listener + segment + 1) % len(PROMPTS)]
    seed = 1000 * listener + segment
    return {"alpha": step / 4, "num_inference_steps": steps, "seed_image_id": "og_beat", "mask_image_id": None,
            "start": {"prompt": prompt, "seed": seed, "denoising": 0.75, "guidance": 7.0},
            "end": {"prompt": following, "seed": seed + 1, "denoising": 0.75, "guidance": 7.0},
            "audio_format": "wav", "image_format": "jpeg"}


def load(url: str, mix: str, clients: int, seconds: float, steps: int) -> tuple[float, list[float], int]:
    """Clips per second, latencies of the successful requests, and the number of errors."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def client(index: int):
        nonlocal errors
        with httpx.Client(timeout=600) as http:
            clip = 0
            while time.monotonic() < deadline:
                if mix == "jam":
                    path, body = "/api/v1/generate", jam_body(index, clip, steps)
                else:
                    path, body = "/run_inference/", clip_body(seed=10_000 * index + clip, steps=steps)
                started = time.monotonic()
                response = http.post(url + path, json=body)
                elapsed = time.monotonic() - started
                with lock:
                    if response.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        errors += 1
                clip += 1

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return len(latencies) / (time.monotonic() - started), latencies, errors


def run_server(label: str, args: argparse.Namespace, extra: list[str]) -> list[tuple]:
    port = free_port()
    process = start_server_process("--model", args.model, "--no-warmup", "--num-inference-steps", str(args.steps),
                                   "--cache-size", "0", "--max-batch-size", str(args.batch_size), *extra, port=port)
    url = f"http://127.0.0.1:{port}"
    rows = []
    try:
        started = time.monotonic()
        wait_healthy(url, timeout=600, process=process)
        print(f"{label}: ready after {time.monotonic() - started:.0f} s", file=sys.stderr)
        for seed in range(2):  # first clips: caches, kernels (on every replica)
            httpx.post(f"{url}/run_inference/", json=clip_body(seed=10**6 + seed, steps=args.steps), timeout=600)
        for mix in ("original", "jam"):
            throughput, latencies, errors = load(url, mix, args.clients, args.seconds, args.steps)
            p50 = statistics.median(latencies) if latencies else float("nan")
            p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) > 1 else float("nan")
            rows.append((label, mix, throughput, p50, p95, errors))
            print(f"  {label} {mix}: {throughput:.2f} clips/s", file=sys.stderr)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            process.kill()
        Path(process.log_path).unlink(missing_ok=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model id (default: the shipped model)")
    parser.add_argument("--steps", type=int, default=10, help="steps per clip (the small model's own: 10)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measuring time per cell")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (listeners, for the jam mix)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if args.model is None:
        from riffusion.loading import DEFAULT_MODEL

        args.model = DEFAULT_MODEL

    rows = run_server("single process", args, [])
    for replicas in args.replicas:
        rows += run_server(f"ray, {replicas} replica{'s' if replicas > 1 else ''}", args,
                           ["--backend", "ray", "--replicas", str(replicas)])

    print(f"\nmodel {args.model}, {args.steps} steps, {args.clients} clients, batch size "
          f"{args.batch_size}, {args.seconds:g} s per cell, {os.cpu_count()} CPU cores\n")
    print("| server | mix | clips/s | p50 s | p95 s | errors |")
    print("|---|---|---:|---:|---:|---:|")
    for label, mix, throughput, p50, p95, errors in rows:
        print(f"| {label} | {mix} | {throughput:.2f} | {p50:.2f} | {p95:.2f} | {errors} |")


if __name__ == "__main__":
    main()
