"""The FastAPI application: the original ``/run_inference/`` contract, the native ``/api/v1`` API and the
web app, in front of one model worker."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import logging
import threading
import time
import typing as T
from pathlib import Path

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from riffusion.datatypes import InferenceInput
from riffusion.server.schemas import GenerateBody, InferenceBody
from riffusion.server.settings import ServerSettings
from riffusion.server.worker import GenerationFailed, JobCancelled, ModelWorker, QueueFull

log = logging.getLogger("riffusion.server")

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
AUDIO_MEDIA = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg"}
IMAGE_MEDIA = {"jpeg": "image/jpeg", "png": "image/png"}


class ApiError(Exception):
    """An error answered as JSON ``{"detail": ...}`` with ``status`` (and optional headers)."""

    def __init__(self, status: int, detail: T.Any, headers: T.Optional[dict[str, str]] = None):
        super().__init__(str(detail))
        self.status, self.detail, self.headers = status, detail, headers


# --- state ----------------------------------------------------------------------------------------------------


class ServerState:
    """What the lifespan builds: the pipeline, its worker, caches and the defaults for the web app."""

    def __init__(self, settings: ServerSettings, pipeline):
        from riffusion.generation import check_phase

        self.settings = settings
        self.pipeline = pipeline
        self.phase = check_phase(settings.phase)
        self.worker = ModelWorker(
            self._generate,
            queue_size=settings.queue_size,
            max_batch_size=settings.max_batch_size,
            batch_wait_s=settings.batch_wait_ms / 1000.0,
        )
        self._responses: collections.OrderedDict[tuple, tuple[dict, int]] = collections.OrderedDict()
        self._cached_bytes = 0
        self._cache_hits = 0
        self._lock = threading.Lock()
        config_steps = getattr(getattr(pipeline, "config", None), "num_inference_steps", None)
        self.default_steps = int(getattr(pipeline, "default_num_inference_steps", None) or config_steps or 25)
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

    def cached(self, key: tuple) -> T.Optional[dict]:
        with self._lock:
            if key in self._responses:
                self._responses.move_to_end(key)
                self._cache_hits += 1
                return self._responses[key][0]
        return None

    def remember(self, key: tuple, response: dict) -> None:
        """Keep an encoded response, least recently used out first, bounded in count and in bytes."""
        size = sum(len(value) for value in response.values() if isinstance(value, str))
        if self.settings.cache_size <= 0 or size > self.settings.cache_max_bytes:
            return
        with self._lock:
            if key in self._responses:
                self._cached_bytes -= self._responses.pop(key)[1]
            self._responses[key] = (response, size)
            self._cached_bytes += size
            while len(self._responses) > self.settings.cache_size or self._cached_bytes > self.settings.cache_max_bytes:
                self._cached_bytes -= self._responses.popitem(last=False)[1][1]

    @property
    def cache_stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._responses), "bytes": self._cached_bytes, "hits": self._cache_hits}


def get_state(request: Request) -> ServerState:
    return request.app.state.riffusion


# --- request bodies ----------------------------------------------------------------------------------------------


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, f"request body of {declared} bytes is larger than the limit of {limit} bytes")
        except ValueError:
            raise ApiError(400, f"invalid Content-Length header {declared[:40]!r}") from None
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"request body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to read an answer; without this Starlette logs a traceback for every client
        # that hangs up halfway through sending its request.
        raise ApiError(499, f"the client went away after sending {size} bytes of the request body") from None
    return b"".join(chunks)


def _validation_detail(error: ValidationError) -> list[dict]:
    # No echo of the input: prompts can be large and are not logged or returned by default.
    return [{"loc": ["body", *error_["loc"]], "msg": error_["msg"], "type": error_["type"]} for error_ in error.errors()]


async def parse_json_body(request: Request, model: type[BaseModel], limit: int) -> T.Any:
    """Parse the body as JSON whatever the Content-Type (the original app sent text/plain)."""
    raw = await _read_body(request, limit)
    if not raw.strip():
        raise ApiError(400, "the request body is empty; expected a JSON object")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}"[:300]) from None
    if not isinstance(data, dict):
        raise ApiError(422, f"the request body must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, _validation_detail(exc)) from None


def _check_request(state: ServerState, body: InferenceBody) -> None:
    """What the schema cannot know: this server's step limit and this model's seed images."""
    from riffusion.seed_images import find_seed_image

    limit = state.settings.max_inference_steps
    if body.num_inference_steps is not None and body.num_inference_steps > limit:
        raise ApiError(422, [{"loc": ["body", "num_inference_steps"], "type": "less_than_equal",
                              "msg": f"this server allows at most {limit} steps"}])

    for field, image_id, kind in (("seed_image_id", body.seed_image_id, "seed"),
                                  ("mask_image_id", body.mask_image_id, "mask")):
        if image_id is None:
            continue
        try:
            find_seed_image(image_id, state.pipeline, kind=kind)
        except (LookupError, ValueError) as exc:
            raise ApiError(422, [{"loc": ["body", field], "msg": str(exc)[:500], "type": "value_error"}]) from None


# --- generation -------------------------------------------------------------------------------------------------


async def _run_clip(request: Request, state: ServerState, inputs: InferenceInput):
    """Queue one clip and wait for it, dropping the work if the client goes away or time runs out."""
    try:
        job = state.worker.submit(inputs)
    except QueueFull as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    future = asyncio.wrap_future(job.future)
    deadline = time.monotonic() + state.settings.request_timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiError(504, f"the clip took longer than {state.settings.request_timeout_s:g} s")
            done, _ = await asyncio.wait({future}, timeout=min(0.5, remaining))
            if done:
                return future.result()
            if await request.is_disconnected():
                raise ApiError(499, "the client went away")
    except GenerationFailed as exc:
        raise ApiError(500, str(exc)) from None
    except JobCancelled as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": "1"}) from None
    finally:
        if not future.done():
            state.worker.leave(job)
            # The worker may still fail the job (JobCancelled) after we stop waiting: retrieve that
            # exception here, or asyncio logs "Future exception was never retrieved" for it.
            future.add_done_callback(_discard_outcome)


def _discard_outcome(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def _encode(clip, audio_format: str, image_format: str) -> dict:
    from riffusion.audio import encode_audio
    from riffusion.image import encode_image

    return {
        "image": _data_url(IMAGE_MEDIA[image_format], encode_image(clip.image, image_format)),
        "audio": _data_url(AUDIO_MEDIA[audio_format], encode_audio(clip.waveform, clip.sample_rate, audio_format)),
        "duration_s": round(float(clip.duration_s), 4),
    }


async def _clip_response(request: Request, state: ServerState, inputs: InferenceInput, audio_format: str,
                         image_format: str) -> dict:
    key = (inputs, audio_format, image_format)
    cached = state.cached(key)
    if cached is not None:
        return cached
    if state.settings.log_prompts:
        log.info("clip: %r -> %r alpha=%.3f", inputs.start.prompt, inputs.end.prompt, inputs.alpha)
    clip = await _run_clip(request, state, inputs)
    response = await anyio.to_thread.run_sync(_encode, clip, audio_format, image_format)
    state.remember(key, response)
    return response


# --- the app ------------------------------------------------------------------------------------------------------


def default_guidance(pipeline) -> float:
    """The guidance scale the web app should ask for: the model's own where it declares one (a
    riffusion-small ``guidance_scale``, tuned with its evaluation), else the original app's 7."""
    value = getattr(getattr(pipeline, "config", None), "guidance_scale", None)
    return float(value) if isinstance(value, (int, float)) else 7.0


def create_app(settings: T.Optional[ServerSettings] = None, pipeline=None) -> FastAPI:
    """The server application.

    Parameters
    ----------
    settings : ServerSettings, optional
    pipeline : RiffusionPipeline, optional
        Use this model instead of loading ``settings.model`` at start-up.
    """
    settings = settings or ServerSettings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        model = pipeline
        if model is None:
            from riffusion.loading import load_pipeline

            model = await anyio.to_thread.run_sync(lambda: load_pipeline(settings.model, device=settings.device))
        state = ServerState(settings, model)
        if settings.warmup:
            await anyio.to_thread.run_sync(state.warm_up)
        app.state.riffusion = state
        log.info("model %s ready on %s", getattr(model, "model_id", settings.model), getattr(model, "device", "?"))
        try:
            yield
        finally:
            state.worker.stop()

    app = FastAPI(
        title="Riffusion",
        version=__import__("riffusion").__version__,
        description="Real-time music generation with diffusion on spectrogram images. `/run_inference/` is "
        "the original server's contract; `/api/v1/` is the native API.",
        lifespan=lifespan,
    )
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Content-Type"])

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, exc: RequestValidationError):
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unexpected error")
        return JSONResponse({"detail": "internal server error"}, status_code=500)

    # --- the original contract ---------------------------------------------------------------------------------

    @app.post("/run_inference/", tags=["compat"], summary="The original server's endpoint",
              openapi_extra={"x-body-model": "InferenceBody"})
    async def run_inference(request: Request, state: ServerState = Depends(get_state)):
        """One clip as the original server made it: JPEG spectrogram and MP3 audio as data URLs.

        The body is JSON whatever the Content-Type (the original web app sent ``text/plain``).
        """
        body = await parse_json_body(request, InferenceBody, settings.max_body_bytes)
        _check_request(state, body)
        return await _clip_response(request, state, body.to_input(), "mp3", "jpeg")

    # --- the native API -------------------------------------------------------------------------------------------

    @app.post("/api/v1/generate", tags=["v1"], summary="Generate one clip",
              openapi_extra={"x-body-model": "GenerateBody"})
    async def generate(request: Request, state: ServerState = Depends(get_state)):
        """One clip with a choice of audio (mp3, wav, flac, ogg) and image (jpeg, png) formats."""
        body = await parse_json_body(request, GenerateBody, settings.max_body_bytes)
        _check_request(state, body)
        inputs = body.to_input(default_steps=state.web_steps)
        response = await _clip_response(request, state, inputs, body.audio_format, body.image_format)
        params = state.pipeline.spectrogram_params
        return {**response, "sample_rate": params.sample_rate, "audio_format": body.audio_format,
                "image_format": body.image_format, "num_inference_steps": inputs.num_inference_steps}

    @app.get("/api/v1/seed_images", tags=["v1"], summary="Seed images and masks")
    async def seed_images(state: ServerState = Depends(get_state)):
        from riffusion.seed_images import list_seed_images

        return {"seed_images": [{**s.to_dict(), "preview_url": f"/api/v1/seed_images/{s.id}"}
                                for s in list_seed_images(state.pipeline)]}

    @app.get("/api/v1/seed_images/{image_id}", tags=["v1"], summary="A seed image or mask as PNG",
             response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def seed_image(image_id: str, state: ServerState = Depends(get_state)):
        from riffusion.image import encode_image
        from riffusion.seed_images import find_seed_image

        try:
            entry = find_seed_image(image_id, state.pipeline)
        except (LookupError, ValueError) as exc:
            raise ApiError(404, str(exc)[:500]) from None
        from PIL import Image

        with Image.open(entry.path) as image:
            data = encode_image(image.convert("RGB"), "png")
        return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/v1/defaults", tags=["v1"], summary="What the web app should ask for")
    async def defaults(state: ServerState = Depends(get_state)):
        width, height = state.pipeline.image_size
        params = state.pipeline.spectrogram_params
        return {
            "num_inference_steps": state.web_steps,
            "seed_image_id": state.default_seed_image(),
            "denoising": 0.75,
            "guidance": default_guidance(state.pipeline),
            "alpha_velocity": 0.25,
            "model": str(getattr(state.pipeline, "model_id", settings.model)),
            "width": width,
            "height": height,
            "sample_rate": params.sample_rate,
            "duration_s": round(params.duration_s(width), 4),
            "max_prompt_chars": 150,
        }

    @app.get("/api/v1/health", tags=["v1"], summary="Liveness and load")
    async def health(state: ServerState = Depends(get_state)):
        return {
            "status": "ok",
            "model": str(getattr(state.pipeline, "model_id", settings.model)),
            "queue_length": state.worker.queue_length,
            "queue_size": settings.queue_size,
            "uptime_s": round(time.time() - state.started_at, 1),
            "stats": dict(state.worker.stats),
            "cache": state.cache_stats,
        }

    # --- the web app --------------------------------------------------------------------------------------------------

    def _page(name: str):
        path = WEB_DIR / name
        if path.is_file():
            return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})
        return HTMLResponse("<!doctype html><title>Riffusion</title><p>The web app is not installed.</p>"
                            "<p>API documentation: <a href='/docs'>/docs</a></p>")

    @app.get("/", include_in_schema=False)
    async def index():
        return _page("index.html")

    @app.get("/about", include_in_schema=False)
    async def about():
        return _page("about.html")

    app.mount("/web", StaticFiles(directory=WEB_DIR, check_dir=False), name="web")

    def openapi() -> dict:
        # The JSON bodies are parsed by hand (any Content-Type); declare their schemas for /docs and fuzzers.
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                name = operation.pop("x-body-model", None) if isinstance(operation, dict) else None
                if not name:
                    continue
                model = {"InferenceBody": InferenceBody, "GenerateBody": GenerateBody}[name]
                body_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(body_schema.pop("$defs", {}))
                components[name] = body_schema
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
                }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
