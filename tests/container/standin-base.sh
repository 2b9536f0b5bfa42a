#!/usr/bin/env bash
# A stand-in for python:3.11-slim-bookworm where Docker Hub is unreachable (our machines reach
# Debian's archive but no container registry): Debian bookworm minbase + its python3 (3.11),
# imported into podman's store. The Dockerfile needs only python3 with venv, groupadd/useradd and
# sh from its base (the image runs the venv's python), so it builds on either base.
#   bash tests/container/standin-base.sh ["podman --storage-driver vfs ..."] [IMAGE]
set -euo pipefail
PODMAN=${1:-podman}
IMAGE=${2:-localhost/beds-python-standin:bookworm}
if $PODMAN image exists "$IMAGE"; then echo "$IMAGE exists"; exit 0; fi
command -v mmdebstrap >/dev/null || apt-get install -y -q mmdebstrap
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$work/rootfs.tar"
$PODMAN import --change 'CMD ["python3"]' "$work/rootfs.tar" "$IMAGE"
echo "imported $IMAGE"
