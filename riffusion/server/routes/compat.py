"""``POST /run_inference/``: the original Riffusion server's contract, unchanged for its clients."""

from __future__ import annotations

from fastapi import APIRouter, Request

from riffusion.server.clips import clip_response
from riffusion.server.dependencies import InferenceBodyDep, StateDep

router = APIRouter(tags=["compat"])


@router.post("/run_inference/", summary="The original server's endpoint", openapi_extra={"x-body-model": "InferenceBody"})
async def run_inference(request: Request, state: StateDep, body: InferenceBodyDep):
    """One clip as the original server made it: JPEG spectrogram and MP3 audio as data URLs.

    The body is JSON whatever the Content-Type (the original web app sent ``text/plain``).
    """
    return await clip_response(request, state, body.to_input(), "mp3", "jpeg")
