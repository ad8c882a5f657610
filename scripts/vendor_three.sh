#!/usr/bin/env bash
# Refresh the vendored three.js ES modules from the npm registry (development only; the files are committed).
set -euo pipefail
version="${1:-0.187.0}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --silent "three@$version")
dest="$repo/riffusion/web/vendor/three"
cp "$work/node_modules/three/build/three.module.js" "$work/node_modules/three/build/three.core.js" \
   "$work/node_modules/three/LICENSE" "$dest/"
echo "vendored three.js $version into $dest"
