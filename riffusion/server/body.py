"""Reading and validating JSON request bodies by hand: whatever the Content-Type (the original web app
sent ``text/plain``), bounded in size, with a precise JSON 4xx for each way a body can be wrong."""

from __future__ import annotations

import json
import typing as T

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from riffusion.server.errors import ApiError, field_error
from riffusion.server.schemas import InferenceBody

if T.TYPE_CHECKING:  # pragma: no cover
    from riffusion.server.state import ServerState

Body = T.TypeVar("Body", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body: 413 past ``limit`` bytes (declared or sent), 400 for a bad Content-Length, 499 if the
    client hangs up while sending."""
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


async def parse_json_body(request: Request, model: type[Body], limit: int) -> Body:
    """The body as ``model``: 400 for an empty or non-JSON body, 422 for anything but a valid object."""
    raw = await read_body(request, limit)
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


def check_request(state: "ServerState", body: InferenceBody) -> None:
    """What the schema cannot know: this server's step limit, the fewest steps that still denoise at the
    request's denoising on this model, and this model's seed images or this server's uploaded loops (422s)."""
    from riffusion.seed_images import find_seed_image
    from riffusion.server.uploads import UPLOAD_PREFIX, UPLOAD_TTL_S

    limit = state.settings.max_inference_steps
    if body.num_inference_steps is not None and body.num_inference_steps > limit:
        raise field_error("num_inference_steps", f"this server allows at most {limit} steps", "less_than_equal")
    steps = body.num_inference_steps or state.web_steps
    denoising = (1 - body.alpha) * body.start.denoising + body.alpha * body.end.denoising
    fewest = state.pipeline.min_num_inference_steps(denoising)
    if steps < fewest:
        raise field_error("num_inference_steps", f"{steps} steps at denoising {denoising:g} run no UNet evaluation "
                          f"(the clip would be the seed loop whatever the prompt); ask for at least {fewest}",
                          "greater_than_equal")
    if getattr(body, "rhythm", None) is not None and not state.info.rhythm_input:
        raise field_error("rhythm", f"{state.info.model_id} has no rhythm input: it follows the seed loop's beat; "
                          "leave rhythm out or serve a rhythm model", "unsupported")

    for field, image_id, kind in (("seed_image_id", body.seed_image_id, "seed"),
                                  ("mask_image_id", body.mask_image_id, "mask")):
        if image_id is None:
            continue
        try:
            find_seed_image(image_id, state.pipeline, kind=kind)
        except (LookupError, ValueError) as exc:
            if image_id.startswith(UPLOAD_PREFIX):
                raise field_error(field, f"uploaded loop {image_id!r} is unknown or has expired (uploads are kept "
                                  f"{UPLOAD_TTL_S / 60:g} minutes); upload it again") from None
            raise field_error(field, str(exc)[:500]) from None
