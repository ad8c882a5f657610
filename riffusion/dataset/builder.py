"""Build a captioned dataset of Riffusion-format spectrogram images.

Output folder (a Hugging Face ``datasets`` "imagefolder": ``load_dataset("imagefolder", data_dir=out)``)::

    out/
      images/<source>/<clip id>.png   Riffusion images (EXIF carries the spectrogram parameters)
      metadata.jsonl                  one row per image: file_name, text (the caption), source, origin,
                                      start_s, author, license, attribution, measured facts
      manifest.csv                    one row per source file: origin, source, author, license,
                                      attribution, clips
      dataset.json                    spectrogram params, image size, build config, counts
      ATTRIBUTION.md                  human-readable credits grouped by licence

The build is reproducible: sources are processed in a fixed order, random choices are seeded from the
config, and nothing time-dependent is written. It writes into ``out.partial`` and renames at the end, so
an interrupted build never leaves a half-written dataset behind.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
import shutil
import typing as T
from pathlib import Path

import numpy as np

from riffusion.dataset import features
from riffusion.dataset.sources import AudioSource, game_music_sources, user_folder_sources
from riffusion.files import atomic_folder
from riffusion.spectrogram_params import SpectrogramParams

SOURCE_KINDS = ("mma", "parts", "solos", "game-music", "scores", "user")


@dataclasses.dataclass
class DatasetConfig:
    """Everything that determines a dataset build."""

    params: SpectrogramParams
    image_width: int = 256
    sources: tuple[str, ...] = ("mma", "parts", "game-music")
    user_folder: T.Optional[str] = None
    user_license: str = "user-provided"
    seed: int = 0
    max_grooves: T.Optional[int] = 300  # MMA grooves (of ~700), spread over the library
    songs_per_groove: int = 1
    render_seconds: float = 26.0
    part_count: int = 160
    solo_count: int = 254  # instrument solos (riffusion.dataset.render.solo_jobs): two per instrument
    score_count: int = 260  # renders of public-domain scores (riffusion.dataset.scores), each score_seconds long
    score_seconds: float = 40.8
    score_collections: T.Optional[tuple[str, ...]] = None  # None: every public-domain collection
    game_packages: T.Optional[tuple[str, ...]] = None  # None: all catalogued
    max_clips_per_file: int = 16  # long recordings: clips spread evenly over the track
    min_rms_dbfs: float = -45.0  # quieter clips are left out
    cache_dir: str = "data/cache"
    # How measured tempos (and so caption tempo words) choose their octave, see features.estimate_tempo.
    # "prior" is the default so that a default build reproduces the datasets of the shipped model's first
    # training stages; "onset-rate" tells slow from fast music far more often (bench/bench_tempo.py).
    tempo_octave: str = "prior"

    def to_dict(self) -> dict[str, T.Any]:
        data = dataclasses.asdict(self)
        data["params"] = self.params.to_dict()
        data["sources"] = list(self.sources)
        data["game_packages"] = list(self.game_packages) if self.game_packages else None
        data["score_collections"] = list(self.score_collections) if self.score_collections else None
        return data


@dataclasses.dataclass
class BuildResult:
    out_dir: Path
    num_images: int
    num_sources: int
    skipped: list[str]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "x"


def _join(words: T.Sequence[str]) -> str:
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _clip_starts(num_samples: int, clip_samples: int, max_clips: int) -> list[int]:
    count = num_samples // clip_samples
    if count <= 0:
        return []
    if count <= max_clips:
        return [i * clip_samples for i in range(count)]
    # Spread max_clips windows evenly over the track, aligned to the clip grid.
    return [int(round(i * (count - 1) / (max_clips - 1))) * clip_samples for i in range(max_clips)]


def build_dataset(
    out_dir: T.Union[str, Path],
    config: DatasetConfig,
    *,
    overwrite: bool = False,
    progress: T.Optional[bool] = None,
    log: T.Callable[[str], None] = print,
) -> BuildResult:
    """Render/collect the configured sources, cut them into clips and write the dataset folder.

    Raises
    ------
    FileExistsError
        If ``out_dir`` exists and ``overwrite`` is false.
    ValueError
        For unknown source kinds, a ``"user"`` source without ``user_folder`` or an unknown
        ``tempo_octave``.
    """
    from tqdm.auto import tqdm

    from riffusion.audio import read_audio
    from riffusion.dataset import render
    from riffusion.image import save_image
    from riffusion.image import image_from_waveform
    from riffusion.rhythm import onset_strength

    out_dir = Path(out_dir)
    unknown = [s for s in config.sources if s not in SOURCE_KINDS]
    if unknown:
        raise ValueError(f"unknown dataset sources {unknown}; expected some of {list(SOURCE_KINDS)}")
    sources = tuple(config.sources)
    if config.user_folder and "user" not in sources:
        sources += ("user",)
    if "user" in sources and not config.user_folder:
        raise ValueError("source 'user' needs a user folder (--user-folder DIR)")
    if not sources:
        raise ValueError("no sources selected")
    if config.tempo_octave not in features.TEMPO_OCTAVES:
        raise ValueError(f"tempo_octave must be one of {list(features.TEMPO_OCTAVES)}, got {config.tempo_octave!r}")
    if config.image_width < 8:
        raise ValueError(f"image_width must be at least 8 columns, got {config.image_width}")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"output folder {str(out_dir)!r} exists and is not empty; pass --overwrite")

    params = config.params
    sample_rate = params.sample_rate
    clip_samples = params.num_samples(config.image_width)  # hop * (width - 1): exactly width columns
    cache = Path(config.cache_dir)
    with atomic_folder(out_dir) as partial:
        (partial / "images").mkdir()
        rows: list[dict[str, T.Any]] = []
        manifest: list[dict[str, T.Any]] = []
        skipped: list[str] = []

        def add_clips(
            waveform: np.ndarray, origin: str, src: AudioSource, caption_for: T.Callable[[np.ndarray], tuple[str, dict]]
        ) -> int:
            folder = partial / "images" / _slug(src.source)
            folder.mkdir(parents=True, exist_ok=True)
            made = 0
            stem = _slug(Path(origin).stem)
            for start in _clip_starts(waveform.shape[-1], clip_samples, config.max_clips_per_file):
                clip = waveform[:, start : start + clip_samples]
                rms = float(np.sqrt(np.mean(clip.astype(np.float64) ** 2)))
                if 20 * math.log10(max(rms, 1e-10)) < config.min_rms_dbfs:
                    continue
                caption, facts = caption_for(clip)
                image = image_from_waveform(clip, sample_rate, params)
                if image.width != config.image_width:
                    raise AssertionError(f"clip image is {image.width} wide, expected {config.image_width}")
                name = f"{stem}-{start // clip_samples:03d}.png"
                save_image(image, folder / name)
                rows.append(
                    {
                        "file_name": f"images/{folder.name}/{name}",
                        "text": caption,
                        "source": src.source,
                        "origin": origin,
                        "start_s": round(start / sample_rate, 3),
                        "duration_s": round(clip_samples / sample_rate, 3),
                        "author": src.author,
                        "license": src.license,
                        "attribution": src.attribution,
                        "onset_strength": round(onset_strength(np.asarray(image.getchannel("R"), np.float32)), 3),
                        **facts,
                    }
                )
                made += 1
            manifest.append(
                {
                    "origin": origin,
                    "source": src.source,
                    "author": src.author,
                    "license": src.license,
                    "attribution": src.attribution,
                    "clips": made,
                }
            )
            return made

        # 1. Rendered MIDI (exact captions).
        jobs = []
        if "mma" in sources:
            jobs += render.mma_jobs(
                seed=config.seed, max_grooves=config.max_grooves, songs_per_groove=config.songs_per_groove,
                seconds=config.render_seconds,
            )
        if "parts" in sources:
            jobs += render.part_jobs(seed=config.seed, count=config.part_count, seconds=config.render_seconds)
        if "solos" in sources:
            jobs += render.solo_jobs(seed=config.seed, count=config.solo_count, seconds=config.render_seconds)
        if jobs:
            soundfont = render.find_soundfont()
            workdir = cache / "render" / f"sr{sample_rate}-seed{config.seed}"
            for job in tqdm(jobs, desc="render MIDI", disable=None if progress is None else not progress):
                try:
                    wav, instruments = render.render_job(job, workdir, sample_rate=sample_rate, soundfont=soundfont)
                    instruments = list(job.instrument_names) or instruments
                except (RuntimeError, OSError, ValueError) as exc:
                    skipped.append(f"{job.id}: {exc}")
                    continue
                waveform, _ = read_audio(wav, sample_rate=sample_rate, mono=True)
                families = render.instrument_families(instruments)
                caption = f"{job.style}, {job.tempo_bpm} bpm, {job.key}"
                if job.kind == "mma" and instruments:
                    caption += f", with {_join(instruments)}"
                src = AudioSource(
                    path=wav, source=job.kind, caption=caption, author=job.author, license=job.license,
                    attribution=f"{job.id}: {job.author}; {render.SOUNDFONT_ATTRIBUTION}", measure=False,
                )
                # the render starts on beat 1 of bar 1, so a clip's beat grid follows from start_s and these
                facts = {"tempo_bpm": float(job.tempo_bpm), "beats_per_bar": job.beats_per_bar, "key": job.key,
                         "instruments": instruments, "families": families}
                def rendered(clip: np.ndarray, c: str = caption, f: dict = facts) -> tuple[str, dict]:
                    # measured per clip: the centroid grounds register words, the tempo one taps along to
                    # (often half or double the score's) grounds the short variants' tempo words
                    centroid = features.spectral_centroid(clip, sample_rate)
                    return c, {**f, "centroid_hz": round(centroid, 1),
                               "brightness": features.brightness_word(centroid),
                               "measured_tempo_bpm": features.estimate_tempo(clip, sample_rate,
                                                                                      octave=config.tempo_octave)}

                add_clips(waveform, f"{job.kind}:{job.id}", src, rendered)
                wav.unlink(missing_ok=True)

        # 1b. Public-domain scores, performed and rendered expressively (exact beat grid, like the MIDI above).
        if "scores" in sources:
            from riffusion.dataset import scores

            score_jobs = scores.score_jobs(seed=config.seed, count=config.score_count, seconds=config.score_seconds,
                                           collections=config.score_collections)
            soundfont, soundfont_credit = scores.find_score_soundfont()
            if "MuseScore" not in soundfont_credit:
                log(f"MuseScore General soundfont not found; scores use {soundfont}")
            workdir = cache / "render" / f"scores-sr{sample_rate}-seed{config.seed}"
            for job in tqdm(score_jobs, desc="render scores", disable=None if progress is None else not progress):
                try:
                    wav, performance, instruments, window = scores.render_score(
                        job, workdir, sample_rate=sample_rate, soundfont=soundfont)
                except (RuntimeError, OSError, ValueError) as exc:
                    skipped.append(f"{job.id}: {exc}")
                    continue
                waveform, _ = read_audio(wav, sample_rate=sample_rate, mono=True)
                author, license_name, attribution = scores.score_license(job, soundfont_credit)
                src = AudioSource(path=wav, source="scores", caption=performance.caption, author=author,
                                  license=license_name, attribution=attribution, measure=False)
                facts = {"tempo_bpm": round(performance.tempo_bpm, 4), "beats_per_bar": performance.beats_per_bar,
                         "key": window.key, "metre": f"{window.numerator}/{window.denominator}",
                         "instruments": instruments, "families": render.instrument_families(instruments),
                         "collection": job.collection, "ensemble": job.ensemble}

                def performed(clip: np.ndarray, c: str = performance.caption, f: dict = facts) -> tuple[str, dict]:
                    centroid = features.spectral_centroid(clip, sample_rate)
                    return c, {**f, "centroid_hz": round(centroid, 1), "brightness": features.brightness_word(centroid),
                               "measured_tempo_bpm": features.estimate_tempo(clip, sample_rate,
                                                                             octave=config.tempo_octave)}

                add_clips(waveform, f"scores:{job.id}", src, performed)
                wav.unlink(missing_ok=True)

        # 2. Recorded music: Debian game-music packages and the user's folder.
        recorded: list[AudioSource] = []
        if "game-music" in sources:
            recorded += game_music_sources(cache / "debian", packages=config.game_packages, warn=log)
        if "user" in sources:
            recorded += user_folder_sources(Path(config.user_folder), license=config.user_license)
        for src in tqdm(recorded, desc="recordings", disable=None if progress is None else not progress):
            try:
                waveform, _ = read_audio(src.path, sample_rate=sample_rate, mono=True)
            except (OSError, ValueError, RuntimeError) as exc:
                skipped.append(f"{src.path}: {exc}")
                continue

            def caption_for(clip: np.ndarray, src: AudioSource = src) -> tuple[str, dict]:
                if not src.measure:
                    return src.caption, {}
                facts = features.describe(clip, sample_rate, tempo_octave=config.tempo_octave)
                words = [src.caption]
                if facts["tempo_bpm"]:
                    words.append(f"{facts['tempo_word']} {int(round(facts['tempo_bpm']))} bpm")
                if facts["key"]:
                    words.append(facts["key"])
                words.append(f"{facts['brightness']} sound")
                return ", ".join(words), facts

            origin = src.path.name if src.source == "user" else f"{src.source}:{src.path.name}"
            if src.source == "user":
                origin = src.path.relative_to(Path(config.user_folder)).as_posix()
            add_clips(waveform, origin, src, caption_for)

        if not rows:
            raise ValueError(f"no clips were made (every source was too short, silent or failed): {skipped[:5]}")

        # 3. Metadata, manifest, description, credits.
        counts: dict[str, int] = {}
        for row in rows:
            counts[row["source"]] = counts.get(row["source"], 0) + 1
        description = {
            "format": "riffusion-spectrogram-dataset",
            "version": 1,
            "spectrogram_params": params.to_dict(),
            "image_width": config.image_width,
            "image_height": params.num_frequencies,
            "clip_duration_s": round(clip_samples / sample_rate, 4),
            "num_images": len(rows),
            "counts": dict(sorted(counts.items())),
            "config": config.to_dict(),
            "skipped": skipped,
        }
        _write_tables(partial, rows, manifest, description)
    log(f"wrote {len(rows)} images from {len(manifest)} sources to {out_dir} ({len(skipped)} skipped)")
    return BuildResult(out_dir=out_dir, num_images=len(rows), num_sources=len(manifest), skipped=skipped)


_MANIFEST_FIELDS = ["origin", "source", "author", "license", "attribution", "clips"]


def _write_tables(folder: Path, rows: T.Sequence[T.Mapping[str, T.Any]], manifest: T.Sequence[T.Mapping[str, T.Any]],
                  description: T.Mapping[str, T.Any]) -> None:
    """Write metadata.jsonl, manifest.csv, dataset.json and ATTRIBUTION.md of a dataset folder."""
    with open(folder / "metadata.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    with open(folder / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=_MANIFEST_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(manifest)
    (folder / "dataset.json").write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
    _write_attribution(folder, manifest)


def _write_attribution(folder: Path, manifest: T.Sequence[T.Mapping[str, T.Any]]) -> None:
    by_license: dict[str, list[str]] = {}
    for item in manifest:
        if int(item["clips"]):
            by_license.setdefault(item["license"], []).append(item["attribution"])
    lines = ["# Attribution", "", "Spectrogram images in this dataset are derived from:", ""]
    for license_name in sorted(by_license):
        entries = sorted(set(by_license[license_name]))
        lines += [f"## {license_name}", ""] + [f"- {e}" for e in entries[:2000]] + [""]
    (folder / "ATTRIBUTION.md").write_text("\n".join(lines))


def merge_datasets(
    inputs: T.Sequence[T.Union[str, Path]], out_dir: T.Union[str, Path], *, overwrite: bool = False,
    log: T.Callable[[str], None] = print,
) -> BuildResult:
    """Combine built dataset folders of one spectrogram geometry into a new one.

    Images are hard-linked where the file system allows (else copied); ``metadata.jsonl`` and
    ``manifest.csv`` are concatenated in the order of ``inputs``; ``dataset.json`` sums the counts and
    keeps each input's build config under ``merged_from``; ``ATTRIBUTION.md`` is rewritten.

    Raises
    ------
    ValueError
        For fewer than two inputs, inputs of different spectrogram parameters or image widths, or two
        inputs holding the same image path.
    FileNotFoundError
        If an input is not a built dataset (no ``dataset.json``, ``metadata.jsonl`` or ``manifest.csv``).
    FileExistsError
        If ``out_dir`` exists and is not empty and ``overwrite`` is false.
    """
    import os

    folders = [Path(f) for f in inputs]
    if len(folders) < 2:
        raise ValueError(f"merging needs at least two dataset folders, got {[str(f) for f in folders]}")
    out_dir = Path(out_dir)
    if out_dir.resolve() in {f.resolve() for f in folders}:
        raise ValueError(f"output folder {str(out_dir)!r} is one of the inputs")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"output folder {str(out_dir)!r} exists and is not empty; pass --overwrite")
    descriptions, all_rows, manifest = [], [], []
    seen: dict[str, Path] = {}
    for folder in folders:
        for name in ("dataset.json", "metadata.jsonl", "manifest.csv"):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{str(folder)!r} is not a built dataset (no {name})")
        rows, description = load_metadata(folder)
        if descriptions and (description["spectrogram_params"], description["image_width"]) != (
                descriptions[0]["spectrogram_params"], descriptions[0]["image_width"]):
            raise ValueError(f"{str(folder)!r} has other spectrogram parameters or image width than "
                             f"{str(folders[0])!r}; only datasets of one geometry can be merged")
        for row in rows:
            if row["file_name"] in seen:
                raise ValueError(f"image {row['file_name']!r} is in both {str(seen[row['file_name']])!r} and "
                                 f"{str(folder)!r}")
            seen[row["file_name"]] = folder
        with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
            manifest += list(csv.DictReader(handle))
        descriptions.append(description)
        all_rows += rows
    with atomic_folder(out_dir) as partial:
        for row in all_rows:
            target = partial / row["file_name"]
            target.parent.mkdir(parents=True, exist_ok=True)
            source = seen[row["file_name"]] / row["file_name"]
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
        counts: dict[str, int] = {}
        for description in descriptions:
            for source, count in description.get("counts", {}).items():
                counts[source] = counts.get(source, 0) + int(count)
        description = {
            **{k: descriptions[0][k] for k in ("format", "version", "spectrogram_params", "image_width",
                                               "image_height", "clip_duration_s") if k in descriptions[0]},
            "num_images": len(all_rows),
            "counts": dict(sorted(counts.items())),
            "merged_from": [{"folder": f.name, "config": d.get("config"), "num_images": d.get("num_images")}
                            for f, d in zip(folders, descriptions)],
            "skipped": [item for d in descriptions for item in d.get("skipped", [])],
        }
        _write_tables(partial, all_rows, manifest, description)
    log(f"merged {len(all_rows)} images from {len(folders)} datasets into {out_dir}")
    return BuildResult(out_dir=out_dir, num_images=len(all_rows), num_sources=len(manifest), skipped=description["skipped"])


def source_table(data_dir: T.Union[str, Path]) -> list[dict[str, T.Any]]:
    """Per source of a built dataset: licences, source files, clips and hours, from ``manifest.csv``.

    Hours are clips times the clip duration of ``dataset.json``. Rows are sorted by source; a last row
    ``"total"`` sums them.

    Raises
    ------
    FileNotFoundError
        If ``data_dir`` has no ``manifest.csv`` or ``dataset.json``.
    """
    data_dir = Path(data_dir)
    for name in ("manifest.csv", "dataset.json"):
        if not (data_dir / name).is_file():
            raise FileNotFoundError(f"{str(data_dir)!r} is not a built dataset (no {name})")
    clip_s = float(json.loads((data_dir / "dataset.json").read_text())["clip_duration_s"])
    table: dict[str, dict[str, T.Any]] = {}
    with open(data_dir / "manifest.csv", newline="", encoding="utf-8") as handle:
        for item in csv.DictReader(handle):
            clips = int(item["clips"])
            row = table.setdefault(item["source"], {"source": item["source"], "licenses": [], "files": 0, "clips": 0})
            row["files"] += 1 if clips else 0
            row["clips"] += clips
            if clips and item["license"] not in row["licenses"]:
                row["licenses"].append(item["license"])
    rows = [table[name] for name in sorted(table)]
    for row in rows:
        row["hours"] = row["clips"] * clip_s / 3600
    total = {"source": "total", "licenses": [], "files": sum(r["files"] for r in rows),
             "clips": sum(r["clips"] for r in rows)}
    total["hours"] = total["clips"] * clip_s / 3600
    return rows + [total]


def format_source_table(rows: T.Sequence[T.Mapping[str, T.Any]]) -> str:
    """A Markdown table of :func:`source_table`'s rows."""
    lines = ["| source | licence | files | clips | hours |", "|---|---|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['source']} | {'; '.join(row['licenses'])} | {row['files']} | {row['clips']} | "
                     f"{row['hours']:.2f} |")
    return "\n".join(lines)


def load_metadata(data_dir: T.Union[str, Path]) -> tuple[list[dict[str, T.Any]], dict[str, T.Any]]:
    """Rows of ``metadata.jsonl`` and the ``dataset.json`` description of a built dataset.

    Also accepts any imagefolder with a ``metadata.jsonl`` (description then ``{}``) or a ``metadata.csv``
    with ``file_name`` and ``text`` columns.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"dataset folder does not exist: {str(data_dir)!r}")
    description = {}
    if (data_dir / "dataset.json").is_file():
        description = json.loads((data_dir / "dataset.json").read_text())
    rows: list[dict[str, T.Any]] = []
    if (data_dir / "metadata.jsonl").is_file():
        for line in (data_dir / "metadata.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    elif (data_dir / "metadata.csv").is_file():
        with open(data_dir / "metadata.csv", newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    else:
        raise FileNotFoundError(f"{str(data_dir)!r} has no metadata.jsonl or metadata.csv (build one with "
                                "`riffusion dataset build`)")
    for row in rows:
        if "file_name" not in row or "text" not in row:
            raise ValueError(f"dataset rows need 'file_name' and 'text'; got keys {sorted(row)}")
    return rows, description
