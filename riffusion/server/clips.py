"""One clip for one HTTP request: from the response cache, or queued on the model worker and encoded as
data URLs, with the wait bounded by the request timeout and dropped when the client goes away."""

from __future__ import annotations

import asyncio
import base64
import logging
import time

import anyio
from fastapi import Request

from riffusion.datatypes import InferenceInput
from riffusion.server.errors import ApiError
from riffusion.server.state import ServerState
from riffusion.server.worker import GenerationFailed, JobCancelled, QueueFull

log = logging.getLogger("riffusion.server")

AUDIO_MEDIA = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg"}
IMAGE_MEDIA = {"jpeg": "image/jpeg", "png": "image/png"}


async def run_clip(request: Request, state: ServerState, inputs: InferenceInput):
    """Queue one clip and wait for it: 503 (with Retry-After) when the queue is full or the job was
    dropped, 504 past the request timeout, 499 when the client went away, 500 when the model failed."""
    try:
        job = state.worker.submit(inputs)
    except QueueFull as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    future = asyncio.wrap_future(job.future)
    deadline = time.monotonic() + state.settings.request_timeout_s
    left_because = "the client went away"  # or timed out: the worker logs why it stopped the clip
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                left_because = f"the request timed out ({state.settings.request_timeout_s:g} s)"
                raise ApiError(504, f"the clip took longer than {state.settings.request_timeout_s:g} s")
            done, _ = await asyncio.wait({future}, timeout=min(0.5, remaining))
            if done:
                return future.result()
            if await request.is_disconnected():
                raise ApiError(499, "the client went away")
    except GenerationFailed as exc:
        raise ApiError(500, str(exc)) from None
    except JobCancelled as exc:
        raise ApiError(503, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    finally:
        if not future.done():
            job.left_because = left_because
            state.worker.leave(job)
            # The worker may still fail the job (JobCancelled) after we stop waiting: retrieve that
            # exception here, or asyncio logs "Future exception was never retrieved" for it.
            future.add_done_callback(_discard_outcome)


def _discard_outcome(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def encode_clip(clip, audio_format: str, image_format: str) -> dict:
    """``image`` and ``audio`` as data URLs and ``duration_s``: the original server's response."""
    from riffusion.audio import encode_audio
    from riffusion.image import encode_image

    return {
        "image": _data_url(IMAGE_MEDIA[image_format], encode_image(clip.image, image_format)),
        "audio": _data_url(AUDIO_MEDIA[audio_format], encode_audio(clip.waveform, clip.sample_rate, audio_format)),
        "duration_s": round(float(clip.duration_s), 4),
    }


async def clip_response(request: Request, state: ServerState, inputs: InferenceInput, audio_format: str,
                        image_format: str) -> dict:
    """The encoded clip for ``inputs``, answered from the cache when the same request was made before
    (``inputs`` is the key: its ends' prompts or mixes, seeds and every setting)."""
    key = (inputs, audio_format, image_format)
    cached = state.cache.get(key)
    if cached is not None:
        return cached
    if state.settings.log_prompts:
        log.info("clip: %r -> %r alpha=%.3f", inputs.start.mix or inputs.start.prompt,
                 inputs.end.mix or inputs.end.prompt, inputs.alpha)
    clip = await run_clip(request, state, inputs)
    response = await anyio.to_thread.run_sync(encode_clip, clip, audio_format, image_format)
    state.cache.put(key, response)
    return response
