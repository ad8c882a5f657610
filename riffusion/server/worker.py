"""The model worker: one thread owns the pipeline; requests wait in a bounded queue and are batched.

Requests that can share a UNet batch are denoised together; identical requests waiting at the same time
share one job; a request whose client went away (or that timed out) is dropped before it reaches the
model, and stops the model at its next UNet step when it is already running; a failure inside a batch is
retried request by request so one bad request cannot fail its neighbours.

A running batch stops only when every request in it has been left: the samplers keep per-row state
between steps (multistep solvers hold earlier predictions), so a row cannot be dropped from a batch
halfway through; a left request's clip in a batch that goes on is made and thrown away.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import math
import threading
import time
import typing as T

from riffusion.cancellation import Cancelled, CancelToken
from riffusion.datatypes import InferenceInput

log = logging.getLogger("riffusion.server")


class QueueFull(Exception):
    """The queue is full; retry after ``retry_after_s`` seconds."""

    def __init__(self, retry_after_s: int):
        super().__init__(f"the server is busy; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class JobCancelled(Exception):
    """The job was dropped before its clip was made (its clients left, the server stopped, the model's
    replicas pushed back); a client still waiting may retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: int = 1):
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclasses.dataclass(eq=False)
class Job:
    inputs: InferenceInput
    future: concurrent.futures.Future
    waiters: int = 1
    left_because: T.Optional[str] = None  # why the last waiter left (set by the caller before leave())
    enqueued_at: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def cancelled(self) -> bool:
        return self.waiters <= 0


class ModelWorker:
    """Run ``generate(inputs_list) -> results`` on one thread, in batches, for many concurrent callers.

    Parameters
    ----------
    generate : callable
        ``generate(inputs_list, cancel)`` makes one result per request (one UNet batch where possible);
        ``cancel`` is a :class:`~riffusion.cancellation.CancelToken` set when nobody waits for the batch
        any more, upon which ``generate`` raises :class:`~riffusion.cancellation.Cancelled`.
    queue_size : int
        Requests allowed to wait; beyond that :meth:`submit` raises :class:`QueueFull`.
    max_batch_size : int
        Most requests handed to ``generate`` at once.
    batch_wait_s : float
        How long a lone request waits for others to batch with.
    """

    def __init__(
        self,
        generate: T.Callable[[list[InferenceInput], CancelToken], list[T.Any]],
        *,
        queue_size: int = 32,
        max_batch_size: int = 4,
        batch_wait_s: float = 0.015,
    ):
        self._generate = generate
        self.queue_size = queue_size
        self.max_batch_size = max_batch_size
        self.batch_wait_s = batch_wait_s
        self._queue: collections.deque[Job] = collections.deque()
        self._waiting: dict[InferenceInput, Job] = {}  # identical requests share a queued job
        self._cond = threading.Condition()
        self._stopped = False
        self._busy = False
        self._running: list[Job] = []  # the batch the model is making, and its token
        self._running_token = CancelToken()
        self._seconds_per_clip = 1.0  # running estimate, for Retry-After
        self.stats = collections.Counter()
        self._thread = threading.Thread(target=self._run, name="riffusion-model", daemon=True)
        self._thread.start()

    # --- callers -------------------------------------------------------------------------------------------

    def submit(self, inputs: InferenceInput) -> Job:
        """Queue a request (or join an identical waiting one). Raises :class:`QueueFull`."""
        with self._cond:
            if self._stopped:
                raise RuntimeError("the model worker has stopped")
            job = self._waiting.get(inputs)
            if job is not None and not job.future.done():
                job.waiters += 1
                self.stats["shared"] += 1
                return job
            if len(self._queue) >= self.queue_size:
                self.stats["rejected"] += 1
                raise QueueFull(self.retry_after_s())
            job = Job(inputs=inputs, future=concurrent.futures.Future())
            self._queue.append(job)
            self._waiting[inputs] = job
            self.stats["submitted"] += 1
            self._cond.notify()
            return job

    def leave(self, job: Job) -> None:
        """A caller stops waiting (client gone, timeout: ``job.left_because``): once nobody waits for
        ``job``, it is dropped from the queue, or, when every job of the running batch is left, the model
        stops at its next step."""
        with self._cond:
            job.waiters -= 1
            if job.cancelled and job in self._running and all(j.cancelled for j in self._running):
                self._running_token.cancel(job.left_because or "the client went away")

    def retry_after_s(self) -> int:
        backlog = len(self._queue) + (self.max_batch_size if self._busy else 0)
        return max(1, math.ceil(backlog * self._seconds_per_clip / self.max_batch_size))

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopped = True
            for job in self._queue:
                job.future.set_exception(JobCancelled("the server is shutting down"))
            self._queue.clear()
            self._waiting.clear()
            self._running_token.cancel("the server is shutting down")
            self._cond.notify_all()
        self._thread.join(timeout)

    # --- the model thread ------------------------------------------------------------------------------------

    def _take_batch(self) -> list[Job]:
        with self._cond:
            while not self._stopped and not self._queue:
                self._cond.wait()
            if self._stopped:
                return []
            deadline = time.monotonic() + self.batch_wait_s
            while len(self._live_jobs()) < self.max_batch_size and not self._stopped:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch: list[Job] = []
            while self._queue and len(batch) < self.max_batch_size:
                job = self._queue.popleft()
                self._waiting.pop(job.inputs, None)
                if job.cancelled:
                    self.stats["dropped"] += 1
                    job.future.set_exception(JobCancelled("the client went away"))
                    continue
                job.future.set_running_or_notify_cancel()
                batch.append(job)
            self._busy = bool(batch)
            self._running = batch
            self._running_token = CancelToken()
            return batch

    def _live_jobs(self) -> list[Job]:
        return [job for job in self._queue if not job.cancelled]

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                if self._stopped:
                    return
                continue
            started = time.monotonic()
            token = self._running_token
            try:
                results = self._generate([job.inputs for job in batch], token)
                for job, result in zip(batch, results):
                    job.future.set_result(result)
            except Cancelled as exc:
                self._cancelled(batch, exc, time.monotonic() - started)
            except Exception:  # noqa: BLE001 - one failing batch must not stop the server
                if len(batch) == 1:
                    self._fail(batch[0])
                else:
                    # Find the request that fails; the others still get their clips.
                    for job in batch:
                        try:
                            job.future.set_result(self._generate([job.inputs], token)[0])
                        except Cancelled as exc:
                            self._cancelled([job], exc, time.monotonic() - started)
                        except Exception:  # noqa: BLE001
                            self._fail(job)
            if not token.cancelled:
                elapsed = time.monotonic() - started
                self._seconds_per_clip = 0.8 * self._seconds_per_clip + 0.2 * elapsed / len(batch)
                self.stats["batches"] += 1
                self.stats["clips"] += len(batch)
            with self._cond:
                self._busy = False
                self._running = []

    def _cancelled(self, jobs: list[Job], exc: Cancelled, elapsed_s: float) -> None:
        log.info("cancelled %d request(s) after %d UNet steps (%.1f s): %s", len(jobs), exc.steps_done,
                 elapsed_s, exc.reason)
        self.stats["cancelled"] += len(jobs)
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(JobCancelled(f"cancelled: {job.left_because or exc.reason}"))

    def _fail(self, job: Job) -> None:
        log.exception("generation failed")
        self.stats["failed"] += 1
        job.future.set_exception(GenerationFailed("generation failed inside the model"))


class GenerationFailed(Exception):
    """The model raised while making a clip (details are in the server log, not in responses)."""
