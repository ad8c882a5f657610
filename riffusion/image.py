"""The Riffusion image codec: mel magnitudes <-> 8-bit RGB pictures, with parameters in EXIF.

Bit-compatible with the images the original tools made and riffusion-model-v1 was trained on
(riffusion-format.md §3): peak-normalise, ``** 0.25``, ``* 255``, invert (loud = black), truncate to uint8,
low frequencies at the bottom; mono as grey RGB, stereo as ``(0, left, right)``.
"""

from __future__ import annotations

import io
import os
import typing as T
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError
from PIL.ExifTags import TAGS as _PIL_TAGS

from riffusion.files import atomic_path
from riffusion.spectrogram_params import SpectrogramParams

#: Scale of decoded magnitudes when an image does not say (results are peak-normalised later).
DEFAULT_MAX_VALUE = 30e6

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
            ".tiff": "TIFF"}


def image_from_spectrogram(spectrogram: np.ndarray, *, power: float = 0.25) -> Image.Image:
    """Encode a mel magnitude spectrogram as a Riffusion image.

    Parameters
    ----------
    spectrogram : np.ndarray, shape (channels, n_mels, frames)
        Non-negative magnitudes; 1 channel (mono) or 2 (stereo).
    power : float, keyword-only
        Compression exponent applied after peak normalisation.

    Returns
    -------
    PIL.Image.Image
        RGB, ``frames`` wide and ``n_mels`` high, lowest mel bin on the bottom row. No EXIF (see
        :func:`attach_exif`).
    """
    data = np.asarray(spectrogram, dtype=np.float32)
    if data.ndim != 3 or data.shape[0] not in (1, 2):
        raise ValueError(
            f"spectrogram must have shape (channels, n_mels, frames) with 1 or 2 channels, "
            f"got {data.shape}"
        )
    if not np.all(np.isfinite(data)) or (data.size and data.min() < 0):
        raise ValueError("spectrogram magnitudes must be finite and non-negative")
    peak = float(data.max()) if data.size else 0.0
    # 1. peak normalise over all channels, 2. compress, 3. invert, 4. truncate (not round) to uint8.
    scaled = data / peak if peak > 0 else np.zeros_like(data)
    pixels = (255.0 - np.power(scaled, power) * 255.0).astype(np.uint8)
    # 5. channel layout: grey as R = G = B; stereo as (0, left, right).
    if pixels.shape[0] == 1:
        rgb = np.repeat(pixels, 3, axis=0)
    else:
        rgb = np.stack([np.zeros_like(pixels[0]), pixels[0], pixels[1]])
    # 6. lowest frequency at the bottom.
    return Image.fromarray(np.ascontiguousarray(rgb.transpose(1, 2, 0)[::-1]), mode="RGB")


def spectrogram_from_image(
    image: Image.Image,
    *,
    power: float = 0.25,
    stereo: bool = False,
    max_value: float = DEFAULT_MAX_VALUE,
) -> np.ndarray:
    """Decode a Riffusion image to mel magnitudes (the inverse of :func:`image_from_spectrogram`).

    Parameters
    ----------
    image : PIL.Image.Image
        Any mode; palette and grey images are converted to RGB first.
    power : float, keyword-only
        The exponent the image was encoded with.
    stereo : bool, keyword-only
        Read the G and B channels (stereo) instead of R (mono).
    max_value : float, keyword-only
        Magnitude of a black pixel.

    Returns
    -------
    np.ndarray, shape (1 or 2, height, width), float32

    Raises
    ------
    ValueError
        If a stereo image (R all zero, G/B carrying sound) is decoded as mono, which would give silence.
    """
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, got {type(image).__name__}")
    rgb = np.asarray(image.convert("RGB") if image.mode != "RGB" else image)
    data = rgb[::-1].transpose(2, 0, 1)
    if stereo:
        data = data[1:3]
    else:
        if not data[0].any() and data[1:].any():
            raise ValueError(
                "this image looks like a stereo spectrogram (R channel all zero, G/B carry the left/right "
                "channels); decode it with stereo=True (its EXIF STEREO tag says so when present)"
            )
        data = data[0:1]
    magnitudes = (255.0 - data.astype(np.float32)) / 255.0
    return np.power(magnitudes, 1.0 / power, dtype=np.float32) * np.float32(max_value)


# --- audio <-> image -------------------------------------------------------------------------------------------

#: The original computed spectrograms of raw 16-bit sample values; float audio is scaled to those units.
_INT16_SCALE = 32768.0


def image_from_waveform(
    waveform: np.ndarray, sample_rate: int, params: SpectrogramParams, *, device: str = "cpu"
) -> Image.Image:
    """Spectrogram image (``params`` and ``MAX_VALUE`` in EXIF) of float audio.

    Parameters
    ----------
    waveform : np.ndarray, shape (channels, samples) or (samples,)
        Audio in [-1, 1] at ``sample_rate``; its channels are matched to ``params.stereo``
        (:func:`riffusion.audio.match_channels`).
    sample_rate : int
        Hz; must equal ``params.sample_rate``.
    params : SpectrogramParams
    device : str, keyword-only
        Torch device of the transform.

    Returns
    -------
    PIL.Image.Image
        RGB, ``params.num_frequencies`` high, one column per hop.

    Raises
    ------
    ValueError
        If ``sample_rate`` differs from ``params.sample_rate``.
    """
    if sample_rate != params.sample_rate:
        raise ValueError(
            f"audio sample rate is {sample_rate} Hz but the spectrogram parameters expect "
            f"{params.sample_rate} Hz; resample it first (riffusion.audio.resample)"
        )
    mel = mel_from_waveform(np.asarray(waveform, np.float32) * _INT16_SCALE, params, device=device)
    return image_from_mel(mel, params)


def mel_from_waveform(waveform: np.ndarray, params: SpectrogramParams, *, device: str = "cpu") -> np.ndarray:
    """Mel magnitudes of audio in any units, its channels matched to ``params.stereo``.

    Returns
    -------
    np.ndarray, shape (channels, params.num_frequencies, frames), float32
    """
    import torch

    from riffusion import spectral
    from riffusion.audio import match_channels

    x = match_channels(np.asarray(waveform, dtype=np.float32), 2 if params.stereo else 1)
    return spectral.waveform_to_mel(torch.from_numpy(np.ascontiguousarray(x)).to(device), params).cpu().numpy()


def image_from_mel(mel: np.ndarray, params: SpectrogramParams) -> Image.Image:
    """The image of mel magnitudes, with ``params`` and the peak magnitude (``MAX_VALUE``) in EXIF."""
    image = image_from_spectrogram(mel, power=params.power_for_image)
    return attach_exif(image, params, max_value=float(np.max(mel)))


def waveform_from_mel(
    mel: np.ndarray,
    params: SpectrogramParams,
    *,
    phase: str = "default",
    device: str = "cpu",
    generator: T.Any = None,
    num_iters: T.Optional[int] = None,
) -> np.ndarray:
    """Audio (channels, hop * (frames - 1)) from mel magnitudes, in their units (not normalised).

    ``phase`` is the phase reconstruction method (:func:`riffusion.spectral.mel_to_waveform`).
    """
    import torch

    from riffusion import spectral

    x = torch.as_tensor(np.asarray(mel, dtype=np.float32)).to(device)
    return spectral.mel_to_waveform(x, params, phase=phase, num_iters=num_iters, generator=generator).cpu().numpy()


def waveform_from_image(
    image: Image.Image,
    params: SpectrogramParams,
    *,
    phase: str = "default",
    device: str = "cpu",
    apply_filters: bool = True,
    max_value: float = DEFAULT_MAX_VALUE,
    generator: T.Any = None,
    num_iters: T.Optional[int] = None,
) -> np.ndarray:
    """Audio from a spectrogram image decoded with ``params`` (not its EXIF).

    Parameters
    ----------
    image : PIL.Image.Image
        ``params.num_frequencies`` pixels high.
    params : SpectrogramParams
    phase : str, keyword-only
        Phase reconstruction method (:func:`riffusion.spectral.mel_to_waveform`).
    device : str, keyword-only
        Torch device of the reconstruction.
    apply_filters : bool, keyword-only
        The original's loudness post-filter (:func:`riffusion.audio.normalize_loudness`); otherwise the
        result is peak-normalised.
    max_value : float, keyword-only
        Magnitude of a black pixel.
    generator : torch.Generator, optional, keyword-only
        Randomness of random-phase methods: the same generator state gives the same audio.
    num_iters : int, optional, keyword-only
        Iterations of an iterative phase method (its own default when None).

    Returns
    -------
    np.ndarray, shape (channels, params.hop_length * (width - 1)), float32 in [-1, 1]

    Raises
    ------
    ValueError
        If the image height differs from ``params.num_frequencies``.
    """
    from riffusion.audio import normalize_loudness

    if image.height != params.num_frequencies:
        raise ValueError(
            f"image is {image.height} pixels high but these parameters have num_frequencies="
            f"{params.num_frequencies}; expected the height to match"
        )
    mel = spectrogram_from_image(image, power=params.power_for_image, stereo=params.stereo, max_value=max_value)
    samples = waveform_from_mel(mel, params, phase=phase, device=device, generator=generator, num_iters=num_iters)
    if apply_filters:
        return normalize_loudness(samples, params.sample_rate)
    peak = float(np.abs(samples).max())
    return (samples / peak).astype(np.float32) if peak > 0 else samples.astype(np.float32)


def mask_tensor(mask: Image.Image, width: int, height: int, *, threshold: T.Optional[float] = None):
    """A mask image as a (1, 1, height, width) float32 torch tensor: 1 = repaint (white), 0 = keep (black).

    Parameters
    ----------
    mask : PIL.Image.Image
        Any mode; read as grey and resized (nearest neighbour) to ``width`` x ``height``.
    width, height : int
        Size of the grid the mask applies to (latents or pixels).
    threshold : float, optional, keyword-only
        With a value in [0, 1], grey levels above it become 1 and the rest 0 (a hard mask); without,
        grey levels scale linearly to [0, 1] (a soft mask, partial repainting in grey areas).

    Raises
    ------
    ValueError
        If ``threshold`` is outside [0, 1] or the size is not positive.
    """
    import torch

    if width < 1 or height < 1:
        raise ValueError(f"mask size must be positive, got {width}x{height}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    grey = np.asarray(mask.convert("L").resize((width, height), Image.NEAREST), dtype=np.float32) / 255.0
    if threshold is not None:
        grey = (grey > threshold).astype(np.float32)
    return torch.from_numpy(grey)[None, None]


def attach_exif(image: Image.Image, params: SpectrogramParams, *, max_value: T.Optional[float] = None) -> Image.Image:
    """Write ``params`` (and ``max_value``) into the image's EXIF (IFD0, custom tag ids); returns ``image``."""
    exif = image.getexif()
    exif.update(params.to_exif())
    if max_value is not None:
        exif[SpectrogramParams.ExifTags.MAX_VALUE.value] = float(max_value)
    return image


def exif_from_image(image: Image.Image) -> dict[str, T.Any]:
    """EXIF tags of ``image`` by name: Riffusion's (``SAMPLE_RATE``, ...) and any standard ones."""
    names = {tag.value: tag.name for tag in SpectrogramParams.ExifTags}
    return {names.get(k, _PIL_TAGS.get(k, str(k))): v for k, v in image.getexif().items()}


def params_from_image(image: Image.Image, *, warn: bool = True) -> SpectrogramParams:
    """Spectrogram parameters from the image's EXIF.

    Model outputs and server JPEGs carry no tags: they decode with the default parameters (with a
    warning, since a wrong guess makes wrong audio). Missing individual tags also fall back to defaults.
    """
    exif = image.getexif()
    defaults = SpectrogramParams()
    fields = {
        "sample_rate": ("SAMPLE_RATE", int),
        "stereo": ("STEREO", bool),
        "step_size_ms": ("STEP_SIZE_MS", int),
        "window_duration_ms": ("WINDOW_DURATION_MS", int),
        "padded_duration_ms": ("PADDED_DURATION_MS", int),
        "num_frequencies": ("NUM_FREQUENCIES", int),
        "min_frequency": ("MIN_FREQUENCY", int),
        "max_frequency": ("MAX_FREQUENCY", int),
        "power_for_image": ("POWER_FOR_IMAGE", float),
    }
    values: dict[str, T.Any] = {}
    missing = []
    for field, (tag_name, cast) in fields.items():
        tag = SpectrogramParams.ExifTags[tag_name].value
        if tag in exif:
            values[field] = cast(exif[tag])
        else:
            missing.append(tag_name)
            values[field] = getattr(defaults, field)
    if missing and warn:
        what = "no spectrogram EXIF tags" if len(missing) == len(fields) else f"no EXIF tags {missing}"
        warnings.warn(f"image has {what}; using the default spectrogram parameters for them", stacklevel=2)
    params = SpectrogramParams(**values)
    if params.num_frequencies != image.height:
        raise ValueError(
            f"image is {image.height} pixels high but its parameters say num_frequencies="
            f"{params.num_frequencies}; expected them to match"
        )
    return params


def max_value_from_image(image: Image.Image, default: float = DEFAULT_MAX_VALUE) -> float:
    """The MAX_VALUE EXIF tag (the spectrogram's peak magnitude), or ``default``."""
    return float(image.getexif().get(SpectrogramParams.ExifTags.MAX_VALUE.value, default))


def open_image(source: T.Union[str, os.PathLike, bytes, T.BinaryIO]) -> Image.Image:
    """Open an image file (path, bytes or file object) fully into memory, with clear errors."""
    name = repr(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else "image data"
    if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
        raise FileNotFoundError(f"image file not found: {name}")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            image.load()
            return _loaded(image)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"cannot read {name} as an image (expected PNG, JPEG or another format PIL reads)") from exc


def copy_exif(source: Image.Image, target: Image.Image) -> Image.Image:
    """``target`` with ``source``'s EXIF tags (the spectrogram parameters) added; PIL's copies, crops and
    conversions drop them. Returns ``target``."""
    exif = source.getexif()
    if len(exif):
        target.getexif().update(exif.items())
    return target


def _loaded(image: Image.Image) -> Image.Image:
    return copy_exif(image, image.copy())


def save_image(image: Image.Image, path: T.Union[str, os.PathLike], *, quality: int = 95) -> None:
    """Save ``image`` with its EXIF, format chosen by extension (PNG, JPEG, ...), atomically."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in _FORMATS:
        raise ValueError(f"unsupported image extension {suffix!r} for {os.fspath(path)!r}; expected one of {sorted(_FORMATS)}")
    kwargs: dict[str, T.Any] = {"format": _FORMATS[suffix]}
    exif = image.getexif()
    if len(exif):
        kwargs["exif"] = exif
    if _FORMATS[suffix] in ("JPEG", "WEBP"):
        kwargs["quality"] = quality
    with atomic_path(path) as tmp:
        image.save(tmp, **kwargs)


def encode_image(image: Image.Image, format: str = "jpeg", *, quality: int = 95) -> bytes:
    """Image file bytes (``"jpeg"`` or ``"png"``, EXIF kept) for sending over HTTP."""
    fmt = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP"}.get(format.lower())
    if fmt is None:
        raise ValueError(f"unsupported image format {format!r}; expected 'jpeg' or 'png'")
    buffer = io.BytesIO()
    kwargs: dict[str, T.Any] = {"format": fmt}
    if len(image.getexif()):
        kwargs["exif"] = image.getexif()
    if fmt != "PNG":
        kwargs["quality"] = quality
    image.save(buffer, **kwargs)
    return buffer.getvalue()
