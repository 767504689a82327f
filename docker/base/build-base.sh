#!/usr/bin/env bash
# Builds the Debian base image both stages of docker/Containerfile start FROM, from Debian's own
# packages (mmdebstrap), so building the agent image needs no container registry.
# Idempotent: an image already tagged with this script's hash is kept.
#   CONTAINERS_CONF=docker/containers.conf docker/base/build-base.sh [IMAGE]
set -euo pipefail

image=${1:-localhost/bzzz-base:bookworm}
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The hash covers the script itself: a changed recipe makes a new base, an unchanged one is reused.
recipe=$(sha256sum "$0" | cut -c1-16)

if [ "$(podman image inspect --format '{{ index .Labels "org.bzzz.base-recipe" }}' "$image" 2>/dev/null)" = "$recipe" ]; then
    echo "base image $image is up to date (recipe $recipe)"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# minbase: dpkg, apt and the Essential set; the Containerfile adds what each stage needs.
# Dropping docs/man/locales keeps the layer small; the apt lists are fetched again where needed.
mmdebstrap --variant=minbase --mode=root \
    --include=ca-certificates \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --aptopt='APT::Install-Recommends "false"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$suite" "$work/rootfs.tar" \
    "deb $mirror $suite main" \
    "deb $mirror $suite-updates main" \
    "deb http://deb.debian.org/debian-security $suite-security main"

podman import \
    --change "LABEL org.bzzz.base-recipe=$recipe" \
    --change "LABEL org.opencontainers.image.description=Debian $suite minbase from mmdebstrap" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$work/rootfs.tar" "$image" >/dev/null
echo "built base image $image (recipe $recipe): $(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=iec) "
