"""Test configuration: offline, quiet torch threads, shared fixtures."""

import os

# Before torch is imported anywhere: idle OpenMP threads must sleep, not spin (shared 2-core machines).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
MUSIC_DIR = REPO / "bench" / "music"


def music_files() -> list[Path]:
    """Real music fetched by scripts/fetch_music.sh (Debian's openly licensed game music)."""
    return sorted(p for p in MUSIC_DIR.rglob("*") if p.suffix in (".ogg", ".flac", ".wav"))


@pytest.fixture(scope="session")
def music_track() -> Path:
    files = music_files()
    if not files:
        pytest.skip("no real music: run scripts/fetch_music.sh (the CI script does)")
    return files[0]


@pytest.fixture(scope="session")
def music_clip(music_track):
    """5.11 s of real music at 44.1 kHz, stereo float32 (2, 225351), from 30 s into the first track."""
    from riffusion.audio import read_audio

    waveform, rate = read_audio(music_track, sample_rate=44100)
    start = min(30 * rate, max(0, waveform.shape[1] - 225351))
    clip = waveform[:, start : start + 225351]
    if clip.shape[0] == 1:
        clip = np.concatenate([clip, clip])
    return clip


@pytest.fixture
def tone():
    """A 5.11 s two-partial tone with a slow tremolo, stereo float32 (2, 225351) at 44.1 kHz."""
    t = np.arange(225351) / 44100.0
    left = 0.4 * np.sin(2 * np.pi * 440 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    right = 0.3 * np.sin(2 * np.pi * 660 * t) + 0.1 * np.sin(2 * np.pi * 1320 * t)
    return np.stack([left, right]).astype(np.float32)


def run_cli(*args: str, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m riffusion.cli ARGS`` as a subprocess, returning the completed process (text)."""
    return subprocess.run(
        [sys.executable, "-m", "riffusion.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )
