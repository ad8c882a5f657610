"""The two Ray Serve deployments: the model replicas, and the HTTP ingress that wraps the server's app.

:class:`ModelReplica` loads the model on its device, runs the single-process server's warm-up there, and
makes clips in batches of compatible requests (``serve.batch``: one UNet batch per call of
:func:`riffusion.generation.generate_clips`, a failure retried request by request so one bad request
cannot fail its neighbours). :class:`Ingress` is :func:`riffusion.server.app.create_app` with a
:class:`~riffusion.server.ray.remote.RayServerState`: every route, schema and check of the single-process
server, with clips sent to the replicas. This module imports Ray; only :mod:`riffusion.server.ray.run`
imports it, and only when the Ray backend is chosen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import shutil
import tempfile
import typing as T
from pathlib import Path

from ray import serve

from riffusion.datatypes import InferenceInput
from riffusion.server.ray.remote import RayServerState, UploadedImage
from riffusion.server.settings import ServerSettings

log = logging.getLogger("riffusion.server")


class ReplicaUploads:
    """Uploaded loops this replica was sent, found by their ingress ids (a private seed-image lookup)."""

    def __init__(self):
        from riffusion.seed_images import add_private_lookup

        self.directory = Path(tempfile.mkdtemp(prefix="riffusion-replica-uploads-"))
        self._entries: dict = {}
        add_private_lookup(self.lookup)

    def add(self, image: UploadedImage) -> None:
        entry, png = image
        if entry.id in self._entries:
            return
        path = self.directory / f"{entry.id}.png"
        path.write_bytes(png)
        self._entries[entry.id] = dataclasses.replace(entry, path=path)

    def lookup(self, image_id: str):
        return self._entries.get(image_id)

    def close(self) -> None:
        from riffusion.seed_images import remove_private_lookup

        remove_private_lookup(self.lookup)
        shutil.rmtree(self.directory, ignore_errors=True)


class ModelReplica:
    """One copy of the model (one GPU, or CPU cores): clips for the ingress, in batches.

    Parameters
    ----------
    settings : ServerSettings
        The server's settings (model, device, phase, batch size and wait, warm-up).
    """

    def __init__(self, settings: ServerSettings):
        from riffusion.loading import load_pipeline
        from riffusion.server.state import ServerState

        pipeline = load_pipeline(settings.model, device=settings.device)
        # The single-process state measures the warm-up; its own worker thread is not used here.
        self._state = ServerState(settings, pipeline)
        self._state.worker.stop()
        if settings.warmup:
            self._state.warm_up()
        self._uploads = ReplicaUploads()
        self._replica_id = serve.get_replica_context().replica_id.unique_id
        self.generate_batch.set_max_batch_size(settings.max_batch_size)
        self.generate_batch.set_batch_wait_timeout_s(settings.batch_wait_ms / 1000.0)

    def describe(self) -> dict:
        """What the warm-up measured: the steps the web app should ask for, seconds per clip, keeps up."""
        state = self._state
        return {"web_steps": state.web_steps, "seconds_per_clip": state.seconds_per_clip, "keeps_up": state.keeps_up}

    async def generate(self, inputs: InferenceInput, uploads: tuple[UploadedImage, ...] = ()):
        """``(replica id, clip)``, with ``None`` for a clip that failed inside the model (logged here)."""
        for image in uploads:
            self._uploads.add(image)
        return self._replica_id, await self.generate_batch(inputs)

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.015)
    async def generate_batch(self, inputs_list: list[InferenceInput]) -> list:
        return await asyncio.to_thread(self._generate, inputs_list)

    def _generate(self, inputs_list: list[InferenceInput]) -> list:
        from riffusion.generation import generate_clips

        def run(batch):
            return generate_clips(self._state.pipeline, batch, phase=self._state.phase, batch_size=len(batch))

        try:
            return run(inputs_list)
        except Exception:  # noqa: BLE001 - find the failing request; the others still get their clips
            if len(inputs_list) == 1:
                log.exception("generation failed")
                return [None]
        clips = []
        for inputs in inputs_list:
            try:
                clips.append(run([inputs])[0])
            except Exception:  # noqa: BLE001
                log.exception("generation failed")
                clips.append(None)
        return clips

    def __del__(self):
        uploads = getattr(self, "_uploads", None)
        if uploads is not None:
            uploads.close()
        state = getattr(self, "_state", None)
        if state is not None:
            state.uploads.close()


@serve.ingress()
class Ingress:
    """The server's HTTP app (:func:`riffusion.server.app.create_app`) in front of the model replicas.

    Parameters
    ----------
    model : DeploymentHandle
        The model deployment.
    settings : ServerSettings
    """

    def __init__(self, model, settings: ServerSettings):
        from riffusion.loading import load_pipeline

        self._model = model
        self._settings = settings
        # Answers the routes' questions about the model (geometry, seed images, step rules); never run.
        self._pipeline = load_pipeline(settings.model, device="cpu")

    def __serve_build_asgi_app__(self):
        from riffusion.server.app import create_app

        return create_app(self._settings, self._pipeline,
                          state_factory=functools.partial(RayServerState, model=self._model))


def replica_options(settings: ServerSettings, *, replicas: T.Optional[int] = None,
                    autoscaling: T.Optional[dict] = None) -> dict:
    """Ray Serve options of :class:`ModelReplica` for ``settings``: a fixed number of ``replicas``, or an
    ``autoscaling`` config (its defaults: scale on queue length, ``max_batch_size`` requests per replica).

    Raises
    ------
    ValueError
        If both or neither of ``replicas`` and ``autoscaling`` are given, or ``replicas`` < 1.
    """
    if (replicas is None) == (autoscaling is None):
        raise ValueError("give either replicas (a fixed count) or autoscaling (a config), not both or neither")
    if replicas is not None and replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    on_gpu = settings.device.startswith("cuda") or settings.device == "auto" and _has_cuda()
    options = {
        # One batch running and the next one forming; Ray queues the rest, up to queue_size per caller.
        "max_ongoing_requests": 2 * settings.max_batch_size,
        "max_queued_requests": settings.queue_size,
        "ray_actor_options": {"num_gpus": 1, "num_cpus": 1} if on_gpu else {"num_cpus": 1},
        "health_check_period_s": 2,
        "graceful_shutdown_timeout_s": 5,
    }
    if replicas is not None:
        options["num_replicas"] = replicas
    else:
        options["autoscaling_config"] = {
            "target_ongoing_requests": settings.max_batch_size, "min_replicas": 1, "max_replicas": 4,
            "upscale_delay_s": 10, "downscale_delay_s": 120, **autoscaling,
        }
    return options


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def build_application(settings: ServerSettings, *, replicas: T.Optional[int] = None,
                      autoscaling: T.Optional[dict] = None):
    """The Ray Serve application: :class:`Ingress` over :class:`ModelReplica` (see :func:`replica_options`).

    The ingress takes no GPU and a fraction of a CPU; it holds the response cache, so identical requests are
    answered once for all replicas.
    """
    model = serve.deployment(ModelReplica, name="ModelReplica",
                             **replica_options(settings, replicas=replicas, autoscaling=autoscaling))
    ingress = serve.deployment(Ingress, name="Ingress", max_ongoing_requests=1000,
                               ray_actor_options={"num_cpus": 0.1})
    return ingress.bind(model.bind(settings), settings)
