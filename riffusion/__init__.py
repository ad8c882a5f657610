"""Riffusion: real-time music generation with diffusion on spectrogram images."""

import warnings as _warnings

__version__ = "1.0.0.dev0"

# pydub (kept for the original's AudioSegment interface) looks for ffmpeg at import and warns; nothing
# here needs ffmpeg: soundfile reads and writes WAV, FLAC, OGG and MP3 itself.
_warnings.filterwarnings("ignore", message="Couldn't find ffmpeg or avconv", category=RuntimeWarning)
