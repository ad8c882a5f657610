"""The ingress side of the Ray Serve backend: a worker with :class:`~riffusion.server.worker.ModelWorker`'s
interface whose clips are made by the model deployment's replicas, and the server state that uses it.

The routes, schemas, request checks, response cache and uploads are the single-process server's own
(:func:`riffusion.server.app.create_app` with :class:`RayServerState`); only where a clip is computed
changes. Ray's errors become the server's: a full queue or Ray's back-pressure is a 503 with
``Retry-After``, a replica lost while making a clip is a 503 (the client retries), and a failure inside
the model is a 500.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import math
import threading
import time
import typing as T

from riffusion.datatypes import InferenceInput
from riffusion.seed_images import SeedImage
from riffusion.server.state import ServerState
from riffusion.server.uploads import UPLOAD_PREFIX, UploadStore
from riffusion.server.worker import GenerationFailed, Job, JobCancelled, QueueFull

if T.TYPE_CHECKING:  # pragma: no cover
    from riffusion.protocols import SpectrogramPipeline
    from riffusion.server.settings import ServerSettings

log = logging.getLogger("riffusion.server")

#: How often the ingress asks Ray's controller how many model replicas run, in seconds.
STATUS_PERIOD_S = 2.0


#: An uploaded seed loop sent along with a request (its entry and its PNG): replicas do not share the
#: ingress's folder.
UploadedImage = T.Tuple[SeedImage, bytes]


def uploads_of(inputs: InferenceInput, store: UploadStore) -> tuple[UploadedImage, ...]:
    """The uploaded images ``inputs`` names (its seed loop or mask), read from ``store`` to be sent."""
    found = []
    for image_id in (inputs.seed_image_id, inputs.mask_image_id):
        entry = store.lookup(image_id) if image_id and image_id.startswith(UPLOAD_PREFIX) else None
        if entry is not None:
            found.append((entry, entry.path.read_bytes()))
    return tuple(found)


class RemoteWorker:
    """Send clips to the model deployment; bounded, with identical waiting requests sharing one call.

    Parameters
    ----------
    model : ray.serve.handle.DeploymentHandle
        The model deployment (:class:`riffusion.server.ray.deployments.ModelReplica`).
    queue_size : int
        Requests allowed to wait beyond those the replicas are working on; more get :class:`QueueFull`.
    max_batch_size : int
        Requests one replica makes at once (for the capacity and ``Retry-After``).
    uploads : UploadStore
        The ingress's uploaded loops, sent with the requests that use them.
    """

    def __init__(self, model, *, queue_size: int, max_batch_size: int, uploads: UploadStore):
        self._model = model
        self.queue_size = queue_size
        self.max_batch_size = max_batch_size
        self._uploads = uploads
        self._in_flight: dict[Job, T.Any] = {}  # job -> its DeploymentResponse
        self._waiting: dict[InferenceInput, Job] = {}
        self._counts = collections.Counter()
        self._by_replica = collections.Counter()
        self._seconds_per_clip = 1.0  # running estimate of a replica's seconds per clip, for Retry-After
        self._replicas: dict[str, int] = {}
        self._stopped = threading.Event()
        self._status_thread = threading.Thread(target=self._watch_replicas, name="riffusion-ray-status", daemon=True)
        self._status_thread.start()

    # --- what ModelWorker offers the routes --------------------------------------------------------------------

    def submit(self, inputs: InferenceInput) -> Job:
        """Send ``inputs`` to a replica (or join an identical request in flight); must run in the event loop.
        Raises :class:`QueueFull` when more requests wait than the replicas and the queue hold."""
        if self._stopped.is_set():
            raise RuntimeError("the model worker has stopped")
        job = self._waiting.get(inputs)
        if job is not None and not job.future.done():
            job.waiters += 1
            self._counts["shared"] += 1
            return job
        if len(self._in_flight) >= self._capacity():
            self._counts["rejected"] += 1
            raise QueueFull(self.retry_after_s())
        job = Job(inputs=inputs, future=concurrent.futures.Future())
        job.future.set_running_or_notify_cancel()
        response = self._model.generate.remote(inputs, uploads_of(inputs, self._uploads))
        self._in_flight[job] = response
        self._waiting[inputs] = job
        self._counts["submitted"] += 1
        asyncio.get_running_loop().create_task(self._wait(job, response))
        return job

    def leave(self, job: Job) -> None:
        """A caller stops waiting; the replica's call is cancelled when nobody else waits."""
        job.waiters -= 1
        response = self._in_flight.get(job)
        if job.cancelled and response is not None:
            response.cancel()

    def retry_after_s(self) -> int:
        replicas = max(1, self._replicas.get("RUNNING", 1))
        return max(1, math.ceil(len(self._in_flight) * self._seconds_per_clip / (self.max_batch_size * replicas)))

    @property
    def queue_length(self) -> int:
        """Requests sent to the replicas and not answered yet (running or waiting there)."""
        return len(self._in_flight)

    @property
    def stats(self) -> dict:
        """Counts so far, clips per replica, and the replicas Ray's controller reports by state."""
        return {**self._counts, "clips_by_replica": dict(self._by_replica), "replicas": dict(self._replicas)}

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        for response in list(self._in_flight.values()):
            response.cancel()
        self._status_thread.join(timeout)

    def describe_replica(self) -> dict:
        """What a replica measured at start-up (``web_steps``, ``seconds_per_clip``, ``keeps_up``); blocks,
        so call it off the event loop."""
        return self._model.describe.remote().result()

    # --- inside -----------------------------------------------------------------------------------------------

    def _capacity(self) -> int:
        return self.queue_size + max(1, self._replicas.get("RUNNING", 1)) * self.max_batch_size

    async def _wait(self, job: Job, response) -> None:
        from ray.exceptions import ActorUnavailableError, RayActorError
        from ray.serve.exceptions import BackPressureError, RequestCancelledError

        started = time.monotonic()
        try:
            replica, clip = await response
        except BackPressureError:
            self._counts["rejected"] += 1
            retry_after_s = self.retry_after_s()
            job.future.set_exception(JobCancelled(f"the model replicas are busy; retry in {retry_after_s} s",
                                                  retry_after_s))
        except (RequestCancelledError, asyncio.CancelledError):
            self._counts["dropped"] += 1
            job.future.set_exception(JobCancelled("the client went away"))
        except (RayActorError, ActorUnavailableError):
            log.warning("a model replica went away while making a clip")
            self._counts["replica_lost"] += 1
            job.future.set_exception(JobCancelled("the model replica making this clip went away; retry"))
        except Exception:  # noqa: BLE001 - answered as a clean 500, logged here
            log.exception("the model deployment failed")
            self._counts["failed"] += 1
            job.future.set_exception(GenerationFailed("generation failed inside the model"))
        else:
            if clip is None:
                self._counts["failed"] += 1
                job.future.set_exception(GenerationFailed("generation failed inside the model"))
            else:
                self._counts["clips"] += 1
                self._by_replica[replica] += 1
                self._seconds_per_clip = 0.8 * self._seconds_per_clip + 0.2 * (time.monotonic() - started)
                job.future.set_result(clip)
        finally:
            self._in_flight.pop(job, None)
            if self._waiting.get(job.inputs) is job:
                del self._waiting[job.inputs]

    def _watch_replicas(self) -> None:
        """Keep :attr:`stats`' replica states fresh (Ray's controller, asked off the event loop)."""
        from ray import serve

        while not self._stopped.is_set():
            try:
                context = serve.get_replica_context()
                app = serve.status().applications[context.app_name]
                states = app.deployments[self._model.deployment_name].replica_states
                self._replicas = {str(getattr(state, "value", state)): count for state, count in states.items()}
            except Exception as exc:  # noqa: BLE001 - health must not fail because the controller is slow
                log.debug("replica status unavailable: %s", exc)
            self._stopped.wait(STATUS_PERIOD_S)


class RayServerState(ServerState):
    """:class:`ServerState` whose clips are made by the model deployment (the ingress's own copy of the
    model, on CPU, only answers what routes ask of a model: its geometry, defaults, seed images and step
    rules).

    Parameters
    ----------
    settings : ServerSettings
    pipeline : SpectrogramPipeline
        The ingress's copy of the model; never run.
    model : ray.serve.handle.DeploymentHandle, keyword-only
        The model deployment.
    """

    def __init__(self, settings: "ServerSettings", pipeline: "SpectrogramPipeline", *, model):
        super().__init__(settings, pipeline)
        self.worker.stop()  # the single-process worker never runs here
        self.worker = RemoteWorker(model, queue_size=settings.queue_size, max_batch_size=settings.max_batch_size,
                                   uploads=self.uploads)

    def warm_up(self) -> None:
        """Take what a replica measured at its start-up: the steps the web app should ask for and whether
        they keep up with playback (replicas run the single-process server's warm-up on their device)."""
        report = self.worker.describe_replica()
        self.web_steps = report["web_steps"]
        self.seconds_per_clip = report["seconds_per_clip"]
        self.keeps_up = report["keeps_up"]
