"""Does the jam play what you type, on the loop's beat? Steering and beat at the jam's own defaults.

For each model, a real server (``riffusion serve`` as a subprocess on a loopback port) is asked for its
``/api/v1/defaults`` (denoising, steps, guidance: what the jam sends), and then for clips over two seed
loops, a 4/4 one (``og_beat``) and a 3/4 one (``waltz``), exactly as the jam asks for them
(``POST /api/v1/generate``, one prompt, alpha 0). From the returned audio:

* steering: for prompt pairs that must sound different (low vs high register: spectral centroid;
  sustained vs percussive: spectral flux per second), the share of (pair, seed, loop) cases where the
  second prompt's statistic is at least ``--ratio`` (1.5) times the first's;
* beat kept: for rhythmic prompts, the share of clips whose onset strength (of the returned spectrogram,
  :func:`riffusion.rhythm.onset_envelope`) near the loop's beats is clearly higher than near the same grid
  shifted by half a beat (``on / (on + off) >= 0.556``: 25 % more); "near" is the MIREX beat-tracking
  tolerance, +-70 ms ("beat" columns), and, stricter, +-0.08 beat ("strict" columns);
* speed: the server's seconds per clip (sequential requests) over the clip's duration, for the clips above
  (each a segment's end point) and for a stream of clips as the jam asks for them (``stream``: a seed
  step, a prompt change and a seed step, four clips each at alpha 0.25-1; mean and slowest clip).

The prompts were chosen before any model was measured with them, and none is a training caption.

    python bench/bench_jam.py                                   # the shipped default model
    python bench/bench_jam.py --model riffusion-small-v1 --model riffusion-small-v2 --seeds 5
    python bench/bench_jam.py --model riffusion-small-v1 --denoising 1.0   # override the jam's setting
    python bench/bench_jam.py --reference data/ds-small-v5      # the statistics between real rendered clips
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import soundfile  # noqa: E402
from PIL import Image  # noqa: E402

from riffusion.dataset import features  # noqa: E402
from riffusion.image import params_from_image  # noqa: E402
from riffusion.rhythm import BEAT_TOLERANCE_S, IMAGE_ONSET_LAG_S, BeatGrid, beat_contrast, onset_envelope  # noqa: E402
from server.conftest import free_port, start_server_process, wait_healthy  # noqa: E402

#: (statistic, lower prompt, higher prompt): the second must measure higher.
STEERING_PAIRS = (
    ("centroid", "a rumbling low bass guitar groove", "a sparkling high glockenspiel melody"),
    ("centroid", "a dark cello playing low notes", "a bright flute playing high notes"),
    ("centroid", "a deep tuba and contrabass", "a tinkling music box"),
    ("flux", "a soft sustained string pad", "a busy drum kit groove"),
    ("flux", "an ambient synth drone with long notes", "crisp snare and hi-hat rhythm"),
)
#: Prompts for choosing a model's settings (guidance, denoising, steps), kept apart from the measured ones
#: above so that the figures are not tuned on (``--tuning``; seeds from 100). Ten pairs, because with a
#: few the spread between pairs and seeds is larger than the differences between settings.
TUNING_PAIRS = (
    ("centroid", "a low droning bassoon", "a high piccolo trill"),
    ("centroid", "a heavy bass synthesizer", "bright chiming bells"),
    ("flux", "a slow organ chord held", "a fast tabla rhythm"),
    ("flux", "a warm choir singing long notes", "rapid woodblock and shaker percussion"),
    ("centroid", "a murky low synth bass line", "a glittering high harp melody"),
    ("centroid", "a grumbling low trombone solo", "a shrill high tin whistle tune"),
    ("centroid", "a deep baritone saxophone riff", "a bright xylophone melody"),
    ("flux", "a long held accordion chord", "a rattling snare drum roll"),
    ("flux", "a calm sustained violin note", "a fast conga and cowbell pattern"),
    ("flux", "a gentle pad of sustained strings and choir", "clattering hand claps and tambourine"),
)
TUNING_RHYTHMIC_PROMPTS = ("a disco groove with bass and drums", "a folk dance on accordion")
#: A second measured set (``--prompts second``; seeds from 200), written before any model was measured with
#: it: ten pairs where the first set has five, so that a difference between two models is less a matter of
#: which pairs were picked.
SECOND_PAIRS = (
    ("centroid", "a low moaning didgeridoo", "a high twinkling wind chime"),
    ("centroid", "a deep bass clarinet melody", "a bright soprano recorder melody"),
    ("centroid", "a low growling electric bass", "a high sparkling synth arpeggio"),
    ("centroid", "a sombre low viola da gamba", "a brilliant high trumpet fanfare"),
    ("centroid", "low rumbling taiko drums", "high pinging triangle and crotales"),
    ("flux", "a sustained drone of bagpipes", "a rapid drum and bass breakbeat"),
    ("flux", "a slow swelling synth pad", "a galloping bodhran rhythm"),
    ("flux", "soft long organ tones", "sharp staccato pizzicato strings"),
    ("flux", "a held harmonium chord", "a busy jazz drum solo"),
    ("flux", "a floating ambient wash of sound", "a tight funk drum break with ghost notes"),
)
SECOND_RHYTHMIC_PROMPTS = ("a salsa band with piano and horns", "an electro house track with four on the floor kick",
                           "a country two-step with banjo", "a reggae groove with bass and drums")
#: A third measured set (``--prompts third``; seeds from 300), written before the fine-tune on whole-range
#: instrument solos was trained or measured, to measure it on prompts nobody chose settings or data by.
THIRD_PAIRS = (
    ("centroid", "a low brooding double bass solo", "a high singing violin solo"),
    ("centroid", "deep booming timpani rolls", "a sparkling celesta melody"),
    ("centroid", "a dark low piano ostinato", "a bright high piano melody"),
    ("centroid", "a gruff low tenor saxophone", "a light airy pan flute"),
    ("centroid", "a rumbling low synth bass drone", "a shimmering high synth lead"),
    ("flux", "a soft sustained french horn chord", "a busy bongo and conga groove"),
    ("flux", "a long slow cello note", "a rapid tambourine and shaker rhythm"),
    ("flux", "a steady warm synth pad", "a crisp electronic drum machine beat"),
    ("flux", "a calm held choir chord", "a fast clattering percussion ensemble"),
    ("flux", "a quiet sustained string section", "a pounding rock drum beat"),
)
THIRD_RHYTHMIC_PROMPTS = ("a hip hop beat with a deep kick", "a ska band with offbeat guitar",
                          "a bluegrass tune with banjo and fiddle", "a samba with surdo and whistles")
RHYTHMIC_PROMPTS = ("a funky drum groove", "a marching brass band", "an upbeat piano boogie",
                    "a rock band with drums and electric guitar")
LOOPS = ("og_beat", "waltz")
#: --prompts NAME: (steering pairs, rhythmic prompts, first seed)
PROMPT_SETS = {"measured": (STEERING_PAIRS, RHYTHMIC_PROMPTS, 0),
               "tuning": (TUNING_PAIRS, TUNING_RHYTHMIC_PROMPTS, 100),
               "second": (SECOND_PAIRS, SECOND_RHYTHMIC_PROMPTS, 200),
               "third": (THIRD_PAIRS, THIRD_RHYTHMIC_PROMPTS, 300)}
CLEARLY_ON_BEAT = 1.25 / 2.25  # on >= 1.25 x off


#: The steering statistics by name: (waveform, sample rate) -> the value a pair must move.
STATISTICS = {"centroid": features.spectral_centroid, "flux": features.spectral_flux}

#: (statistic, lower kind, higher kind, caption rules) for ``--reference``: rendered clips of a built dataset
#: that differ the way a steering pair should, to show how far the statistic moves between real clips of
#: the two kinds once they pass through the model's spectrogram format (the most a model could reach).
#: A rule is (source, text must contain, instruments must equal or None).
REFERENCE_KINDS = (
    ("centroid", ("solo low melodies and bass lines", [("part", "solo low ", None), ("part", " line,", None)]),
     ("solo high melodies", [("part", "solo high ", None)])),
    ("flux", ("solo sustained chords", [("part", "solo sustained ", None)]),
     ("drum parts", [("part", "drums playing", ["drums"])])),
)


def reference(data_dir: str, *, ratio: float, pairs: int = 60, seed: int = 0) -> list[tuple[str, str, float, float]]:
    """(statistic, "low kind < high kind", share of random clip pairs moved >= ``ratio``, median ratio)."""
    import json
    import random

    from riffusion.image import waveform_from_image

    rows = [json.loads(line) for line in (Path(data_dir) / "metadata.jsonl").read_text().splitlines() if line]

    def matches(row, rules) -> bool:
        return any(row.get("source") == source and text in row["text"]
                   and (instruments is None or row.get("instruments") == instruments)
                   for source, text, instruments in rules)

    def statistic(row, name: str) -> float:
        image = Image.open(Path(data_dir) / row["file_name"])
        params = params_from_image(image, warn=False)
        waveform = waveform_from_image(image, params)
        return STATISTICS[name](waveform, params.sample_rate)

    rng = random.Random(seed)
    out = []
    for name, (low_name, low_rules), (high_name, high_rules) in REFERENCE_KINDS:
        low = [r for r in rows if matches(r, low_rules)]
        high = [r for r in rows if matches(r, high_rules)]
        if not low or not high:
            raise SystemExit(f"--reference {data_dir}: no clips of {low_name!r} or {high_name!r} (a built dataset "
                             "with rendered parts is needed)")
        ratios = [statistic(rng.choice(high), name) / max(statistic(rng.choice(low), name), 1e-9)
                  for _ in range(pairs)]
        out.append((name, f"{low_name} < {high_name}", float(np.mean([r >= ratio for r in ratios])),
                    float(np.median(ratios))))
    return out


#: Kinds of rendered audio for ``--reference-audio``: which of the dataset builder's generated solos and parts
#: (:class:`riffusion.dataset.render.RenderJob`) are one.
AUDIO_KINDS = {
    "solo low melodies": lambda job: job.style.startswith("solo low ") and "melody" in job.style,
    "solo high melodies": lambda job: job.style.startswith("solo high ") and "melody" in job.style,
    "held chords": lambda job: job.style.startswith("sustained "),
    "hand percussion solos": lambda job: job.kind == "solo" and bool(job.instrument_names),
    "drum kit parts": lambda job: job.kind == "part" and job.style.startswith("drums playing"),
}
#: (statistic, low kind, high kind) compared by ``--reference-audio``.
AUDIO_REFERENCE_PAIRS = (
    ("centroid", "solo low melodies", "solo high melodies"),
    ("flux", "held chords", "hand percussion solos"),
    ("flux", "held chords", "drum kit parts"),
)


def audio_reference(workdir: Path, *, ratio: float, clips: int = 24, seed: int = 0,
                    ) -> list[tuple[str, str, float, float, float, float]]:
    """How far the steering statistics move between rendered recordings of two kinds, as played and after
    the small models' spectrogram format (image, then the server's phase method and loudness filter): is a
    ``ratio`` between two kinds a property of the sounds, or of the format?

    ``clips`` of each kind are rendered with the dataset builder's generators (fluidsynth and FluidR3_GM),
    one 5.1 s excerpt each (from 2 s in, past the first attack), both versions at the server's loudness.
    Returns (statistic, "low kind < high kind", share of all (low, high) pairs moved >= ``ratio`` as played,
    their median ratio, the same two through the format).
    """
    import soundfile as sf

    from riffusion.audio import normalize_loudness
    from riffusion.dataset import render
    from riffusion.image import image_from_waveform, waveform_from_image
    from riffusion.small.config import SMALL_IMAGE_WIDTH, SMALL_PARAMS

    if clips < 1:
        raise ValueError(f"need clips >= 1, got {clips}")
    params, sr = SMALL_PARAMS, SMALL_PARAMS.sample_rate
    # every instrument of the solos once or more; one part in seven is a drum kit alone
    jobs = render.solo_jobs(seed=seed, count=max(254, 10 * clips)) + render.part_jobs(seed=seed, count=7 * clips)
    length, offset = params.hop_length * (SMALL_IMAGE_WIDTH - 1), 2 * sr
    rendered: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}  # kind -> (as played, through the format)

    def excerpts(kind: str) -> list[tuple[np.ndarray, np.ndarray]]:
        if kind not in rendered:
            rendered[kind] = []
            for job in [job for job in jobs if AUDIO_KINDS[kind](job)][:clips]:
                wav, _ = render.render_job(job, workdir, sample_rate=sr)
                audio, _ = sf.read(wav, dtype="float32", always_2d=True)
                played = normalize_loudness(audio.mean(axis=1)[None, offset:offset + length], sr)[0]
                rendered[kind].append((played, waveform_from_image(image_from_waveform(played, sr, params), params)[0]))
            if not rendered[kind]:
                raise LookupError(f"the dataset builder's generators made no clip of {kind!r}")
        return rendered[kind]

    rows = []
    for name, low_kind, high_kind in AUDIO_REFERENCE_PAIRS:
        statistic = STATISTICS[name]
        low = [(statistic(a, sr), statistic(b, sr)) for a, b in excerpts(low_kind)]
        high = [(statistic(a, sr), statistic(b, sr)) for a, b in excerpts(high_kind)]
        played = [h[0] / max(lo[0], 1e-9) for lo in low for h in high]
        through = [h[1] / max(lo[1], 1e-9) for lo in low for h in high]
        rows.append((name, f"{low_kind} < {high_kind}", float(np.mean([r >= ratio for r in played])),
                     float(np.median(played)), float(np.mean([r >= ratio for r in through])), float(np.median(through))))
    return rows


class Server:
    """``riffusion serve --model MODEL`` on a free loopback port (the test suite's server helpers), until
    closed."""

    def __init__(self, model: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = start_server_process("--model", model, "--cache-size", "0", port=self.port)
        wait_healthy(self.url, timeout=600, process=self.process)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def clip(http: httpx.Client, url: str, defaults: dict, prompt: str, seed: int, loop: str,
         denoising: float, *, end: tuple[str, int] | None = None, alpha: float = 0.0,
         ) -> tuple[np.ndarray, int, float, Image.Image]:
    """One clip as the jam asks for it: ``prompt`` at ``seed``, or the point ``alpha`` of the way from there
    to ``end`` (prompt, seed)."""
    guidance = defaults["guidance"]
    end_prompt, end_seed = end or (prompt, seed)
    body = {
        "start": {"prompt": prompt, "seed": seed, "denoising": denoising, "guidance": guidance},
        "end": {"prompt": end_prompt, "seed": end_seed, "denoising": denoising, "guidance": guidance},
        "alpha": alpha, "num_inference_steps": defaults["num_inference_steps"], "seed_image_id": loop,
        "audio_format": "wav", "image_format": "png",
    }
    started = time.monotonic()
    response = http.post(f"{url}/api/v1/generate", json=body)
    elapsed = time.monotonic() - started
    response.raise_for_status()
    data = response.json()
    waveform, sample_rate = soundfile.read(io.BytesIO(base64.b64decode(data["audio"].split(",", 1)[1])), always_2d=True)
    image = Image.open(io.BytesIO(base64.b64decode(data["image"].split(",", 1)[1])))
    image.load()
    return waveform.T.astype(np.float32), sample_rate, elapsed, image


#: The jam's stream for the speed figure: (start prompt, start seed, end prompt, end seed) per segment of four
#: clips, as riffusion/web/sequence.js makes them (a seed step, a typed prompt reached at the current seed).
STREAM = (("a lofi hip hop beat", 1, "a lofi hip hop beat", 2),
          ("a lofi hip hop beat", 2, "a marching brass band", 2),
          ("a marching brass band", 2, "a marching brass band", 3))


def on_beat(image: Image.Image, grid: BeatGrid) -> tuple[float, float]:
    """:func:`riffusion.rhythm.beat_contrast` of a returned spectrogram image on ``grid``: with the MIREX
    tolerance (+-70 ms around each beat) and with a stricter one (+-0.08 beat: +-51 ms at 94 bpm)."""
    params = params_from_image(image, warn=False)
    pixels = np.asarray(image.convert("RGB").getchannel("R"), dtype=np.float32)
    envelope, column_s = onset_envelope(pixels), params.step_size_ms / 1000.0
    return (beat_contrast(envelope, grid, column_s=column_s, lag_s=IMAGE_ONSET_LAG_S, width_s=BEAT_TOLERANCE_S),
            beat_contrast(envelope, grid, column_s=column_s, lag_s=IMAGE_ONSET_LAG_S))


def loop_grids(url: str) -> dict[str, BeatGrid]:
    seeds = httpx.get(f"{url}/api/v1/seed_images", timeout=30).json()
    items = seeds.get("seed_images", seeds) if isinstance(seeds, dict) else seeds
    grids = {}
    for item in items:
        if item.get("id") in LOOPS and item.get("tempo_bpm"):
            grids[item["id"]] = BeatGrid(bpm=float(item["tempo_bpm"]), beats_per_bar=item.get("beats_per_bar"))
    missing = [loop for loop in LOOPS if loop not in grids]
    if missing:
        raise LookupError(f"the server's seed images lack tempo annotations for {missing}")
    return grids


def measure(model: str, *, seeds: int, ratio: float, denoising: float | None, guidance: float | None = None,
            steps: int | None = None, prompts: str = "measured") -> dict:
    pairs, rhythmic, first_seed = PROMPT_SETS[prompts]
    server = Server(model)
    try:
        defaults = httpx.get(f"{server.url}/api/v1/defaults", timeout=30).json()
        if guidance is not None:
            defaults["guidance"] = guidance
        if steps is not None:
            defaults["num_inference_steps"] = steps
        grids = loop_grids(server.url)
        strength = defaults["denoising"] if denoising is None else denoising
        steer: dict[str, list[bool]] = {loop: [] for loop in LOOPS}
        by_pair: dict[str, list[float]] = {f"{low} < {high}": [] for _, low, high in pairs}
        ratios: list[float] = []
        beat: dict[str, list[float]] = {loop: [] for loop in LOOPS}
        times: list[float] = []
        duration = None
        with httpx.Client(timeout=600) as http:
            clip(http, server.url, defaults, "warm up", 0, LOOPS[0], strength)  # first-use costs out of the times
            for loop in LOOPS:
                for seed in range(first_seed, first_seed + seeds):
                    for statistic, low, high in pairs:
                        values = []
                        for prompt in (low, high):
                            waveform, sr, elapsed, _ = clip(http, server.url, defaults, prompt, seed, loop, strength)
                            times.append(elapsed)
                            duration = waveform.shape[-1] / sr
                            values.append(STATISTICS[statistic](waveform, sr))
                        r = values[1] / max(values[0], 1e-9)
                        ratios.append(r)
                        steer[loop].append(r >= ratio)
                        by_pair[f"{low} < {high}"].append(r)
                    for prompt in rhythmic:
                        waveform, sr, elapsed, image = clip(http, server.url, defaults, prompt, seed, loop, strength)
                        times.append(elapsed)
                        beat[loop].append(on_beat(image, grids[loop]))
            stream = []
            for start_prompt, start_seed, end_prompt, end_seed in STREAM:
                for alpha in (0.25, 0.5, 0.75, 1.0):
                    _, _, elapsed, _ = clip(http, server.url, defaults, start_prompt, start_seed, LOOPS[0], strength,
                                            end=(end_prompt, end_seed), alpha=alpha)
                    stream.append(elapsed)
        return {
            "model": model, "denoising": strength, "steps": defaults["num_inference_steps"],
            "guidance": defaults["guidance"],
            "steer": {loop: float(np.mean(v)) for loop, v in steer.items()},
            "median_ratio": float(np.median(ratios)),
            "by_pair": {pair: (float(np.mean(np.array(r) >= ratio)), float(np.median(r))) for pair, r in by_pair.items()},
            "beat": {loop: float(np.mean(np.array(v)[:, 0] >= CLEARLY_ON_BEAT)) for loop, v in beat.items()},
            "beat_strict": {loop: float(np.mean(np.array(v)[:, 1] >= CLEARLY_ON_BEAT)) for loop, v in beat.items()},
            "median_contrast": float(np.median([c[0] for v in beat.values() for c in v])),
            "rtf": statistics.median(times) / duration,
            "stream_rtf": float(np.mean(stream)) / duration, "stream_max_rtf": max(stream) / duration,
        }
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model to serve (repeatable); default: the server's")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per (pair, loop)")
    parser.add_argument("--ratio", type=float, default=1.5, help="how much a pair must move its statistic")
    parser.add_argument("--denoising", type=float, default=None, help="instead of the jam's default")
    parser.add_argument("--guidance", type=float, default=None, help="instead of the jam's default")
    parser.add_argument("--steps", type=int, default=None,
                        help="instead of the server's recommendation (which depends on the machine's load)")
    parser.add_argument("--prompts", choices=sorted(PROMPT_SETS), default="measured",
                        help="which prompts and seeds: the measured ones, the tuning ones (for choosing settings), "
                             "or the second and third measured sets")
    parser.add_argument("--tuning", action="store_const", dest="prompts", const="tuning",
                        help="the same as --prompts tuning")
    parser.add_argument("--reference", metavar="DATA",
                        help="also print how far the statistics move between rendered clips of a built dataset "
                             "(sustained chords vs drum parts, low vs high parts) through the model's format")
    parser.add_argument("--reference-audio", type=int, metavar="CLIPS", default=0,
                        help="also render CLIPS recordings of each kind (fluidsynth) and print how far the statistics "
                             "move between them as played and through the model's format")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.ratio <= 1 or (args.denoising is not None and not 0 <= args.denoising <= 1):
        parser.error("need --seeds >= 1, --ratio > 1 and --denoising in [0, 1]")
    if args.reference_audio < 0:
        parser.error("need --reference-audio >= 0")
    models = args.model or ([] if args.reference or args.reference_audio else [None])  # --reference alone measures no model
    rows = []
    for model in models:
        if model is None:
            from riffusion.small import DEFAULT_SMALL_MODEL

            model = DEFAULT_SMALL_MODEL
        rows.append(measure(model, seeds=args.seeds, ratio=args.ratio, denoising=args.denoising,
                            guidance=args.guidance, steps=args.steps, prompts=args.prompts))
    pairs, rhythmic, _ = PROMPT_SETS[args.prompts]
    cases = len(pairs) * args.seeds
    if rows:
        print_rows(rows, cases=cases, rhythmic=len(rhythmic) * args.seeds, ratio=args.ratio)
    if args.reference:
        print(f"\nreference: rendered clips of {args.reference} through the spectrogram format, 60 random pairs "
              f"each: share moved >= {args.ratio}x, median ratio")
        for name, kinds, share, median in reference(args.reference, ratio=args.ratio):
            print(f"  {share:4.0%} {median:5.2f}  {name}: {kinds}")
    if args.reference_audio:
        import tempfile

        print(f"\nreference: {args.reference_audio} rendered recordings of each kind, all pairs: share moved "
              f">= {args.ratio}x and median ratio, as played / through the spectrogram format")
        with tempfile.TemporaryDirectory() as workdir:
            for name, kinds, share, median, share_f, median_f in audio_reference(
                    Path(workdir), ratio=args.ratio, clips=args.reference_audio):
                print(f"  {share:4.0%} {median:5.2f} / {share_f:4.0%} {median_f:5.2f}  {name}: {kinds}")
    return 0


def print_rows(rows: list[dict], *, cases: int, rhythmic: int, ratio: float) -> None:
    print(f"\nsteering: {cases} (pair, seed) cases per loop, moved >= {ratio}x the right way; beat: "
          f"{rhythmic} rhythmic clips per loop clearly on the loop's beat")
    print(f"{'model':28} {'denoise':>7} {'steps':>5} {'guide':>5} {'steer 4/4':>9} {'steer 3/4':>9} {'median x':>8} "
          f"{'beat 4/4':>8} {'beat 3/4':>8} {'contrast':>8} {'strict 4/4':>10} {'strict 3/4':>10} {'RTF':>6} "
          f"{'stream':>6} {'max':>6}")
    for row in rows:
        print(f"{row['model']:28} {row['denoising']:7.2f} {row['steps']:5d} {row['guidance']:5.1f} {row['steer']['og_beat']:9.0%} "
              f"{row['steer']['waltz']:9.0%} {row['median_ratio']:8.2f} {row['beat']['og_beat']:8.0%} "
              f"{row['beat']['waltz']:8.0%} {row['median_contrast']:8.2f} {row['beat_strict']['og_beat']:10.0%} "
              f"{row['beat_strict']['waltz']:10.0%} {row['rtf']:6.3f} {row['stream_rtf']:6.3f} "
              f"{row['stream_max_rtf']:6.3f}")
    for row in rows:
        print(f"\n{row['model']}: share of cases moved >= {ratio}x, median ratio, per pair (both loops)")
        for pair, (share, median) in row["by_pair"].items():
            print(f"  {share:4.0%} {median:5.2f}  {pair}")


if __name__ == "__main__":
    sys.exit(main())
