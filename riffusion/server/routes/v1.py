"""The native API under ``/api/v1``: clips in a choice of formats, the seed image library (and loops of
your own), the defaults the web app should ask for, and health."""

from __future__ import annotations

import functools
import time
import typing as T

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from riffusion.server.clips import clip_response
from riffusion.server.dependencies import GenerateBodyDep, StateDep
from riffusion.server.errors import ApiError

router = APIRouter(prefix="/api/v1", tags=["v1"])


@router.post("/generate", summary="Generate one clip", openapi_extra={"x-body-model": "GenerateBody"})
async def generate(request: Request, state: StateDep, body: GenerateBodyDep):
    """One clip with a choice of audio (mp3, wav, flac, ogg) and image (jpeg, png) formats."""
    inputs = body.to_input(default_steps=state.web_steps)
    response = await clip_response(request, state, inputs, body.audio_format, body.image_format)
    params = state.pipeline.spectrogram_params
    # the steps the model really ran: a small model runs at most its own count, whatever was asked
    steps = state.pipeline.effective_num_inference_steps(inputs.num_inference_steps)
    return {**response, "sample_rate": params.sample_rate, "audio_format": body.audio_format,
            "image_format": body.image_format, "num_inference_steps": steps}


@router.get("/seed_images", summary="Seed images and masks")
async def seed_images(state: StateDep):
    from riffusion.seed_images import list_seed_images

    return {"seed_images": [{**s.to_dict(), "preview_url": f"/api/v1/seed_images/{s.id}"}
                            for s in list_seed_images(state.pipeline)]}


_AUDIO_BODY = {"schema": {"type": "string", "format": "binary"}}


@router.post(
    "/seed_images", summary="Upload an audio loop as a seed image", status_code=201,
    openapi_extra={"requestBody": {"required": True, "content": {
        kind: _AUDIO_BODY for kind in ("audio/wav", "audio/flac", "audio/ogg", "audio/mpeg", "application/octet-stream")
    }}},
)
async def upload_seed_image(
    request: Request,
    state: StateDep,
    bpm: T.Annotated[T.Optional[float], Query(ge=30, le=300, description="The audio's tempo; measured if omitted")] = None,
    metre: T.Annotated[T.Optional[str], Query(max_length=8, description="4/4 (default), 3/4, 6/8, ...")] = None,
):
    """The request body is the audio file itself (WAV, FLAC, OGG or MP3, at most 10 MB and 60 s; any
    Content-Type). It is cut to whole bars from its first downbeat at its tempo (measured, or ``bpm``),
    stretched to span the model's clip, and kept as a seed loop for an hour. The answer's ``id`` works as
    ``seed_image_id`` for whoever holds it; uploads are not listed by ``GET /api/v1/seed_images``."""
    from riffusion.loops import LoopError, seed_loop_from_audio
    from riffusion.rhythm import parse_metre
    from riffusion.server.body import read_body
    from riffusion.server.uploads import MAX_UPLOAD_BYTES, UploadError, decode_upload

    try:
        beats_per_bar = parse_metre(metre) if metre is not None else 4
    except ValueError as exc:
        raise ApiError(422, [{"loc": ["query", "metre"], "msg": str(exc), "type": "value_error"}]) from None
    data = await read_body(request, MAX_UPLOAD_BYTES)
    params = state.pipeline.spectrogram_params
    width = state.pipeline.image_size[0]

    def make_loop():
        waveform = decode_upload(data, sample_rate=params.sample_rate)
        return seed_loop_from_audio(waveform, params.sample_rate, params=params, width=width, bpm=bpm,
                                    beats_per_bar=beats_per_bar)

    try:
        loop = await anyio.to_thread.run_sync(make_loop)
    except UploadError as exc:
        raise ApiError(exc.status, str(exc) if exc.status == 413 else
                       [{"loc": ["body"], "msg": str(exc), "type": "audio"}]) from None
    except LoopError as exc:
        field = ["query", "bpm"] if "bpm" in str(exc) else ["body"]
        raise ApiError(422, [{"loc": field, "msg": str(exc), "type": "loop"}]) from None
    entry = state.uploads.add(loop, description=f"your loop: {loop.bars} bars of {beats_per_bar} at "
                                                f"{loop.source_bpm:g} bpm, fitted to {loop.tempo_bpm:g} bpm")
    return JSONResponse(status_code=201, content={
        **entry.to_dict(), **loop.to_dict(), "preview_url": f"/api/v1/seed_images/{entry.id}",
        "expires_in_s": round(state.uploads.expires_in_s(entry.id) or 0.0),
    })


@router.get("/seed_images/{image_id}", summary="A seed image or mask as PNG", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
async def seed_image(image_id: str, state: StateDep):
    from PIL import Image

    from riffusion.image import encode_image
    from riffusion.seed_images import find_seed_image

    try:
        entry = find_seed_image(image_id, state.pipeline)
    except (LookupError, ValueError) as exc:
        raise ApiError(404, str(exc)[:500]) from None
    with Image.open(entry.path) as image:
        data = encode_image(image.convert("RGB"), "png")
    return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


@router.get("/defaults", summary="What the web app should ask for")
async def defaults(state: StateDep):
    width, height = state.pipeline.image_size
    params = state.pipeline.spectrogram_params
    return {
        "num_inference_steps": state.web_steps,
        # Measured at start-up (null without a warm-up): whether clips come faster than they play.
        "keeps_up": state.keeps_up,
        "seconds_per_clip": None if state.seconds_per_clip is None else round(state.seconds_per_clip, 2),
        "seed_image_id": state.default_seed_image(),
        "denoising": state.info.denoising,
        "rhythm_input": state.info.rhythm_input,
        "guidance": state.info.guidance,
        "alpha_velocity": 0.25,
        "model": state.info.model_id,
        "phase": str(state.phase),  # how clips become audio here: a session re-rendered offline says the same
        "width": width,
        "height": height,
        "sample_rate": params.sample_rate,
        "duration_s": round(params.duration_s(width), 4),
        "max_prompt_chars": 150,
    }


@router.get("/health", summary="Liveness and load")
async def health(state: StateDep):
    return {
        "status": "ok",
        "model": state.info.model_id,
        "queue_length": state.worker.queue_length,
        "queue_size": state.settings.queue_size,
        "uptime_s": round(time.time() - state.started_at, 1),
        "stats": dict(state.worker.stats),
        "cache": state.cache.stats,
    }


def _continue_schema() -> dict:
    from riffusion.server.schemas import ContinueBody

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ContinueBody.model_json_schema()}}}}


@router.post("/continue", summary="Continue an audio file with new music", openapi_extra=_continue_schema())
async def continue_audio(request: Request, state: StateDep):
    """The body's ``audio`` (a WAV, FLAC, OGG or MP3 file as base64, at most 10 MB and 60 s) followed by
    ``seconds`` (at most 60) of new music that carries on from its end, under ``prompt`` or a ``schedule``
    of prompts (``riffusion.continuation``). The answer's ``audio`` is a data URL at 44.1 kHz: the input
    unchanged but for its last crossfade, then the continuation; ``junctions_s`` says where each new clip
    begins. Each new clip waits in the model's queue as a task of its own, so jam listeners' clips are made
    between them; no more are queued once the client goes away or times out."""
    from riffusion.audio import encode_audio
    from riffusion.continuation import DEFAULT_CROSSFADE_S, DEFAULT_DENOISING, ContinuationRun
    from riffusion.server.body import parse_json_body
    from riffusion.server.clips import AUDIO_MEDIA, _data_url, run_clip
    from riffusion.server.errors import field_error
    from riffusion.server.schemas import ContinueBody
    from riffusion.server.uploads import MAX_UPLOAD_BYTES, UploadError, decode_upload

    from riffusion.server.worker import ModelWorker

    if not isinstance(state.worker, ModelWorker):  # the task runs on this process's model thread
        raise ApiError(501, "continuation runs on the in-process model worker; this server uses another backend")
    body = await parse_json_body(request, ContinueBody, 4 * MAX_UPLOAD_BYTES // 3 + 64 * 1024)
    steps = body.num_inference_steps or state.web_steps
    denoising = DEFAULT_DENOISING if body.denoising is None else body.denoising
    if steps > state.settings.max_inference_steps:
        raise field_error("num_inference_steps", f"this server allows at most {state.settings.max_inference_steps} "
                          "steps", "less_than_equal")
    if steps < state.pipeline.min_num_inference_steps(denoising):
        raise field_error("num_inference_steps", f"at least {state.pipeline.min_num_inference_steps(denoising)} steps "
                          f"denoise at {denoising:g} on this model", "greater_than_equal")
    rate = 44100
    try:
        waveform = await anyio.to_thread.run_sync(functools.partial(decode_upload, body.audio, sample_rate=rate))
    except UploadError as exc:
        raise ApiError(exc.status, str(exc) if exc.status == 413 else
                       [{"loc": ["body", "audio"], "msg": str(exc), "type": "audio"}]) from None
    if waveform.shape[-1] < 2 * DEFAULT_CROSSFADE_S * rate:
        raise field_error("audio", f"the audio lasts {waveform.shape[-1] / rate:.2f} s; continue at least "
                          f"{2 * DEFAULT_CROSSFADE_S:g} s", "audio")
    plan = functools.partial(ContinuationRun, state.pipeline, waveform, rate, prompt=body.prompt_schedule(),
                             seconds=body.seconds, seed=body.seed, negative_prompt=body.negative_prompt,
                             num_inference_steps=steps, guidance=body.guidance, denoising=denoising, bpm=body.bpm,
                             beats_per_bar=body.beats_per_bar, phase=state.phase)
    try:
        run = await anyio.to_thread.run_sync(plan)
    except ValueError as exc:
        raise ApiError(422, [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]) from None
    # Each clip waits in the model's queue as a task of its own, one at a time: jam listeners' clips go
    # between them, and once the client goes away or times out nothing more is queued.
    while not run.done:
        await run_clip(request, state, functools.partial(run.step))
    result = await anyio.to_thread.run_sync(run.result)
    data = await anyio.to_thread.run_sync(encode_audio, result.waveform, result.sample_rate, body.audio_format)
    return {
        "audio": _data_url(AUDIO_MEDIA[body.audio_format], data),
        "duration_s": round(result.duration_s, 4), "input_duration_s": round(result.input_samples / rate, 4),
        "sample_rate": rate, "audio_format": body.audio_format, "num_inference_steps": steps,
        "junctions_s": [round(t, 4) for t in result.junctions_s], "prompts": list(result.prompts),
        "bpm": None if result.grid is None else result.grid.bpm,
    }


def _render_schema() -> dict:
    from riffusion.server.schemas import RenderBody

    return {"requestBody": {"required": True, "content": {"application/json": {"schema": RenderBody.model_json_schema()}}}}


@router.post("/render", summary="Re-render a jam session", openapi_extra=_render_schema())
async def render(request: Request, state: StateDep):
    """The body's ``session`` (a session file as the jam's Share panel downloads it, docs/sessions.md)
    made again on this server's model and phase method and joined as the jam played it: gapless, with its
    crossfades and the bars it looped while a clip was late. ``num_inference_steps`` re-renders every clip
    with more steps. At most ``max_render_clips`` clips (64 by default) and ``max_render_s`` seconds of
    audio; each clip waits in the model's queue as a request of its own (so jam listeners' clips go between
    them), and no more are queued once the client goes away or times out. The answer's ``audio`` is a data
    URL; ``starts_s`` says where each clip begins."""
    from riffusion.audio import encode_audio
    from riffusion.server.body import parse_json_body
    from riffusion.server.clips import AUDIO_MEDIA, _data_url, run_clip
    from riffusion.server.errors import field_error
    from riffusion.server.schemas import RenderBody
    from riffusion.sessions import SessionError, join_session, parse_session, session_requests

    limits = state.settings
    body = await parse_json_body(request, RenderBody, limits.max_render_clips * 16 * 1024)
    try:
        session = parse_session(body.session)
    except SessionError as exc:
        raise _session_error(exc) from None
    if len(session.clips) > limits.max_render_clips:
        raise _session_error(SessionError(f"clips: this server renders at most {limits.max_render_clips} clips, "
                                          f"got {len(session.clips)}"), "too_long")
    if sum(c.duration_s + c.loop_bars * c.bar_s for c in session.clips) > limits.max_render_s:
        raise _session_error(SessionError(f"clips: this server renders at most {limits.max_render_s:g} s of audio "
                                          "(clips and looped bars)"), "too_long")
    if body.num_inference_steps is not None and body.num_inference_steps > limits.max_inference_steps:
        raise field_error("num_inference_steps", f"this server allows at most {limits.max_inference_steps} steps",
                          "less_than_equal")
    for i, clip in enumerate(session.clips):
        if body.num_inference_steps is None and clip.inputs.num_inference_steps > limits.max_inference_steps:
            raise _session_error(SessionError(f"clips[{i}].request.num_inference_steps: this server allows at most "
                                              f"{limits.max_inference_steps} steps"), "less_than_equal")
    try:
        requests = session_requests(session, state.pipeline, num_inference_steps=body.num_inference_steps)
    except SessionError as exc:
        raise _session_error(exc) from None
    # Each clip waits in the model's queue as a job of its own, one at a time: jam listeners' clips go
    # between them, and once the client goes away or times out nothing more is queued.
    clips = [await run_clip(request, state, inputs) for inputs in requests]
    rendered = await anyio.to_thread.run_sync(join_session, session, clips)
    data = await anyio.to_thread.run_sync(encode_audio, rendered.waveform, rendered.sample_rate, body.audio_format)
    steps = body.num_inference_steps
    return {
        "audio": _data_url(AUDIO_MEDIA[body.audio_format], data),
        "duration_s": round(rendered.waveform.shape[-1] / rendered.sample_rate, 4),
        "sample_rate": rendered.sample_rate, "audio_format": body.audio_format, "clips": len(session.clips),
        "starts_s": [round(t, 4) for t in rendered.starts_s], "model": state.info.model_id,
        "phase": str(state.phase),
        "num_inference_steps": None if steps is None else state.pipeline.effective_num_inference_steps(steps),
    }


def _session_error(exc: Exception, error_type: str = "session") -> ApiError:
    """A 422 for a session's SessionError, located at its field (``clips[3].request.alpha`` ->
    ``["body", "session", "clips", 3, "request", "alpha"]``)."""
    import re

    field, sep, message = str(exc).partition(": ")
    if not sep or not re.fullmatch(r"[A-Za-z_][\w.\[\]]*", field):
        field, message = "", str(exc)
    path = [int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"[A-Za-z_]\w*|\[\d+\]", field)]
    return ApiError(422, [{"loc": ["body", "session", *path], "msg": message, "type": error_type}])
