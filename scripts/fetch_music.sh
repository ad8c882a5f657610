#!/usr/bin/env bash
# Fetch openly licensed real music for the benchmarks and music-dependent tests into bench/music/.
#
# The tracks come from Debian game-music packages (downloaded with `apt-get download`, unpacked with
# `dpkg-deb -x`, no installation, no root needed). bench/music/ is gitignored: never commit it.
#
#   scripts/fetch_music.sh                      # default packages
#   scripts/fetch_music.sh PACKAGE [PACKAGE...] # any Debian packages that ship .ogg/.flac/.wav files
#
# Default packages and licences (see bench/music/<package>/copyright after fetching):
#   wesnoth-1.16-music  GPL-2+          (~150 MB, 41 orchestral tracks)
#   singularity-music   CC BY-SA 3.0    (~50 MB, 16 electronic tracks)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${RIFFUSION_MUSIC_DIR:-$repo/bench/music}"
packages=("$@")
if [ ${#packages[@]} -eq 0 ]; then
    packages=(wesnoth-1.16-music singularity-music)
fi

for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "fetch_music.sh: error: $tool not found (Debian/Ubuntu only)" >&2; exit 2; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"

for pkg in "${packages[@]}"; do
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
    count=0
    while IFS= read -r -d '' file; do
        name="$(basename "$file" | tr ' ' '_')"
        cp "$file" "$out.tmp/$name"
        count=$((count + 1))
    done < <(find "$work/x" -type f \( -iname '*.ogg' -o -iname '*.flac' -o -iname '*.wav' \) -print0)
    if [ "$count" -eq 0 ]; then
        echo "fetch_music.sh: error: package '$pkg' contains no .ogg/.flac/.wav files" >&2
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
