#!/usr/bin/env bash
# Fetch openly licensed real music for the benchmarks and music-dependent tests into bench/music/.
#
# The tracks come from Debian game-music packages (downloaded with `apt-get download`, unpacked with
# `dpkg-deb -x`, no installation, no root needed). bench/music/ is gitignored: never commit it.
#
#   scripts/fetch_music.sh                      # default packages
#   scripts/fetch_music.sh --held-out           # held-out packages into bench/music-held-out/
#   scripts/fetch_music.sh PACKAGE[:DIR] [...]  # any Debian packages that ship .ogg/.flac/.wav files
#
# PACKAGE:DIR keeps only the audio files under DIR inside the package (its music, not its sound effects),
# named by their path below DIR with / turned into _ (so a style folder stays in the name).
#
# Default packages and licences (see bench/music/<package>/copyright after fetching):
#   wesnoth-1.16-music  GPL-2+          (~150 MB, 41 orchestral tracks)
#   singularity-music   CC BY-SA 3.0    (~50 MB, 16 electronic tracks)
#
# Held-out packages (--held-out): recorded music the training data never uses (riffusion/dataset/sources.py
# GAME_MUSIC lists what it does use), for bench/bench_realism.py. They go to their own folder, which
# carries its own .gitignore, so the tests and benchmarks that read every file under bench/music/ keep
# their inputs:
#   supertux-data         GPL-2+ ("Files: data/music/*")  (~160 MB download, 51 platformer-game tracks)
#   extremetuxracer-data  GPL-2+ ("Files: *")             (~40 MB download, 11 racing-game tracks)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELD_OUT=(supertux-data:usr/share/games/supertux2/music extremetuxracer-data:usr/share/games/etr/music)
if [ "${1:-}" = "--held-out" ]; then
    shift
    dest="${RIFFUSION_HELD_OUT_MUSIC_DIR:-$repo/bench/music-held-out}"
    packages=("$@")
    [ ${#packages[@]} -eq 0 ] && packages=("${HELD_OUT[@]}")
else
    dest="${RIFFUSION_MUSIC_DIR:-$repo/bench/music}"
    packages=("$@")
    [ ${#packages[@]} -eq 0 ] && packages=(wesnoth-1.16-music singularity-music)
fi

for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "fetch_music.sh: error: $tool not found (Debian/Ubuntu only)" >&2; exit 2; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
case "$dest" in
    "$repo"/bench/music|"$repo"/bench/music/) ;;  # already in the repository's .gitignore
    *) [ -f "$dest/.gitignore" ] || printf '*\n' > "$dest/.gitignore" ;;  # fetched music is never committed
esac

for spec in "${packages[@]}"; do
    pkg="${spec%%:*}"
    subdir=""
    [ "$spec" != "$pkg" ] && subdir="${spec#*:}"
    out="$dest/$pkg"
    if [ -f "$out/.complete" ]; then
        echo "$pkg: already in $out"
        continue
    fi
    echo "$pkg: downloading" >&2
    (cd "$work" && apt-get download -q "$pkg" >/dev/null 2>&1) || {
        echo "fetch_music.sh: error: could not download Debian package '$pkg' (try: apt-get update)" >&2
        exit 2
    }
    deb="$(ls "$work"/"${pkg}"_*.deb | head -n 1)"
    rm -rf "$work/x" && mkdir -p "$work/x"
    dpkg-deb -x "$deb" "$work/x"
    rm -rf "$out.tmp" && mkdir -p "$out.tmp"
    root="$work/x/$subdir"
    if [ ! -d "$root" ]; then
        echo "fetch_music.sh: error: package '$pkg' has no folder '$subdir'" >&2
        rm -rf "$out.tmp"
        exit 2
    fi
    count=0
    while IFS= read -r -d '' file; do
        if [ -n "$subdir" ]; then
            name="$(printf '%s' "${file#"$root"/}" | tr ' /' '__')"
        else
            name="$(basename "$file" | tr ' ' '_')"
        fi
        cp "$file" "$out.tmp/$name"
        count=$((count + 1))
    done < <(find "$root" -type f \( -iname '*.ogg' -o -iname '*.flac' -o -iname '*.wav' \) -print0)
    if [ "$count" -eq 0 ]; then
        echo "fetch_music.sh: error: package '$pkg' contains no .ogg/.flac/.wav files${subdir:+ under $subdir}" >&2
        rm -rf "$out.tmp"
        exit 2
    fi
    if [ -f "$work/x/usr/share/doc/$pkg/copyright" ]; then
        cp "$work/x/usr/share/doc/$pkg/copyright" "$out.tmp/copyright"
    fi
    touch "$out.tmp/.complete"
    rm -rf "$out" && mv "$out.tmp" "$out"
    rm -f "$deb"
    echo "$pkg: $count tracks in $out"
done
