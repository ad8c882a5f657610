"""Recorded audio sources: Debian's DFSG-free game-music packages and a user's captioned folder.

Debian packages are fetched with ``apt-get download`` (no root needed for that) and unpacked with
``dpkg-deb -x`` into a cache folder. Each package in :data:`GAME_MUSIC` names its music files, licence,
authors and a style phrase; before a package is used, its ``copyright`` file is checked to still name that
licence and to carry no non-commercial or no-derivatives terms, so a changed package is left out rather
than silently included.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import shutil
import subprocess
import typing as T
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif")

#: Licences accepted into the dataset (SPDX-like ids). Anything else is refused.
FREE_LICENSES = (
    "GPL-2.0-or-later", "GPL-3.0-or-later", "GPL-2.0-only", "CC-BY-3.0", "CC-BY-4.0", "CC-BY-SA-3.0",
    "CC-BY-SA-4.0", "MIT", "BSD-3-Clause", "BSD-2-Clause", "CC0-1.0", "public-domain", "FAL-1.3", "Artistic-2.0",
)
_NON_FREE_PATTERNS = re.compile(r"non-?commercial|\bCC[- ]BY[- ]NC|NoDerivs|No Derivative|\bCC[- ]BY[- ]ND", re.I)


@dataclasses.dataclass(frozen=True)
class GameMusicPackage:
    package: str
    music_globs: tuple[str, ...]  # relative to the unpacked package root
    license: str
    license_evidence: str  # text the copyright file must contain
    author: str
    style: str  # caption phrase for the whole package
    homepage: str


GAME_MUSIC: tuple[GameMusicPackage, ...] = (
    GameMusicPackage(
        package="wesnoth-1.16-music",
        music_globs=("usr/share/games/wesnoth/1.16/data/core/music/*.ogg",),
        license="GPL-2.0-or-later",
        license_evidence="GNU General Public License",
        author="The Battle for Wesnoth music contributors (see the package's copyright file)",
        style="orchestral fantasy game soundtrack",
        homepage="https://www.wesnoth.org/",
    ),
    GameMusicPackage(
        package="singularity-music",
        music_globs=("usr/share/games/singularity/music/*.ogg", "usr/share/**/music/*.ogg"),
        license="CC-BY-SA-3.0",
        license_evidence="Attribution, ShareAlike",
        author="Max McCracken",
        style="ambient electronic soundtrack",
        homepage="https://github.com/singularity/singularity",
    ),
    GameMusicPackage(
        package="hyperrogue-music",
        music_globs=("usr/share/hyperrogue/music/*.ogg",),
        license="GPL-2.0-or-later",
        license_evidence="GPL-2+",
        author="HyperRogue music contributors (Zeno Rogue and composers credited in the game)",
        style="atmospheric game soundtrack",
        homepage="https://www.roguetemple.com/z/hyper/",
    ),
    GameMusicPackage(
        package="warzone2100-music",
        music_globs=("usr/share/games/warzone2100/music/**/*.opus",),
        license="GPL-2.0-or-later",
        license_evidence="GPL-2+",
        author="Warzone 2100 Project contributors",
        style="cinematic electronic strategy game soundtrack",
        homepage="https://wz2100.net/",
    ),
    GameMusicPackage(
        package="flare-game",
        music_globs=("usr/share/games/flare/mods/*/music/*.ogg",),
        license="CC-BY-SA-3.0",
        license_evidence="CC-BY-SA-3.0+",
        author="Flare contributors (Clint Bellanger and the composers credited in the game)",
        style="orchestral fantasy role-playing game soundtrack",
        homepage="https://flarerpg.org/",
    ),
    GameMusicPackage(
        package="hedgewars-data",
        music_globs=("usr/share/games/hedgewars/Data/Music/*.ogg",),
        license="GPL-2.0-only",
        license_evidence="Hedgewars Project\nLicense: GPL-2\n",
        author="The Hedgewars Project",
        style="playful cartoon game soundtrack",
        homepage="https://hedgewars.org/",
    ),
    GameMusicPackage(
        package="freedroidrpg-data",
        music_globs=("usr/share/freedroidrpg/data/sound/music/*.ogg",),
        license="GPL-2.0-or-later",
        license_evidence="GPL-2+",
        author="FreedroidRPG contributors",
        style="dark electronic science fiction game soundtrack",
        homepage="https://www.freedroid.org/",
    ),
    GameMusicPackage(
        package="xmoto-data",
        music_globs=("usr/share/games/xmoto/Textures/Musics/*.ogg",),
        license="GPL-2.0-or-later",
        license_evidence="GPL-2+",
        author="X-Moto Development Team and the musicians credited in the game",
        style="upbeat electronic racing game soundtrack",
        homepage="https://xmoto.tuxfamily.org/",
    ),
)

#: Packages the training data must never use: bench/bench_realism.py measures against them as held-out
#: recordings (scripts/fetch_music.sh --held-out).
HELD_OUT_PACKAGES = ("supertux-data", "extremetuxracer-data")


@dataclasses.dataclass(frozen=True)
class AudioSource:
    """One audio file with what we know about it."""

    path: Path
    source: str  # "debian:wesnoth-1.16-music", "user", "mma", "part"
    caption: str  # base caption (measured words are added by the builder where asked)
    author: str
    license: str
    attribution: str
    measure: bool = True  # add measured tempo/key/brightness words to the caption


def title_words(path: Path) -> str:
    """Words from a file name: ``"the_king_is_dead.ogg"`` -> ``"the king is dead"``."""
    stem = re.sub(r"^(hr3?|track)[-_]?", "", path.stem, flags=re.I)
    words = re.sub(r"[-_.]+", " ", stem)
    words = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", words)
    words = re.sub(r"\d+", " ", words)
    return " ".join(words.lower().split())


def fetch_debian_package(package: str, cache_dir: Path) -> Path:
    """Download (``apt-get download``) and unpack (``dpkg-deb -x``) ``package`` under ``cache_dir``.

    Returns the unpacked root. Reuses an earlier download.
    """
    root = cache_dir / "unpacked" / package
    if (root / ".complete").is_file():
        return root
    debs = cache_dir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        apt = shutil.which("apt-get")
        if apt is None:
            raise FileNotFoundError(f"apt-get is needed to download {package}")
        result = subprocess.run([apt, "download", package], cwd=debs, capture_output=True, text=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if result.returncode != 0 or not found:
            raise OSError(f"apt-get download {package} failed: {result.stderr.strip()[-300:]}")
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    result = subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(root)], capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(f"dpkg-deb -x {found[-1].name} failed: {result.stderr.strip()[-300:]}")
    (root / ".complete").write_text(found[-1].name)
    return root


def check_package_license(pkg: GameMusicPackage, root: Path) -> None:
    """Raise ValueError unless the package's copyright file supports ``pkg.license`` and is DFSG-free."""
    copyright_file = root / "usr/share/doc" / pkg.package / "copyright"
    if not copyright_file.is_file():
        raise ValueError(f"{pkg.package}: no copyright file at {copyright_file}")
    text = copyright_file.read_text(errors="replace")
    if pkg.license not in FREE_LICENSES:
        raise ValueError(f"{pkg.package}: licence {pkg.license!r} is not in the accepted list {FREE_LICENSES}")
    if pkg.license_evidence not in text:
        raise ValueError(
            f"{pkg.package}: copyright file no longer says {pkg.license_evidence!r}; check its licence by hand"
        )
    bad = _NON_FREE_PATTERNS.search(text)
    if bad:
        raise ValueError(f"{pkg.package}: copyright file mentions {bad.group(0)!r} (non-free terms); left out")


def game_music_sources(
    cache_dir: Path, *, packages: T.Optional[T.Sequence[str]] = None, warn: T.Callable[[str], None] = print
) -> list[AudioSource]:
    """Audio files of the catalogued game-music packages that pass the licence check."""
    wanted = {p.package: p for p in GAME_MUSIC}
    names = list(packages) if packages is not None else list(wanted)
    unknown = [n for n in names if n not in wanted]
    if unknown:
        raise ValueError(f"unknown game-music packages {unknown}; known: {sorted(wanted)}")
    sources = []
    for name in names:
        pkg = wanted[name]
        try:
            root = fetch_debian_package(name, cache_dir)
            check_package_license(pkg, root)
        except (OSError, ValueError) as exc:
            warn(f"skipping {name}: {exc}")
            continue
        files = sorted({p for g in pkg.music_globs for p in root.glob(g) if p.suffix.lower() in AUDIO_SUFFIXES})
        for path in files:
            title = title_words(path)
            sources.append(
                AudioSource(
                    path=path,
                    source=f"debian:{name}",
                    caption=f"{pkg.style}, {title}" if title else pkg.style,
                    author=pkg.author,
                    license=pkg.license,
                    attribution=f'"{path.name}" from Debian package {name} ({pkg.homepage}), '
                    f"{pkg.author}, {pkg.license}",
                )
            )
    return sources


def user_folder_sources(folder: Path, *, license: str = "user-provided", author: str = "") -> list[AudioSource]:
    """Audio files of a user's folder with their captions.

    Captions come from, in order: a ``captions.csv`` / ``metadata.csv`` in the folder with columns
    ``file_name`` (or ``file``) and ``caption`` (or ``text``), optional ``author`` and ``license``; else a
    ``<stem>.txt`` beside each track. A track with no caption is an error naming it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"user audio folder does not exist: {str(folder)!r}")
    table: dict[str, dict[str, str]] = {}
    for name in ("captions.csv", "metadata.csv"):
        csv_path = folder / name
        if csv_path.is_file():
            with open(csv_path, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    file_name = (row.get("file_name") or row.get("file") or "").strip()
                    caption = (row.get("caption") or row.get("text") or "").strip()
                    if not file_name or not caption:
                        raise ValueError(
                            f"{csv_path}: each row needs 'file_name' and 'caption' columns, got {dict(row)}"
                        )
                    table[file_name] = row | {"caption": caption}
            break
    for name in ("captions.jsonl", "metadata.jsonl"):
        jsonl = folder / name
        if jsonl.is_file() and not table:
            for line in jsonl.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    table[str(row.get("file_name") or row.get("file"))] = row | {
                        "caption": str(row.get("caption") or row.get("text") or "")
                    }
    tracks = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not tracks:
        raise ValueError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {str(folder)!r}")
    sources = []
    for path in tracks:
        rel = path.relative_to(folder).as_posix()
        row = table.get(rel) or table.get(path.name)
        if row is not None:
            caption = row["caption"]
        elif path.with_suffix(".txt").is_file():
            caption = path.with_suffix(".txt").read_text(encoding="utf-8").strip()
        else:
            raise ValueError(
                f"no caption for {rel!r}: add {path.with_suffix('.txt').name} beside it or a row in captions.csv"
            )
        if not caption:
            raise ValueError(f"empty caption for {rel!r}")
        track_author = (row or {}).get("author") or author
        track_license = (row or {}).get("license") or license
        sources.append(
            AudioSource(
                path=path,
                source="user",
                caption=caption,
                author=track_author,
                license=track_license,
                attribution=f"{rel}" + (f" by {track_author}" if track_author else ""),
                measure=False,
            )
        )
    return sources
