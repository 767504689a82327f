#!/usr/bin/env bash
# Installs a real n8n from the npm registry into the tools cache (idempotent).
# 1.123.50 is the newest n8n that runs on Node 20 (later ones need Node 22+); one of its
# dependencies pins xlsx to a tarball on an unreachable host, so xlsx is overridden to the
# registry's 0.18.5. The install goes into a temp folder renamed into place only when
# complete, so a killed build never looks done.
set -euo pipefail

VERSION=1.123.50
CACHE=${TOOLS_CACHE:-$HOME/.cache/bzzz}
OUT=$CACHE/n8n-$VERSION
BIN=$OUT/node_modules/.bin/n8n

if [ -x "$BIN" ]; then
    echo "n8n $VERSION: $BIN (cached)"
    exit 0
fi
command -v npm >/dev/null || { echo "n8n: npm not found (Node 20 + npm are needed)" >&2; exit 1; }

mkdir -p "$CACHE"
# Beside its final place, so the rename below is one atomic step on one filesystem.
WORK=$(mktemp -d "$CACHE/.n8n-$VERSION.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/package.json" <<JSON
{
  "name": "bzzz-n8n",
  "private": true,
  "dependencies": {"n8n": "$VERSION"},
  "overrides": {"xlsx": "0.18.5"}
}
JSON
(cd "$WORK" && npm install --no-audit --no-fund --loglevel=error)
"$WORK/node_modules/.bin/n8n" --version >/dev/null
rm -rf "$OUT"
mv "$WORK" "$OUT"
trap - EXIT
echo "n8n $VERSION: $BIN ($(du -sh "$OUT" | cut -f1))"
