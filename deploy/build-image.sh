#!/bin/sh
# Build the gateway's image with buildah (daemonless: no Docker daemon needed), from the repo's Dockerfile.
#
#   deploy/build-image.sh [TAG]          TAG defaults to localhost/huxiao-gateway:latest
#
# The base is the official python:3.11-slim-bookworm when a container registry answers. Where none does (an offline
# school server, a sandbox that reaches only package mirrors), the script makes a Debian bookworm base itself with
# mmdebstrap from the machine's own apt sources (python3.11 is bookworm's), imports it as localhost/huxiao-base and
# builds the same Dockerfile on it with --build-arg BASE. HUXIAO_BASE=local forces that path, HUXIAO_BASE=IMAGE
# names any other base.
#
# Needs: buildah; for the local base also mmdebstrap and podman (apt-get install buildah podman mmdebstrap).
# pip in the build stage trusts what this machine trusts: the host's CA bundle is mounted for the build only.
set -eu

TAG=${1:-localhost/huxiao-gateway:latest}
REPO=$(cd "$(dirname "$0")/.." && pwd)
OFFICIAL=docker.io/library/python:3.11-slim-bookworm
LOCAL=localhost/huxiao-base:bookworm
CA=/etc/ssl/certs/ca-certificates.crt

say() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

make_local_base() {
    if podman image exists "$LOCAL"; then
        say "local base $LOCAL is there already (podman rmi $LOCAL to make it anew)"
        return
    fi
    sources=/etc/apt/sources.list.d/debian.sources
    [ -f "$sources" ] || sources=/etc/apt/sources.list
    tarball=$(mktemp --suffix=.tar)
    say "making a Debian bookworm base with mmdebstrap from $sources"
    mmdebstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates,passwd \
        --aptopt='APT::Install-Recommends "false"' --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        bookworm "$tarball" "$sources"
    podman import --change 'CMD ["/bin/bash"]' "$tarball" "$LOCAL" >/dev/null
    rm -f "$tarball"
    say "local base $LOCAL imported"
}

case ${HUXIAO_BASE:-} in
    "")
        if timeout 60 buildah pull --quiet "$OFFICIAL" >/dev/null 2>&1; then
            BASE=$OFFICIAL
        else
            say "no container registry answers for $OFFICIAL: building on a local Debian base"
            make_local_base
            BASE=$LOCAL
        fi
        ;;
    local)
        make_local_base
        BASE=$LOCAL
        ;;
    *) BASE=$HUXIAO_BASE ;;
esac

# chroot isolation: the RUN steps only run pip, and need no OCI runtime, cgroups or rlimits of the host's choosing
# (crun refuses a hybrid cgroup layout; a sandbox without CAP_SYS_RESOURCE refuses podman's default rlimits).
set -- --format docker --layers --isolation chroot --network host --build-arg "BASE=$BASE" --tag "$TAG" --file "$REPO/Dockerfile"
if [ -f "$CA" ]; then
    set -- "$@" --volume "$CA:/etc/huxiao-build-ca.crt:ro" --build-arg PIP_CERT=/etc/huxiao-build-ca.crt
fi
say "building $TAG on $BASE"
# --format docker: the OCI format has no HEALTHCHECK; Docker's keeps it.
buildah build "$@" "$REPO"
say "built $TAG"
