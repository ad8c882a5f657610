"""Request bodies of the HTTP APIs, validated with pydantic (integers accepted for floats, unknown keys
ignored, NaN and infinities refused, sizes bounded, an alpha a rounding error outside [0, 1] clamped)."""

from __future__ import annotations

import dataclasses
import re
import typing as T

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from riffusion.datatypes import InferenceInput, PromptInput
from riffusion.prompts import MAX_MIX_PROMPTS
from riffusion.rhythm import MAX_BEATS_PER_BAR, MAX_BPM, MIN_BPM, BeatGrid

# Ids name files inside the package or a model folder: no separators, no "..", bounded length.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_SEED = 2**53 - 1  # the largest integer a JavaScript client can send exactly
MAX_PROMPT_CHARS = 2000
# The original web app adds its alpha velocity up in floating point and sends e.g. 1.0000000000000002;
# values this close to [0, 1] are rounding, not a request for extrapolation.
ALPHA_TOLERANCE = 1e-6


def clamp_alpha(value: float) -> float:
    """``value`` in [0, 1]: within :data:`ALPHA_TOLERANCE` outside it is clamped, further out is refused
    with pydantic's own range errors (so the 422 reads as for any bounded field)."""
    if value < -ALPHA_TOLERANCE:
        raise PydanticCustomError("greater_than_equal", "Input should be greater than or equal to 0", {"ge": 0.0})
    if value > 1.0 + ALPHA_TOLERANCE:
        raise PydanticCustomError("less_than_equal", "Input should be less than or equal to 1", {"le": 1.0})
    return min(max(value, 0.0), 1.0)


def _check_id(value: T.Optional[str]) -> T.Optional[str]:
    if value is None:
        return None
    if not _ID_PATTERN.match(value) or ".." in value:
        raise ValueError(f"{value[:80]!r} is not an image id (letters, digits, '_', '-', '.'; no paths)")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, frozen=True)


class WeightedPromptBody(_Model):
    """One prompt of a mix and its weight (relative to the others)."""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="What to hear")
    weight: float = Field(1.0, ge=0.0, le=1000.0, description="Its share of the mix, relative to the others' weights")

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("string_too_short", "a prompt of a mix must not be blank")
        return value


class PromptBody(_Model):
    """One end of the interpolation: ``prompt``, or ``prompts``, a weighted mix blended in the conditioning."""

    prompt: T.Optional[str] = Field(None, max_length=MAX_PROMPT_CHARS,
                                    description="What to hear (give this or `prompts`)")
    prompts: T.Optional[T.List[WeightedPromptBody]] = Field(
        None, min_length=1, max_length=MAX_MIX_PROMPTS,
        description=f"What to hear as a mix (give this or `prompt`): 1-{MAX_MIX_PROMPTS} prompts with weights >= 0 "
                    "and a positive sum, e.g. [{\"prompt\": \"jazz\", \"weight\": 1}, {\"prompt\": \"rain\", \"weight\": 0.4}]; "
                    "blended in the model's conditioning with the weights normalised to sum 1",
    )
    seed: int = Field(ge=0, le=MAX_SEED, description="Seed of the initial noise")
    negative_prompt: T.Optional[str] = Field(None, max_length=MAX_PROMPT_CHARS, description="What to avoid")
    denoising: float = Field(0.75, ge=0.0, le=1.0, description="How far to depart from the seed image")
    guidance: float = Field(7.0, ge=0.0, le=30.0, description="Classifier-free guidance scale")

    @field_validator("prompts")
    @classmethod
    def _positive_sum(cls, value: T.Optional[T.List[WeightedPromptBody]]) -> T.Optional[T.List[WeightedPromptBody]]:
        if value is not None and sum(entry.weight for entry in value) <= 0:
            raise PydanticCustomError("positive_sum", "the weights of `prompts` must have a positive sum")
        return value

    @model_validator(mode="after")
    def _prompt_or_prompts(self) -> "PromptBody":
        if (self.prompt is None) == (self.prompts is None):
            which = "both" if self.prompt is not None else "neither"
            raise PydanticCustomError("prompt_or_prompts",
                                      "give either `prompt` or `prompts` (a weighted mix), got {which}", {"which": which})
        return self

    def to_input(self) -> PromptInput:
        options = self.model_dump(exclude={"prompt", "prompts"})
        if self.prompts is None:
            return PromptInput(prompt=T.cast(str, self.prompt), **options)
        return PromptInput.mixed([(entry.prompt, entry.weight) for entry in self.prompts], **options)


class InferenceBody(_Model):
    """A clip request of the original API: interpolate from ``start`` (alpha 0) to ``end`` (alpha 1)."""

    alpha: float = Field(json_schema_extra={"minimum": 0.0, "maximum": 1.0},
                         description="0 -> start, 1 -> end; values within 1e-6 outside [0, 1] are clamped")
    num_inference_steps: int = Field(50, ge=1, le=1000, description="Capped by the server's --max-inference-steps")
    seed_image_id: str = Field("og_beat", max_length=64)
    mask_image_id: T.Optional[str] = Field(None, max_length=64)
    start: PromptBody
    end: PromptBody

    @field_validator("alpha")
    @classmethod
    def _clamp_alpha(cls, value: float) -> float:
        return clamp_alpha(value)

    @field_validator("seed_image_id", "mask_image_id")
    @classmethod
    def _valid_id(cls, value: T.Optional[str]) -> T.Optional[str]:
        return _check_id(value)

    def to_input(self, default_steps: int = 50) -> InferenceInput:
        """The library's request value; ``default_steps`` when the body left the steps out."""
        return InferenceInput(
            start=self.start.to_input(),
            end=self.end.to_input(),
            alpha=self.alpha,
            num_inference_steps=self.num_inference_steps or default_steps,
            seed_image_id=self.seed_image_id,
            mask_image_id=self.mask_image_id,
        )


class RhythmBody(_Model):
    """The beat grid a clip follows (models with a rhythm input): the clip starts on a downbeat."""

    bpm: float = Field(ge=MIN_BPM, le=MAX_BPM, description="Beats per minute")
    beats_per_bar: int = Field(4, ge=1, le=MAX_BEATS_PER_BAR, description="The metre: 4 for 4/4, 3 for 3/4, 6 for 6/8")

    def to_grid(self) -> BeatGrid:
        return BeatGrid(bpm=self.bpm, beats_per_bar=self.beats_per_bar, offset_s=0.0)


class GenerateBody(InferenceBody):
    """A clip request of the native API, with a choice of file formats and, for models with a rhythm input,
    a tempo and metre of its own (else the seed loop's); a clip on a requested tempo holds whole bars."""

    num_inference_steps: T.Optional[int] = Field(None, ge=1, le=1000, description="Default: the server's")
    audio_format: T.Literal["mp3", "wav", "flac", "ogg"] = "mp3"
    image_format: T.Literal["jpeg", "png"] = "jpeg"
    rhythm: T.Optional[RhythmBody] = Field(None, description="Tempo and metre; default: the seed loop's")

    def to_input(self, default_steps: int = 50) -> InferenceInput:
        inputs = super().to_input(default_steps)
        if self.rhythm is None:
            return inputs
        return dataclasses.replace(inputs, rhythm=self.rhythm.to_grid())


#: Most seconds one ``/api/v1/continue`` request may add (the model is busy with it meanwhile).
MAX_CONTINUE_SECONDS = 60.0


class ContinueBody(_Model):
    """A continuation request: an audio file (base64, or a ``data:`` URL) followed by new music."""

    audio: bytes = Field(description="The audio to continue: a WAV, FLAC, OGG or MP3 file as base64 (or a data: URL "
                                     "of one), at most 10 MB and 60 s", json_schema_extra={"type": "string",
                                                                                         "contentEncoding": "base64"})
    prompt: T.Optional[str] = Field(None, max_length=MAX_PROMPT_CHARS, description="What follows (or `schedule`)")
    schedule: T.Optional[str] = Field(
        None, max_length=8 * MAX_PROMPT_CHARS,
        description="Prompts by seconds of the continuation instead of `prompt`, e.g. \"0:jazz piano,20:rock band\"")
    seconds: float = Field(gt=0.0, le=MAX_CONTINUE_SECONDS, description="Seconds of music to add")
    seed: int = Field(42, ge=0, le=MAX_SEED, description="Seed of the first new clip (then seed + 1, ...)")
    negative_prompt: T.Optional[str] = Field(None, max_length=MAX_PROMPT_CHARS, description="What to avoid")
    num_inference_steps: T.Optional[int] = Field(None, ge=1, le=1000, description="Default: the server's")
    guidance: T.Optional[float] = Field(None, ge=0.0, le=30.0, description="Default: the model's")
    denoising: T.Optional[float] = Field(None, gt=0.0, le=1.0,
                                         description="How far each new part departs from the context's repeated last "
                                                     "bars (1: from noise); default 0.9")
    bpm: T.Optional[float] = Field(None, ge=MIN_BPM, le=MAX_BPM, description="The input's tempo; measured if omitted")
    beats_per_bar: T.Optional[int] = Field(None, ge=1, le=MAX_BEATS_PER_BAR, description="The input's metre (with bpm)")
    audio_format: T.Literal["mp3", "wav", "flac", "ogg"] = "mp3"

    @field_validator("audio", mode="before")
    @classmethod
    def _base64(cls, value: T.Any) -> bytes:
        import base64
        import binascii

        from riffusion.server.uploads import MAX_UPLOAD_BYTES

        if not isinstance(value, str):
            raise PydanticCustomError("base64", "`audio` must be a base64 string (or a data: URL) of an audio file")
        text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise PydanticCustomError("base64", "`audio` is not valid base64") from None
        if len(data) > MAX_UPLOAD_BYTES:
            raise PydanticCustomError("too_long", "`audio` is larger than {limit} bytes", {"limit": MAX_UPLOAD_BYTES})
        return data

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: T.Optional[str]) -> T.Optional[str]:
        from riffusion.continuation import PromptSchedule

        if value is not None:
            try:
                PromptSchedule.parse(value)
            except ValueError as exc:
                raise PydanticCustomError("schedule", "{reason}", {"reason": str(exc)}) from None
        return value

    @model_validator(mode="after")
    def _prompt_or_schedule(self) -> "ContinueBody":
        if (self.prompt is None) == (self.schedule is None):
            which = "both" if self.prompt is not None else "neither"
            raise PydanticCustomError("prompt_or_schedule", "give either `prompt` or `schedule`, got {which}",
                                      {"which": which})
        if self.prompt is not None and not self.prompt.strip():
            raise PydanticCustomError("string_too_short", "`prompt` must not be blank")
        if self.beats_per_bar is not None and self.bpm is None:
            raise PydanticCustomError("beats_per_bar", "`beats_per_bar` needs `bpm` (the input's tempo)")
        return self

    def prompt_schedule(self):
        """The prompt, or the schedule, as a :class:`riffusion.continuation.PromptSchedule`."""
        from riffusion.continuation import PromptSchedule

        return PromptSchedule.parse(self.schedule) if self.schedule is not None else PromptSchedule.constant(self.prompt)


class RenderBody(_Model):
    """A jam session to re-render (``POST /api/v1/render``): the session document and the output's options."""

    session: dict[str, T.Any] = Field(
        description="A session file as the jam writes it (schema riffusion-session, version 1: docs/sessions.md; its "
                    "JSON Schema is served at /web/session.schema.json), validated by riffusion.sessions")
    num_inference_steps: T.Optional[int] = Field(
        None, ge=1, le=1000, description="Steps for every clip instead of the recorded ones (more: higher quality)")
    audio_format: T.Literal["mp3", "wav", "flac", "ogg"] = "mp3"
