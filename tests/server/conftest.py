"""Real servers on loopback ports: a subprocess started like a user would, and in-process ones."""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 120.0, process=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server_log(process)}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"server at {url} not healthy after {timeout} s")


def server_log(process, since: int = 0) -> str:
    """The last 20,000 characters a server subprocess printed after byte offset ``since`` of its log."""
    with open(process.log_path, "rb") as log:
        log.seek(since)
        return log.read().decode(errors="replace")[-20000:]


def start_server_process(*args: str, port: int):
    """``riffusion serve --model tiny-random`` on ``port``; its output goes to ``process.log_path``.

    A file, not a pipe: nobody reads a pipe while the server runs, and once its buffer is full (about
    64 KiB of access log, a few hundred requests) every write, and so the server, blocks.
    """
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
    with tempfile.NamedTemporaryFile("w", prefix="riffusion-serve-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "riffusion", "serve", "--model", "tiny-random", "--port", str(port), *args],
            stdout=log, stderr=subprocess.STDOUT, text=True, env=env,
        )
    process.log_path = log.name
    return process


@pytest.fixture(scope="session")
def server_process():
    """``riffusion serve --model tiny-random`` as a subprocess (a low step limit keeps fuzzing quick)."""
    port = free_port()
    process = start_server_process("--num-inference-steps", "4", "--max-inference-steps", "8", port=port)
    process.url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process.url, process=process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        Path(process.log_path).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def server_url(server_process):
    return server_process.url


@pytest.fixture(scope="session")
def tiny_pipeline():
    from riffusion.loading import load_pipeline

    return load_pipeline("tiny-random", device="cpu")


class InProcessServer:
    """uvicorn serving ``create_app(settings, pipeline)`` on a thread, on a free loopback port."""

    def __init__(self, settings, pipeline):
        import uvicorn

        from riffusion.server import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings, pipeline), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        wait_healthy(self.url, timeout=60)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def in_process_server(tiny_pipeline):
    def make(pipeline=None, **settings):
        from riffusion.server import ServerSettings

        settings.setdefault("warmup", False)
        settings.setdefault("num_inference_steps", 2)
        return InProcessServer(ServerSettings(**settings), pipeline or tiny_pipeline)

    return make


def clip_body(prompt="jazzy saxophone", seed=1, alpha=0.0, steps=2, **extra):
    """The original web app's request, exactly as it sent it (integers for floats)."""
    return {
        "alpha": alpha,
        "num_inference_steps": steps,
        "seed_image_id": "og_beat",
        "mask_image_id": None,
        "start": {"prompt": prompt, "seed": seed, "denoising": 0.75, "guidance": 7},
        "end": {"prompt": prompt, "seed": seed + 1, "denoising": 0.75, "guidance": 7},
        **extra,
    }
