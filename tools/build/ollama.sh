#!/usr/bin/env bash
# Builds a CPU-only `ollama` from the Go module proxy into the tools cache (idempotent).
# `go install` alone fails: the module download drops llama.cpp's vendored headers, so the
# three it needs come from Debian (nlohmann-json3-dev, libstb-dev: `make ollama-sysdeps`)
# and from miniaudio's PyPI source distribution.
set -euo pipefail

VERSION=0.17.4
MINIAUDIO=1.71
CACHE=${TOOLS_CACHE:-$HOME/.cache/bzzz}
OUT=$CACHE/ollama-$VERSION
BIN=$OUT/ollama
PYTHON=${PYTHON:-python3}

if [ -x "$BIN" ]; then
    echo "ollama $VERSION: $BIN (cached)"
    exit 0
fi
for header in /usr/include/nlohmann/json.hpp /usr/include/stb/stb_image.h; do
    [ -f "$header" ] || { echo "ollama: missing $header; run: make ollama-sysdeps" >&2; exit 1; }
done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT" "$WORK/include/miniaudio"

"$PYTHON" -m pip download -q --no-deps --no-binary :all: -d "$WORK/sdist" "miniaudio==$MINIAUDIO"
tar -xzf "$WORK"/sdist/miniaudio-*.tar.gz -C "$WORK/sdist"
cp "$WORK"/sdist/miniaudio-*/miniaudio/miniaudio.h "$WORK/include/miniaudio/"

export GOFLAGS=-mod=mod
export CGO_ENABLED=1
export CGO_CPPFLAGS="-I$WORK/include -I/usr/include/stb"
export GOBIN=$WORK/bin
go install -trimpath \
    -ldflags "-s -w -X github.com/ollama/ollama/version.Version=$VERSION" \
    "github.com/ollama/ollama@v$VERSION"
mv "$WORK/bin/ollama" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
echo "ollama $VERSION: $BIN ($(du -h "$BIN" | cut -f1))"
