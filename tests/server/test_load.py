"""Many clients on one model: batching, the bounded queue, dropped work, a failing model, a soak."""

import concurrent.futures
import os
import time

import httpx
import pytest

from .conftest import clip_body


def _post(url, body, timeout=120):
    return httpx.post(f"{url}/run_inference/", json=body, timeout=timeout)


def test_concurrent_burst_is_batched(in_process_server):
    with in_process_server(max_batch_size=4, batch_wait_ms=50, cache_size=0) as server:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda i: _post(server.url, clip_body(seed=100 + i)), range(8)))
        assert [r.status_code for r in responses] == [200] * 8
        stats = httpx.get(f"{server.url}/api/v1/health").json()["stats"]
        assert stats["clips"] == 8 and stats["batches"] < 8  # some requests shared a UNet batch


def test_identical_requests_are_answered_once(in_process_server):
    with in_process_server() as server:
        body = clip_body(seed=7)
        first, second = _post(server.url, body), _post(server.url, body)
        assert first.json() == second.json()
        stats = httpx.get(f"{server.url}/api/v1/health").json()["stats"]
        assert stats["clips"] == 1


def test_full_queue_answers_503_with_retry_after(in_process_server):
    with in_process_server(queue_size=2, max_batch_size=1, batch_wait_ms=0, cache_size=0) as server:
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(lambda i: _post(server.url, clip_body(seed=200 + i)), range(12)))
        codes = sorted(r.status_code for r in responses)
        assert set(codes) <= {200, 503} and 503 in codes and 200 in codes
        busy = next(r for r in responses if r.status_code == 503)
        assert int(busy.headers["retry-after"]) >= 1 and busy.json()["detail"]


def test_work_for_a_client_that_left_is_dropped(in_process_server):
    with in_process_server(max_batch_size=1, batch_wait_ms=0, cache_size=0) as server:
        def impatient(i):
            try:
                _post(server.url, clip_body(seed=300 + i), timeout=0.3)
            except httpx.TimeoutException:
                pass

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(impatient, range(6)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            health = httpx.get(f"{server.url}/api/v1/health").json()
            if health["queue_length"] == 0 and health["stats"].get("dropped", 0) >= 1:
                break
            time.sleep(0.5)
        stats = health["stats"]
        assert stats.get("dropped", 0) >= 1 and stats.get("clips", 0) < 6


class FailingPipeline:
    """The real tiny-random pipeline, whose model raises for one prompt (a model failing mid-request)."""

    def __init__(self, pipeline):
        self._pipeline = pipeline

    def __getattr__(self, name):
        return getattr(self._pipeline, name)

    def riffuse_batch(self, items, **kwargs):
        if any(inputs.start.prompt == "boom" for inputs, *_ in items):
            raise RuntimeError("CUDA error: device-side assert triggered at /secret/path.py")
        return self._pipeline.riffuse_batch(items, **kwargs)


def test_a_failing_model_answers_500_and_keeps_serving(in_process_server, tiny_pipeline):
    with in_process_server(pipeline=FailingPipeline(tiny_pipeline), max_batch_size=4, batch_wait_ms=100) as server:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            bodies = [clip_body(prompt="boom"), clip_body(seed=400), clip_body(seed=401)]
            responses = list(pool.map(lambda b: _post(server.url, b), bodies))
        assert responses[0].status_code == 500
        assert responses[0].json() == {"detail": "generation failed inside the model"}
        assert "secret" not in responses[0].text
        assert [r.status_code for r in responses[1:]] == [200, 200]
        assert _post(server.url, clip_body(seed=402)).status_code == 200


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


@pytest.mark.slow
def test_soak_many_clients(server_process, server_url):
    """Clients for RIFFUSION_SOAK_S seconds (default 30): only 200s and clean 503s, memory flat."""
    duration = float(os.environ.get("RIFFUSION_SOAK_S", "30"))
    server_pid = server_process.pid
    rss_start = _rss_kib(server_pid)
    deadline = time.monotonic() + duration
    counts: dict[int, int] = {}

    def client(i):
        seed = 1000 * i
        while time.monotonic() < deadline:
            seed += 1
            status = _post(server_url, clip_body(seed=seed % 5 + 10 * i, steps=2)).status_code
            counts[status] = counts.get(status, 0) + 1

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(client, range(8)))
    rss_end = _rss_kib(server_pid)
    print(f"soak: {duration:.0f} s, responses {counts}, RSS {rss_start / 1024:.0f} -> {rss_end / 1024:.0f} MiB")
    assert set(counts) <= {200, 503} and counts.get(200, 0) > 0
    assert rss_end < rss_start * 1.5 + 200 * 1024
