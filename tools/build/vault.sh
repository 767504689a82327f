#!/usr/bin/env bash
# Builds HashiCorp Vault from the Go module proxy into the tools cache (for `make test-vault`).
# `go install github.com/hashicorp/vault@v1.21.4` is refused: its go.mod replaces `api` and `sdk`
# with local folders the module download lacks. So we copy the module, drop those replaces, pin
# the published sdk and patch the three API drifts the compiler reports against it
# (docs: ../../README.md "Secrets from Vault"; facts: the project's real-components notes).
# Idempotent: does nothing when the binary exists.
set -euo pipefail

VERSION=1.21.4
SDK_VERSION=v0.21.0
CACHE="${TOOLS_CACHE:-$HOME/.cache/bzzz}"
OUT="$CACHE/vault-$VERSION"
BIN="$OUT/vault"

if [ -x "$BIN" ]; then
	echo "vault $VERSION: $BIN (cached)"
	exit 0
fi
command -v go >/dev/null || { echo "vault.sh: needs Go (https://go.dev/dl/) on PATH" >&2; exit 1; }

mkdir -p "$OUT"
WORK="$(mktemp -d "$OUT/src.XXXXXX")"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT

start=$(date +%s)
echo "vault $VERSION: downloading the module"
DIR="$(cd "$WORK" && GOFLAGS=-mod=mod go mod download -json "github.com/hashicorp/vault@v$VERSION" \
	| sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[ -d "$DIR" ] || { echo "vault.sh: module download gave no directory" >&2; exit 1; }
cp -r "$DIR" "$WORK/vault"
chmod -R u+w "$WORK/vault"
cd "$WORK/vault"

# The replaces point at ./api and ./sdk (and ./api/auth/*), which the module zip does not
# contain; go.mod already requires the published api, and sdk is pinned below.
sed -i -E '/^replace github.com\/hashicorp\/vault\/[a-z/]+ => \.\//d' go.mod
go mod edit -require="github.com/hashicorp/vault/sdk@$SDK_VERSION"

# The in-tree sdk sits between v0.20.0 and v0.21.0; these follow the published v0.21.0 API.
patch_once() { # file, perl substitution, fixed string that proves it applied
	perl -0pi -e "$2" "$1"
	grep -qF -- "$3" "$1" || { echo "vault.sh: patch of $1 did not apply" >&2; exit 1; }
}
# framework.Backend.ActivationFunc takes a third string parameter in sdk v0.21.0.
patch_once vault/identity_store_util.go \
	's/activateDeduplication\(ctx context\.Context, req \*logical\.Request\) error/activateDeduplication(ctx context.Context, req *logical.Request, _ string) error/' \
	'activateDeduplication(ctx context.Context, req *logical.Request, _ string) error'
patch_once vault/logical_system_activation_flags.go \
	's/ActivationFunc\(ctx, nil\)/ActivationFunc(ctx, nil, "")/' \
	'ActivationFunc(ctx, nil, "")'
# LockManager.RestorePolicy returns only an error in sdk v0.21.0; the key keeps the asked name.
patch_once builtin/logical/transit/path_restore.go \
	's/restoredKeyName, err := b\.lm\.RestorePolicy\(/err := b.lm.RestorePolicy(/; s/"key_name": restoredKeyName,/"key_name": keyName,/' \
	'err := b.lm.RestorePolicy('

echo "vault $VERSION: building (about 11 min on 2 idle cores)"
GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$WORK/vault.bin" .
mv "$WORK/vault.bin" "$BIN"
echo "vault $VERSION: $BIN built in $(( $(date +%s) - start )) s, $(du -sh "$BIN" | cut -f1)"
