"""The native API under ``/api/v1``: clips in a choice of formats, the seed image library, the defaults the
web app should ask for, and health."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

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
    return {**response, "sample_rate": params.sample_rate, "audio_format": body.audio_format,
            "image_format": body.image_format, "num_inference_steps": inputs.num_inference_steps}


@router.get("/seed_images", summary="Seed images and masks")
async def seed_images(state: StateDep):
    from riffusion.seed_images import list_seed_images

    return {"seed_images": [{**s.to_dict(), "preview_url": f"/api/v1/seed_images/{s.id}"}
                            for s in list_seed_images(state.pipeline)]}


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
