"""Cancellation on a real server: a request past its time limit, or whose client went away, stops the model at
its next UNet step, and the requests queued behind it are answered. Each UNet evaluation of the tiny model
is slowed to SLOW_STEP_S by a forward hook, so that a slow request is many seconds of work."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import httpx
import pytest

from .conftest import clip_body

SLOW_STEP_S = 0.25
SLOW_STEPS = 100  # 75 UNet evaluations at denoising 0.75: about 19 s of work


class UNetLog:
    """Counts the tiny model's UNet evaluations (and their batch sizes), each slowed to SLOW_STEP_S."""

    def __init__(self, unet):
        self.batches: list[int] = []
        self.lock = threading.Lock()
        self.handle = unet.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        with self.lock:
            self.batches.append(int(args[0].shape[0]))
        time.sleep(SLOW_STEP_S)

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.batches)

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count:
            assert time.monotonic() < deadline, f"the model ran {self.count} UNet evaluations, expected {count}"
            time.sleep(0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def post(url: str, prompt: str, steps: int, timeout: float = 120.0):
    """POST /run_inference/ and return (status, when the answer came); None as status if the client gave up."""
    try:
        status = httpx.post(f"{url}/run_inference/", json=clip_body(prompt=prompt, steps=steps), timeout=timeout).status_code
    except httpx.TimeoutException:
        status = None
    return status, time.monotonic()


def stats(url: str) -> dict:
    return httpx.get(f"{url}/api/v1/health").json()["stats"]


@pytest.fixture(scope="module", autouse=True)
def warm(tiny_pipeline):
    """One clip made and encoded before the servers start: the first compiles the phase kernels, which
    would count against a request's time limit."""
    from riffusion.datatypes import InferenceInput, PromptInput
    from riffusion.generation import generate_clips
    from riffusion.server.clips import encode_clip

    end = PromptInput(prompt="warm up", seed=0, denoising=0.75, guidance=7.0)
    [clip] = generate_clips(tiny_pipeline, [InferenceInput(start=end, end=end, alpha=0.0, num_inference_steps=2,
                                                           seed_image_id="og_beat")])
    encode_clip(clip, "mp3", "jpeg")


@pytest.fixture
def pool():
    with concurrent.futures.ThreadPoolExecutor(4) as executor:
        yield executor


def test_a_timed_out_request_stops_and_the_one_queued_behind_it_is_answered(in_process_server, tiny_pipeline,
                                                                            pool, caplog):
    timeout_s = 12.0
    with caplog.at_level("INFO", logger="riffusion.server"), UNetLog(tiny_pipeline.unet) as unet, \
            in_process_server(request_timeout_s=timeout_s, max_batch_size=1) as server:
        started = time.monotonic()
        slow = pool.submit(post, server.url, "slow jazz", SLOW_STEPS)
        unet.wait_for(2)
        # Late in the slow request's time, a short one queues behind it: it has most of its own time
        # limit left once the slow one is stopped (and all of it would pass if the slow one went on).
        time.sleep(max(0.0, timeout_s - 3.0 - (time.monotonic() - started)))
        quick = pool.submit(post, server.url, "quick rock", 2)
        slow_status, slow_answered = slow.result()
        evaluations_at_504 = unet.count
        quick_status, quick_answered = quick.result()
        worker = stats(server.url)
    assert slow_status == 504 and quick_status == 200
    # The token was set before the 504 went out: at most the evaluation in flight, then the quick clip's one.
    assert unet.count - evaluations_at_504 <= 2
    assert unet.count < SLOW_STEPS * 0.75
    # The quick request was answered long before the slow one's work would have ended.
    assert quick_answered - started < SLOW_STEPS * 0.75 * SLOW_STEP_S
    assert worker["cancelled"] == 1 and worker["clips"] == 1
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cancelled")]
    assert "cancelled 1 request(s) after" in line and f"the request timed out ({timeout_s:g} s)" in line


def test_a_client_that_goes_away_stops_its_request(in_process_server, tiny_pipeline, pool, caplog):
    with caplog.at_level("INFO", logger="riffusion.server"), UNetLog(tiny_pipeline.unet) as unet, \
            in_process_server(max_batch_size=1) as server:
        started = time.monotonic()
        gone = pool.submit(post, server.url, "slow jazz", SLOW_STEPS, timeout=1.5)  # gives up after 1.5 s
        unet.wait_for(2)
        queued = pool.submit(post, server.url, "quick rock", 2)
        assert gone.result()[0] is None
        queued_status, queued_answered = queued.result()
        worker = stats(server.url)
    assert queued_status == 200
    assert unet.count < SLOW_STEPS * 0.75
    assert queued_answered - started < SLOW_STEPS * 0.75 * SLOW_STEP_S
    assert worker["cancelled"] == 1 and worker["clips"] == 1
    assert any("the client went away" in r.getMessage() for r in caplog.records
               if r.getMessage().startswith("cancelled"))


def test_a_shared_batch_goes_on_for_those_still_waiting_and_stops_when_nobody_waits(in_process_server,
                                                                                    tiny_pipeline, pool):
    steps = 24  # 18 UNet evaluations
    with UNetLog(tiny_pipeline.unet) as unet, \
            in_process_server(max_batch_size=2, batch_wait_ms=3000) as server:
        # One client of a batch of two goes away: the other still gets its clip, from the same batch.
        gone = pool.submit(post, server.url, "jazz", steps, timeout=2.0)
        waiting = pool.submit(post, server.url, "rock", steps)
        assert gone.result()[0] is None
        assert waiting.result()[0] == 200
        assert unet.batches == [4] * 18  # two requests, guided: one batch of 4 for every step
        assert stats(server.url).get("cancelled", 0) == 0
        # Both clients of a batch go away: the batch stops.
        first = pool.submit(post, server.url, "jazz 2", SLOW_STEPS, timeout=2.0)
        second = pool.submit(post, server.url, "rock 2", SLOW_STEPS, timeout=2.0)
        assert first.result()[0] is None and second.result()[0] is None
        deadline = time.monotonic() + 30
        while stats(server.url).get("cancelled", 0) < 2:
            assert time.monotonic() < deadline, "the abandoned batch was not cancelled"
            time.sleep(0.2)
    assert len(unet.batches) - 18 < SLOW_STEPS * 0.75


def test_a_continuation_nobody_waits_for_stops_after_the_clip_it_is_making(in_process_server, tiny_pipeline, pool):
    """A long task (a minute of continuation: many clips) stops between clips once its client has gone, and
    the clip queued behind it is answered."""
    from .test_continue import encoded

    def carry_on(url: str):
        try:
            return httpx.post(f"{url}/api/v1/continue", json={"audio": encoded(1.0), "prompt": "jazz", "seconds": 60,
                                                               "num_inference_steps": 8}, timeout=2.0).status_code
        except httpx.TimeoutException:
            return None

    with UNetLog(tiny_pipeline.unet) as unet, in_process_server(max_batch_size=1) as server:
        started = time.monotonic()
        gone = pool.submit(carry_on, server.url)
        unet.wait_for(2)
        queued = pool.submit(post, server.url, "quick rock", 2)
        assert gone.result() is None
        queued_status, queued_answered = queued.result()
    assert queued_status == 200
    # 60 s is dozens of clips of several UNet evaluations each; it stopped after the one in progress
    assert unet.count < 40
    assert queued_answered - started < 30
