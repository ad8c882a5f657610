"""Riffusion: real-time music generation with diffusion on spectrogram images."""

__version__ = "1.0.0.dev0"
