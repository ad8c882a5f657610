"""What one running server holds: the pipeline, the worker that owns it, the response cache and the
defaults it announces to the web app. The app's lifespan builds one :class:`ServerState`; routes get it
through :func:`riffusion.server.dependencies.get_state`."""

from __future__ import annotations

import dataclasses
import logging
import time
import typing as T

from riffusion.datatypes import InferenceInput
from riffusion.server.cache import ResponseCache
from riffusion.server.settings import ServerSettings
from riffusion.server.worker import ModelWorker

if T.TYPE_CHECKING:  # pragma: no cover
    from riffusion.protocols import SpectrogramPipeline

log = logging.getLogger("riffusion.server")


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
        self.default_steps = self.info.num_inference_steps
        # Steps the web app asks for: the setting, else measured by warm_up (the model's default until then).
        self.web_steps = settings.num_inference_steps or self.default_steps
        self.started_at = time.time()

    def _generate(self, inputs_list: list[InferenceInput]):
        from riffusion.generation import generate_clips

        return generate_clips(self.pipeline, inputs_list, phase=self.phase, batch_size=len(inputs_list))

    def warm_up(self) -> None:
        """One clip through the whole path; sets the steps the web app should use to keep up with playback."""
        from riffusion.datatypes import PromptInput
        from riffusion.generation import converter_for
        from riffusion.seed_images import load_seed_image

        steps = self.settings.num_inference_steps or self.default_steps
        prompt = PromptInput(prompt="warm up", seed=0)
        # The phase kernels compile (or load from numba's disk cache) on first use: turn the seed image
        # into audio before the clock starts, or the first start after an install would count seconds of
        # compilation as diffusion time and give the web app too few steps.
        converter_for(self.pipeline, self.phase).waveform_from_image(
            load_seed_image(self.default_seed_image(), self.pipeline)
        )
        started = time.monotonic()
        clip = self._generate([InferenceInput(start=prompt, end=prompt, alpha=0.0, num_inference_steps=steps,
                                              seed_image_id=self.default_seed_image())])[0]
        elapsed = time.monotonic() - started
        if self.settings.num_inference_steps is None:
            # Attribute all the time to the steps (conservative) and keep 30% headroom for the browser.
            per_step = elapsed / steps
            self.web_steps = int(max(1, min(steps, (0.7 * clip.duration_s) // max(per_step, 1e-6))))
        log.info("warm-up: %.2f s for a %.2f s clip at %d steps; the web app will ask for %d steps",
                 elapsed, clip.duration_s, steps, self.web_steps)

    def default_seed_image(self) -> str:
        from riffusion.seed_images import DEFAULT_SEED_IMAGE

        return DEFAULT_SEED_IMAGE

    def stop(self) -> None:
        """Fail what still waits and stop the worker thread."""
        self.worker.stop()
