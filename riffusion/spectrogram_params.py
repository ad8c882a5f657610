"""Spectrogram geometry: the one immutable value that says how audio maps to a Riffusion image."""

from __future__ import annotations

import dataclasses
import typing as T
from enum import IntEnum


@dataclasses.dataclass(frozen=True)
class SpectrogramParams:
    """Parameters of the mel spectrogram behind a Riffusion image.

    The defaults are those riffusion-model-v1 was trained with: one image column per 10 ms, 512 mel rows
    from 0 to 10 kHz, so a 512 x 512 image holds 5.11 s of audio. Instances are hashable and equal by
    fields, so they key caches of precomputed operators.
    """

    stereo: bool = False
    sample_rate: int = 44100

    # One image column per hop. Ten milliseconds keeps tempo resolution fine enough for drums.
    step_size_ms: int = 10
    # Hann window length. 100 ms is long (good frequency detail, smeared attacks); it is what the model knows.
    window_duration_ms: int = 100
    # FFT size after zero padding: 400 ms gives 2.5 Hz bins, finer than the lowest mel filters need.
    padded_duration_ms: int = 400

    num_frequencies: int = 512  # mel bins = image height
    min_frequency: int = 0  # Hz
    max_frequency: int = 10000  # Hz; nothing above it survives the round trip
    mel_scale_norm: T.Optional[str] = None  # no area normalisation: filters have unit peak
    mel_scale_type: str = "htk"

    # Only the original's iterative inverse mel used this; kept so old code that passes it still works.
    max_mel_iters: int = 200
    num_griffin_lim_iters: int = 32

    # Images store magnitude ** 0.25: a gentle compression that keeps quiet partials visible in 8 bits.
    power_for_image: float = 0.25

    class ExifTags(IntEnum):
        """Custom EXIF tag ids (IFD0) under which images carry their parameters."""

        SAMPLE_RATE = 11000
        STEREO = 11005
        STEP_SIZE_MS = 11010
        WINDOW_DURATION_MS = 11020
        PADDED_DURATION_MS = 11030
        NUM_FREQUENCIES = 11040
        MIN_FREQUENCY = 11050
        MAX_FREQUENCY = 11060
        POWER_FOR_IMAGE = 11070
        MAX_VALUE = 11080

    def __post_init__(self) -> None:
        checks = {
            "sample_rate": self.sample_rate > 0,
            "step_size_ms": self.step_size_ms > 0,
            "window_duration_ms": self.window_duration_ms > 0,
            "padded_duration_ms": self.padded_duration_ms >= self.window_duration_ms,
            "num_frequencies": self.num_frequencies > 0,
            "min_frequency": 0 <= self.min_frequency < self.max_frequency,
            "max_frequency": self.max_frequency <= self.sample_rate / 2,
            "power_for_image": self.power_for_image > 0,
            "mel_scale_type": self.mel_scale_type in ("htk", "slaney"),
            "mel_scale_norm": self.mel_scale_norm in (None, "slaney"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"invalid SpectrogramParams.{name}={getattr(self, name)!r}")
        if self.hop_length < 1 or self.win_length < 1:
            raise ValueError(
                f"step_size_ms={self.step_size_ms} / window_duration_ms={self.window_duration_ms} are too "
                f"short for sample_rate={self.sample_rate}: they must span at least one sample"
            )

    @property
    def n_fft(self) -> int:
        """FFT size in samples (17640 by default)."""
        return int(self.padded_duration_ms / 1000.0 * self.sample_rate)

    @property
    def win_length(self) -> int:
        """Window length in samples (4410 by default)."""
        return int(self.window_duration_ms / 1000.0 * self.sample_rate)

    @property
    def hop_length(self) -> int:
        """Hop in samples (441 by default)."""
        return int(self.step_size_ms / 1000.0 * self.sample_rate)

    @property
    def num_channels(self) -> int:
        return 2 if self.stereo else 1

    def num_frames(self, num_samples: int) -> int:
        """Spectrogram columns for ``num_samples`` of audio (centred STFT: ``1 + samples // hop``)."""
        return 1 + num_samples // self.hop_length

    def num_samples(self, num_frames: int) -> int:
        """Samples of audio reconstructed from ``num_frames`` columns: ``hop * (frames - 1)``."""
        return self.hop_length * (num_frames - 1)

    def duration_s(self, num_frames: int) -> float:
        """Seconds of audio reconstructed from ``num_frames`` columns (512 -> 5.11 s)."""
        return self.num_samples(num_frames) / self.sample_rate

    def to_exif(self) -> dict[int, T.Any]:
        """EXIF tags (id -> value) describing these parameters; MAX_VALUE is added by the image codec."""
        tags = self.ExifTags
        return {
            tags.SAMPLE_RATE.value: self.sample_rate,
            tags.STEREO.value: int(self.stereo),
            tags.STEP_SIZE_MS.value: self.step_size_ms,
            tags.WINDOW_DURATION_MS.value: self.window_duration_ms,
            tags.PADDED_DURATION_MS.value: self.padded_duration_ms,
            tags.NUM_FREQUENCIES.value: self.num_frequencies,
            tags.MIN_FREQUENCY.value: self.min_frequency,
            tags.MAX_FREQUENCY.value: self.max_frequency,
            tags.POWER_FOR_IMAGE.value: float(self.power_for_image),
        }

    @classmethod
    def from_exif(cls, exif: T.Mapping[int, T.Any]) -> "SpectrogramParams":
        """Parameters from EXIF tags (id -> value), as written by :meth:`to_exif`.

        Raises
        ------
        KeyError
            If a tag other than MAX_VALUE is missing (the original's behaviour; callers that want
            defaults for untagged images use :func:`riffusion.image.params_from_image`).
        """
        tags = cls.ExifTags

        def get(tag: "SpectrogramParams.ExifTags") -> T.Any:
            if tag.value in exif:
                return exif[tag.value]
            raise KeyError(f"EXIF tag {tag.name} ({tag.value}) is missing")

        return cls(
            sample_rate=int(get(tags.SAMPLE_RATE)),
            stereo=bool(get(tags.STEREO)),
            step_size_ms=int(get(tags.STEP_SIZE_MS)),
            window_duration_ms=int(get(tags.WINDOW_DURATION_MS)),
            padded_duration_ms=int(get(tags.PADDED_DURATION_MS)),
            num_frequencies=int(get(tags.NUM_FREQUENCIES)),
            min_frequency=int(get(tags.MIN_FREQUENCY)),
            max_frequency=int(get(tags.MAX_FREQUENCY)),
            power_for_image=float(get(tags.POWER_FOR_IMAGE)),
        )

    def to_dict(self) -> dict[str, T.Any]:
        """Plain JSON-able dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: T.Mapping[str, T.Any]) -> "SpectrogramParams":
        """Inverse of :meth:`to_dict`; unknown keys are an error so typos do not pass silently."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown SpectrogramParams fields {unknown}; expected some of {sorted(names)}")
        return cls(**data)
