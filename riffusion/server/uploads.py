"""Uploaded loops: audio files checked against limits, turned into seed loops, kept for a while.

An upload becomes a PNG in a temporary folder the store creates (and removes when the server stops), under
an unguessable id (``upload-<random>``). The id works as ``seed_image_id`` for whoever holds it: the store
is a private lookup of :mod:`riffusion.seed_images`, so ids are found but never listed. Uploads expire after
:data:`UPLOAD_TTL_S`, and only the newest :data:`MAX_UPLOADS` are kept.
"""

from __future__ import annotations

import collections
import io
import logging
import secrets
import shutil
import tempfile
import threading
import time
import typing as T
from pathlib import Path

from riffusion.seed_images import SeedImage, add_private_lookup, remove_private_lookup

if T.TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from riffusion.loops import SeedLoop

log = logging.getLogger("riffusion.server")

#: Largest upload, in bytes.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: Longest audio accepted, in seconds.
MAX_UPLOAD_SECONDS = 60.0
#: Highest sample rate accepted, in Hz (a hostile header may claim billions).
MAX_UPLOAD_SAMPLE_RATE = 192_000
#: Most channels accepted.
MAX_UPLOAD_CHANNELS = 8
#: How long an upload stays usable, in seconds.
UPLOAD_TTL_S = 3600.0
#: Uploads kept at once; the oldest is dropped for a new one.
MAX_UPLOADS = 64
#: Prefix of upload ids.
UPLOAD_PREFIX = "upload-"


class UploadError(ValueError):
    """An upload that is not usable audio or breaks a limit: ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes, *, sample_rate: int) -> "np.ndarray":
    """The audio of an uploaded file, at ``sample_rate``, after checking its header against the limits.

    Parameters
    ----------
    data : bytes
        The file (WAV, FLAC, OGG or MP3; the format is read from the data, not a name).
    sample_rate : int, keyword-only
        Rate to resample to (the model's).

    Returns
    -------
    np.ndarray, shape (channels, samples), float32

    Raises
    ------
    UploadError
        Empty, not audio, truncated, zero length, a sample rate over :data:`MAX_UPLOAD_SAMPLE_RATE`, more
        than :data:`MAX_UPLOAD_CHANNELS` channels, or longer than :data:`MAX_UPLOAD_SECONDS` (413).
    """
    import soundfile as sf

    from riffusion.audio import read_audio

    if not data:
        raise UploadError("the upload is empty; send an audio file (WAV, FLAC, OGG or MP3) as the request body")
    try:
        with sf.SoundFile(io.BytesIO(data)) as header:
            rate, channels, frames = header.samplerate, header.channels, header.frames
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise UploadError(f"the upload is not audio that can be decoded ({str(exc)[:120]}); "
                          "expected WAV, FLAC, OGG or MP3") from None
    if not 1 <= rate <= MAX_UPLOAD_SAMPLE_RATE:
        raise UploadError(f"sample rate {rate} Hz is outside 1 to {MAX_UPLOAD_SAMPLE_RATE} Hz")
    if not 1 <= channels <= MAX_UPLOAD_CHANNELS:
        raise UploadError(f"{channels} channels; at most {MAX_UPLOAD_CHANNELS} are accepted")
    if frames > MAX_UPLOAD_SECONDS * rate:
        raise UploadError(f"the audio lasts {frames / rate:.1f} s, longer than the limit of "
                          f"{MAX_UPLOAD_SECONDS:g} s", status=413)
    try:
        waveform, _ = read_audio(data, sample_rate=sample_rate)
    except ValueError as exc:
        raise UploadError(f"the upload cannot be decoded as audio: {str(exc)[:200]}") from None
    if waveform.shape[1] > MAX_UPLOAD_SECONDS * sample_rate + 1:
        raise UploadError(f"the audio is longer than the limit of {MAX_UPLOAD_SECONDS:g} s", status=413)
    return waveform


class UploadStore:
    """Uploaded seed loops of one server, in a temporary folder, found by id until they expire.

    Parameters
    ----------
    ttl_s : float
        Seconds an upload stays usable.
    max_uploads : int
        Uploads kept; adding one more drops the oldest.
    """

    def __init__(self, *, ttl_s: float = UPLOAD_TTL_S, max_uploads: int = MAX_UPLOADS):
        if ttl_s <= 0 or max_uploads < 1:
            raise ValueError(f"need ttl_s > 0 and max_uploads >= 1, got {ttl_s} and {max_uploads}")
        self.ttl_s, self.max_uploads = float(ttl_s), int(max_uploads)
        self.directory: T.Optional[Path] = None  # created on the first upload
        self._entries: collections.OrderedDict[str, tuple[SeedImage, float]] = collections.OrderedDict()
        self._lock = threading.Lock()
        add_private_lookup(self.lookup)

    def add(self, loop: "SeedLoop", *, description: str = "") -> SeedImage:
        """Keep ``loop`` under a new id; the oldest upload goes when there are too many."""
        from riffusion.image import save_image

        image_id = UPLOAD_PREFIX + secrets.token_urlsafe(18)  # 24 characters, 144 random bits
        with self._lock:
            if self.directory is None:
                self.directory = Path(tempfile.mkdtemp(prefix="riffusion-uploads-"))
            path = self.directory / f"{image_id}.png"
        save_image(loop.image, path)
        entry = SeedImage(id=image_id, path=path, tempo_bpm=loop.tempo_bpm, bars=loop.bars, kind="seed",
                          description=description, beats_per_bar=loop.beats_per_bar)
        with self._lock:
            self._expire(time.monotonic())
            while len(self._entries) >= self.max_uploads:
                self._drop(next(iter(self._entries)))
            self._entries[image_id] = (entry, time.monotonic() + self.ttl_s)
        return entry

    def lookup(self, image_id: str) -> T.Optional[SeedImage]:
        """The upload ``image_id``, or None (unknown or expired)."""
        if not image_id.startswith(UPLOAD_PREFIX):
            return None
        with self._lock:
            self._expire(time.monotonic())
            found = self._entries.get(image_id)
        return None if found is None else found[0]

    def expires_in_s(self, image_id: str) -> T.Optional[float]:
        """Seconds until ``image_id`` expires (None if it is not kept)."""
        with self._lock:
            found = self._entries.get(image_id)
        return None if found is None else max(0.0, found[1] - time.monotonic())

    def __len__(self) -> int:
        with self._lock:
            self._expire(time.monotonic())
            return len(self._entries)

    def _expire(self, now: float) -> None:
        for image_id in [key for key, (_, deadline) in self._entries.items() if deadline <= now]:
            self._drop(image_id)

    def _drop(self, image_id: str) -> None:
        entry, _ = self._entries.pop(image_id)
        entry.path.unlink(missing_ok=True)

    def close(self) -> None:
        """Forget every upload and remove the folder."""
        remove_private_lookup(self.lookup)
        with self._lock:
            self._entries.clear()
            directory, self.directory = self.directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
