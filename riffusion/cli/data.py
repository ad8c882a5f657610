"""``riffusion dataset build``: a captioned spectrogram dataset from open sources and your own audio;
``riffusion dataset merge``: several built datasets of one geometry as one;
``riffusion dataset table``: sources, licences and hours of a built dataset;
``riffusion dataset seeds``: a model folder's seed loops."""

from __future__ import annotations

import argparse

COMMANDS = ("dataset_build", "dataset_merge", "dataset_table", "dataset_seeds")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dataset", help="build captioned spectrogram datasets",
        description="Build datasets of Riffusion spectrogram images with captions.",
    )
    sub = parser.add_subparsers(dest="_dataset_command", metavar="SUBCOMMAND", required=True)
    build = sub.add_parser(
        "build",
        help="render/collect sources into an image folder with metadata.jsonl",
        description=(
            "Render MIDI (MMA styles, generated parts) with fluidsynth + FluidR3_GM, take DFSG-free Debian "
            "game music, and/or a folder of your own audio with captions (a .txt per track or captions.csv), "
            "cut it into clips and write Riffusion images plus metadata.jsonl (Hugging Face imagefolder), "
            "manifest.csv (source, author, licence, attribution) and dataset.json."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    build.add_argument("--out", required=True, help="output folder")
    build.add_argument(
        "--sources", default="mma,parts,game-music",
        help="comma-separated: mma, parts, solos, game-music, scores, user ('' with --user-folder: only your audio)",
    )
    build.add_argument("--scores", type=int, default=260,
                       help="renders of public-domain scores from music21's corpus (source 'scores')")
    build.add_argument("--score-seconds", type=float, default=40.8, help="length of each score render")
    build.add_argument("--score-collections", default=None,
                       help="comma-separated music21 corpus collections (default: every public-domain one)")
    build.add_argument("--user-folder", default=None, help="folder of your audio files with captions")
    build.add_argument("--user-license", default="user-provided", help="licence recorded for your audio")
    build.add_argument(
        "--params", default="small",
        help="spectrogram geometry: 'small' (the shipped small model), 'riffusion' (riffusion-model-v1), a "
        "JSON file, or a model folder (fine-tuning: match the model)",
    )
    build.add_argument("--image-width", type=int, default=None, help="clip width in columns (default: the preset's)")
    build.add_argument("--max-grooves", type=int, default=300, help="MMA grooves to render (of ~700)")
    build.add_argument("--parts", type=int, default=160, help="generated instrument parts to render")
    build.add_argument("--solos", type=int, default=254,
                       help="instrument solos to render (source 'solos': every GM instrument and hand percussion)")
    build.add_argument("--render-seconds", type=float, default=26.0, help="length of each rendered MIDI song")
    build.add_argument("--game-packages", default=None, help="comma-separated Debian packages (default: all)")
    build.add_argument("--max-clips-per-file", type=int, default=16)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument(
        "--tempo-octave", choices=("prior", "onset-rate"), default="prior",
        help="how measured tempos (caption tempo words) pick their octave: 'prior' (around 120 bpm, the "
        "shipped model's captions) or 'onset-rate' (sparse music slow, busy music fast; orders slow and fast "
        "music right far more often)",
    )
    build.add_argument("--cache-dir", default="data/cache", help="downloads and renders are cached here")
    build.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    build.set_defaults(_command=dataset_build)

    merge = sub.add_parser(
        "merge",
        help="combine built datasets of one spectrogram geometry into one folder",
        description=(
            "Combine dataset folders made by `riffusion dataset build` with the same spectrogram parameters "
            "(for example an earlier build and a build of only new sources): images are hard-linked or "
            "copied, metadata.jsonl and manifest.csv concatenated, counts summed, ATTRIBUTION.md rewritten."
        ),
    )
    merge.add_argument("inputs", nargs="+", metavar="DATASET", help="two or more dataset folders")
    merge.add_argument("--out", required=True, help="output folder")
    merge.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    merge.set_defaults(_command=dataset_merge)

    table = sub.add_parser(
        "table", help="print a built dataset's sources, licences, clips and hours (Markdown)",
        description="Print a Markdown table of a built dataset's sources with their licences, source files, "
        "clips and hours, read from its manifest.csv and dataset.json.",
    )
    table.add_argument("dataset", help="dataset folder")
    table.set_defaults(_command=dataset_table)

    seeds = sub.add_parser(
        "seeds",
        help="render the seed loops into a model folder's seed_images/",
        description=(
            "Render the seed loops (drum and instrument loops of whole bars in 4/4, 3/4 and 6/8, from about 70 "
            "to 190 bpm, written note by note and rendered with fluidsynth + FluidR3_GM) at a model's geometry "
            "into MODEL/seed_images/ with seed_images.json (tempo, bars, metre), replacing what is there."
        ),
    )
    seeds.add_argument("--model", required=True, help="model folder (with spectrogram_params.json)")
    seeds.set_defaults(_command=dataset_seeds)


def dataset_build(
    *, out: str, sources: str = "mma,parts,game-music", user_folder: str | None = None,
    user_license: str = "user-provided", params: str = "small", image_width: int | None = None,
    max_grooves: int = 300, parts: int = 160, solos: int = 254, render_seconds: float = 26.0,
    game_packages: str | None = None,
    max_clips_per_file: int = 16, seed: int = 0, cache_dir: str = "data/cache", overwrite: bool = False,
    tempo_octave: str = "prior", scores: int = 260, score_seconds: float = 40.8,
    score_collections: str | None = None,
) -> None:
    """Build a dataset folder (see ``riffusion dataset build --help``)."""
    import sys

    from riffusion.dataset import DatasetConfig, build_dataset, resolve_params

    spectrogram_params, preset_width = resolve_params(params)
    kinds = tuple(s.strip() for s in sources.split(",") if s.strip())
    config = DatasetConfig(
        params=spectrogram_params,
        image_width=image_width or preset_width,
        sources=kinds,
        user_folder=user_folder,
        user_license=user_license,
        seed=seed,
        max_grooves=max_grooves,
        part_count=parts,
        solo_count=solos,
        render_seconds=render_seconds,
        game_packages=tuple(p.strip() for p in game_packages.split(",")) if game_packages else None,
        max_clips_per_file=max_clips_per_file,
        cache_dir=cache_dir,
        tempo_octave=tempo_octave,
        score_count=scores,
        score_seconds=score_seconds,
        score_collections=tuple(c.strip() for c in score_collections.split(",")) if score_collections else None,
    )
    from riffusion.cli import CliError
    from riffusion.dataset.scores import Music21Missing

    try:
        build_dataset(out, config, overwrite=overwrite, log=lambda m: print(m, file=sys.stderr))
    except Music21Missing as exc:  # music21 is the optional 'data' extra
        raise CliError(str(exc)) from None


def dataset_merge(*, inputs: list[str], out: str, overwrite: bool = False) -> None:
    """Merge built dataset folders (see ``riffusion dataset merge --help``)."""
    import sys

    from riffusion.dataset.builder import merge_datasets

    merge_datasets(inputs, out, overwrite=overwrite, log=lambda m: print(m, file=sys.stderr))


def dataset_table(*, dataset: str) -> None:
    """Print the sources table of a built dataset."""
    from riffusion.dataset.builder import format_source_table, source_table

    print(format_source_table(source_table(dataset)))


def dataset_seeds(*, model: str) -> None:
    """Render the seed loops into ``model``/seed_images (written beside it, then renamed into place)."""
    import sys
    from pathlib import Path

    from riffusion.dataset import resolve_params
    from riffusion.dataset.seeds import render_seed_images
    from riffusion.files import atomic_folder

    folder = Path(model)
    if not (folder / "spectrogram_params.json").is_file():
        raise FileNotFoundError(f"{model!r} is not a model folder (no spectrogram_params.json)")
    params, width = resolve_params(str(folder))
    target = folder / "seed_images"
    with atomic_folder(target) as tmp:
        rows = render_seed_images(tmp, params=params, width=width)
    print(f"wrote {len(rows)} seed loops to {target}", file=sys.stderr)
