"""Riffusion: real-time music generation with diffusion on spectrogram images.

The small public API, imported lazily so ``import riffusion`` stays fast::

    import riffusion
    clip = riffusion.text_to_audio("jazzy rapping from paris", seed=1)   # plays in Jupyter
    params = riffusion.SpectrogramParams()
"""

import importlib as _importlib
import warnings as _warnings

__version__ = "1.0.0.dev0"

# pydub (kept for the original's AudioSegment interface) looks for ffmpeg at import and warns; nothing
# here needs ffmpeg: soundfile reads and writes WAV, FLAC, OGG and MP3 itself.
_warnings.filterwarnings("ignore", message="Couldn't find ffmpeg or avconv", category=RuntimeWarning)

_EXPORTS = {
    "SpectrogramParams": "riffusion.spectrogram_params",
    "SpectrogramImageConverter": "riffusion.spectrogram_image_converter",
    "SpectrogramConverter": "riffusion.spectrogram_converter",
    "PromptInput": "riffusion.datatypes",
    "InferenceInput": "riffusion.datatypes",
    "read_audio": "riffusion.audio",
    "write_audio": "riffusion.audio",
    "load_pipeline": "riffusion.loading",
    "text_to_audio": "riffusion.notebook",
    "continue_audio": "riffusion.notebook",
    "render_session": "riffusion.notebook",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(_importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'riffusion' has no attribute {name!r}")


def __dir__():
    return __all__
