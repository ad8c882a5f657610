#!/usr/bin/env bash
# Tools the test suite drives for real: Debian's Chromium (browser tests), fluidsynth + a General MIDI
# soundfont and mma (dataset rendering), and openly licensed real music from Debian (audio quality tests).
# Idempotent: does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v fluidsynth >/dev/null || need+=(fluidsynth)
[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
command -v mma >/dev/null || need+=(mma)
if ((${#need[@]})); then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ -x scripts/fetch_music.sh ] || [ -f scripts/fetch_music.sh ]; then
  bash scripts/fetch_music.sh
fi
