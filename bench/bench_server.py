"""Server throughput and latency, with and without batching, at 1, 4 and 16 concurrent clients.

Runs two real servers (uvicorn on loopback ports, in this process) on the same model: the baseline with
``max_batch_size=1`` (one request per UNet call, like the original server) and the batched one. Clients
send distinct requests (the response cache is off) for a fixed time; the table gives clips per second,
p50/p95 latency and the throughput ratio batched / unbatched.

    python bench/bench_server.py                       # tiny-random, 20 s per cell
    python bench/bench_server.py --model riffusion-small-v1 --seconds 60 --steps 12
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import httpx  # noqa: E402

from server.conftest import InProcessServer, clip_body  # noqa: E402


def run_cell(url: str, clients: int, seconds: float, steps: int) -> tuple[float, list[float], int]:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(10**9))

    def client():
        nonlocal errors
        with httpx.Client(timeout=300) as http:
            while time.monotonic() < deadline:
                with lock:
                    seed = next(counter)
                started = time.monotonic()
                response = http.post(f"{url}/run_inference/", json=clip_body(seed=seed, steps=steps))
                elapsed = time.monotonic() - started
                with lock:
                    if response.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        errors += 1

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: client(), range(clients)))
    return len(latencies) / (time.monotonic() - started), latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny-random")
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per cell")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()

    from riffusion.loading import load_pipeline
    from riffusion.server import ServerSettings

    pipeline = load_pipeline(args.model, device="cpu")
    rows = []
    for label, batch in (("unbatched", 1), ("batched", args.batch_size)):
        settings = ServerSettings(warmup=False, cache_size=0, queue_size=64, max_batch_size=batch,
                                  batch_wait_ms=30 if batch > 1 else 0, num_inference_steps=args.steps)
        with InProcessServer(settings, pipeline) as server:
            httpx.post(f"{server.url}/run_inference/", json=clip_body(seed=10**6, steps=args.steps), timeout=300)
            for clients in args.clients:
                throughput, latencies, errors = run_cell(server.url, clients, args.seconds, args.steps)
                q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [float("nan")] * 19
                rows.append((label, clients, throughput, statistics.median(latencies) if latencies else float("nan"),
                             q[18], errors))
                print(f"  {label:9s} {clients:3d} clients: {throughput:.2f} clips/s", file=sys.stderr)

    print(f"\nmodel {args.model}, {args.steps} steps, {args.seconds:g} s per cell, batch size {args.batch_size}\n")
    print("| clients | unbatched clips/s | batched clips/s | ratio | p50 s (unb / bat) | p95 s (unb / bat) | errors |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for clients in args.clients:
        unb = next(r for r in rows if r[0] == "unbatched" and r[1] == clients)
        bat = next(r for r in rows if r[0] == "batched" and r[1] == clients)
        print(f"| {clients} | {unb[2]:.2f} | {bat[2]:.2f} | {bat[2] / unb[2]:.2f}x | {unb[3]:.2f} / {bat[3]:.2f} | "
              f"{unb[4]:.2f} / {bat[4]:.2f} | {unb[5] + bat[5]} |")


if __name__ == "__main__":
    main()
