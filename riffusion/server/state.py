"""What one running server holds: the pipeline, the worker that owns it, the response cache, the uploaded
seed loops and the defaults it announces to the web app. The app's lifespan builds one
:class:`ServerState`; routes get it through :func:`riffusion.server.dependencies.get_state`."""

from __future__ import annotations

import dataclasses
import logging
import time
import typing as T

from riffusion.datatypes import InferenceInput
from riffusion.server.cache import ResponseCache
from riffusion.server.settings import ServerSettings
from riffusion.server.uploads import UploadStore
from riffusion.server.worker import ModelWorker

if T.TYPE_CHECKING:  # pragma: no cover
    from riffusion.cancellation import CancelToken
    from riffusion.protocols import SpectrogramPipeline

log = logging.getLogger("riffusion.server")

#: The warm-up's second timed clip runs this many steps more than its first.
WARMUP_EXTRA_STEPS = 2
#: The share of a clip's duration generation may take and still keep up (the rest: network, browser).
PLAYBACK_SHARE = 0.7


@dataclasses.dataclass(frozen=True)
class PipelineInfo:
    """What the server reports about its model and asks of it by default."""

    model_id: str
    device: str
    num_inference_steps: int  # the model's own default
    guidance: float  # the guidance scale the web app should ask for
    denoising: float  # the img2img strength from the seed loop the web app should ask for
    rhythm_input: bool  # whether the model follows a beat grid (the loop's, or a requested tempo)


def describe_pipeline(pipeline: "SpectrogramPipeline", fallback_model_id: T.Optional[str]) -> PipelineInfo:
    """What ``pipeline`` declares (:class:`~riffusion.protocols.SpectrogramPipeline`), read once.

    Raises
    ------
    TypeError
        If ``pipeline`` lacks members of the protocol (named in the message).
    """
    from riffusion.protocols import missing_members

    missing = missing_members(pipeline)
    if missing:
        raise TypeError(f"{type(pipeline).__name__} is not a SpectrogramPipeline: it lacks {', '.join(missing)}")
    return PipelineInfo(
        model_id=str(pipeline.model_id or fallback_model_id),
        device=str(pipeline.device),
        num_inference_steps=int(pipeline.default_num_inference_steps),
        guidance=float(pipeline.default_guidance),
        denoising=float(pipeline.default_denoising),
        rhythm_input=bool(pipeline.has_rhythm_input),
    )


def check_web_steps(settings: ServerSettings, pipeline: "SpectrogramPipeline") -> int:
    """The fewest steps the web app may ask for: those that still denoise at the model's own denoising.

    Raises
    ------
    ValueError
        If ``settings.num_inference_steps`` is fewer (the jam would play the seed loop whatever the prompt).
    """
    denoising = float(pipeline.default_denoising)
    fewest = int(pipeline.min_num_inference_steps(denoising))
    if settings.num_inference_steps is not None and settings.num_inference_steps < fewest:
        raise ValueError(
            f"num_inference_steps={settings.num_inference_steps} runs no UNet evaluation at "
            f"{pipeline.model_id or settings.model}'s denoising {denoising:g} (the jam would play the seed loop "
            f"whatever the prompt); use at least {fewest}"
        )
    return fewest


class ServerState:
    """The pipeline, its worker, the response cache and the defaults for the web app.

    Parameters
    ----------
    settings : ServerSettings
    pipeline : SpectrogramPipeline
        The loaded model; only the worker's thread runs it.
    """

    def __init__(self, settings: ServerSettings, pipeline: "SpectrogramPipeline"):
        from riffusion.generation import check_phase

        self.settings = settings
        self.pipeline = pipeline
        self.info = describe_pipeline(pipeline, settings.model)
        self.phase = check_phase(settings.phase)
        self.worker = ModelWorker(
            self._generate,
            queue_size=settings.queue_size,
            max_batch_size=settings.max_batch_size,
            batch_wait_s=settings.batch_wait_ms / 1000.0,
        )
        self.cache = ResponseCache(settings.cache_size, settings.cache_max_bytes)
        # Uploaded seed loops, usable by id until they expire; their temporary folder goes in stop().
        self.uploads = UploadStore()
        self.default_steps = self.info.num_inference_steps
        # The fewest steps that still denoise from the seed loop at the web app's denoising.
        self.min_steps = check_web_steps(settings, pipeline)
        # Steps the web app asks for: the setting, else measured by warm_up (the model's default until then).
        self.web_steps = max(settings.num_inference_steps or self.default_steps, self.min_steps)
        # What warm_up measured: seconds per clip at web_steps, and whether that keeps up with playback
        # (None until measured).
        self.seconds_per_clip: T.Optional[float] = None
        self.keeps_up: T.Optional[bool] = None
        self.started_at = time.time()

    def _generate(self, inputs_list: list[InferenceInput], cancel: T.Optional["CancelToken"] = None):
        from riffusion.generation import generate_clips

        if any(callable(item) for item in inputs_list):  # a task that drives the pipeline itself (a continuation)
            return [item(self.pipeline) if callable(item) else self._generate([item], cancel)[0] for item in inputs_list]
        return generate_clips(self.pipeline, inputs_list, phase=self.phase, batch_size=len(inputs_list),
                              cancel=cancel)

    def _timed_clip(self, steps: int) -> tuple[float, float]:
        """Seconds one warm-up clip of ``steps`` takes through the whole path, and the clip's duration."""
        from riffusion.datatypes import PromptInput

        prompt = PromptInput(prompt="warm up", seed=0, denoising=self.info.denoising, guidance=self.info.guidance)
        started = time.monotonic()
        clip = self._generate([InferenceInput(start=prompt, end=prompt, alpha=0.0, num_inference_steps=steps,
                                              seed_image_id=self.default_seed_image())])[0]
        return time.monotonic() - started, clip.duration_s

    def warm_up(self) -> None:
        """Run the whole path and measure it, with few steps; set the steps the web app should use.

        One untimed clip at the fewest steps that denoise (caches, kernels), then two timed clips
        :data:`WARMUP_EXTRA_STEPS` steps apart. A clip's time grows with its UNet evaluations, not with the
        steps asked for (img2img at the model's denoising runs only the last part of the schedule:
        :meth:`~riffusion.protocols.SpectrogramPipeline.unet_evaluations`), so the two clips' difference
        over their difference in evaluations is the cost of one evaluation, and the rest the cost of a
        clip's fixed work (text, VAE, phase reconstruction). The web app's steps are the most (up to the
        model's default) whose evaluations fit :data:`PLAYBACK_SHARE` of a clip's duration, never fewer than
        :attr:`min_steps`; when even those do not fit, :attr:`keeps_up` is False and a warning is logged.
        """
        denoising = float(self.info.denoising)

        def evaluations(steps: int) -> int:
            return int(self.pipeline.unet_evaluations(steps, denoising))

        low = self.min_steps
        high = low + WARMUP_EXTRA_STEPS
        self._timed_clip(low)
        low_s, duration_s = self._timed_clip(low)
        high_s, _ = self._timed_clip(high)
        low_e, high_e = evaluations(low), evaluations(high)
        per_eval = (high_s - low_s) / (high_e - low_e) if high_e > low_e else 0.0
        if per_eval <= 0:  # timing noise larger than an evaluation's cost, or no extra one: count all as evaluations
            per_eval = high_s / max(high_e, 1)
        fixed_s = max(low_s - low_e * per_eval, 0.0)
        budget_s = PLAYBACK_SHARE * duration_s
        if self.settings.num_inference_steps is None:
            fitting = [steps for steps in range(self.min_steps, max(self.default_steps, self.min_steps) + 1)
                       if fixed_s + evaluations(steps) * per_eval <= budget_s]
            self.web_steps = max(fitting, default=self.min_steps)
        self.seconds_per_clip = fixed_s + evaluations(self.web_steps) * per_eval
        self.keeps_up = self.seconds_per_clip <= budget_s
        log.info("warm-up: %.3f s per UNet evaluation and %.2f s per clip besides; the web app will ask for %d steps "
                 "(%d evaluations, %.2f s for a %.2f s clip)", per_eval, fixed_s, self.web_steps,
                 evaluations(self.web_steps), self.seconds_per_clip, duration_s)
        if not self.keeps_up:
            log.warning("this machine cannot keep up with playback on %s: %d steps (the fewest that denoise at "
                        "%g) take about %.0f s per %.2f s clip; the jam will fall behind (a GPU keeps up)",
                        self.info.model_id, self.web_steps, self.info.denoising, self.seconds_per_clip, duration_s)

    def default_seed_image(self) -> str:
        from riffusion.seed_images import DEFAULT_SEED_IMAGE

        return DEFAULT_SEED_IMAGE

    def stop(self) -> None:
        """Fail what still waits, stop the worker thread, and remove the uploads."""
        self.worker.stop()
        self.uploads.close()
