"""``riffusion eval``: weight-free quality metrics of an audio clip (see :mod:`riffusion.metrics`)."""

from __future__ import annotations

import argparse
import json
import math

COMMANDS = ("evaluate",)

_DESCRIPTIONS = {
    "mel_consistency_db": "mel spectral convergence vs the source image (lower is better)",
    "spectral_convergence_db": "spectral convergence vs the reference audio (lower is better)",
    "log_spectral_distance_db": "log-spectral distance vs the reference audio (lower is better)",
    "high_band_energy_db": "energy above the image's top frequency, relative to total (lower is better)",
    "loop_seam_db": "spectral jump where the clip loops, vs inside the clip (about 0 is seamless)",
}


def evaluate(
    *,
    audio: str,
    reference: str | None = None,
    image: str | None = None,
    json_output: bool = False,
) -> dict[str, float]:
    """Print quality metrics of ``audio``; with ``reference`` audio and/or the source ``image``, more."""
    from riffusion.audio import read_audio
    from riffusion.image import open_image, params_from_image
    from riffusion.metrics import evaluate_audio

    pil_image = open_image(image) if image is not None else None
    params = params_from_image(pil_image, warn=False) if pil_image is not None else None
    target_rate = params.sample_rate if params is not None else None
    waveform, sample_rate = read_audio(audio, sample_rate=target_rate)
    reference_waveform = None
    if reference is not None:
        reference_waveform, _ = read_audio(reference, sample_rate=sample_rate)
    results = evaluate_audio(
        waveform, sample_rate, reference=reference_waveform, image=pil_image, params=params
    )
    if json_output:
        print(json.dumps({k: (v if math.isfinite(v) else None) for k, v in results.items()}, indent=2))
    else:
        width = max(len(k) for k in results)
        for key, value in results.items():
            print(f"{key:<{width}}  {value:8.2f}  {_DESCRIPTIONS.get(key, '')}")
    return results


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="quality metrics of an audio clip (consistency with its image, vs a reference, loop seam)",
        description="Weight-free quality metrics of an audio clip, in dB. With --image: mel spectral "
        "convergence against the spectrogram image the audio was made from. With --reference: spectral "
        "convergence and log-spectral distance against reference audio. Always: high-band energy and "
        "loop-seam discontinuity.",
    )
    p.add_argument("audio", help="audio file to evaluate (wav, flac, ogg, mp3)")
    p.add_argument("--reference", help="reference audio file (resampled to the clip's rate)")
    p.add_argument("--image", help="the spectrogram image the audio was reconstructed from")
    p.add_argument("--json", dest="json_output", action="store_true", help="print JSON instead of a table")
    p.set_defaults(_command=evaluate)
