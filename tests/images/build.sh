#!/usr/bin/env bash
# Builds the offline test images (see README.md next to this script).
#
# The machines that run the tests have a Docker engine but no image registry,
# so every image starts from a Debian rootfs made here with debootstrap and
# loaded with `docker import`. Each step is keyed by a content hash and skipped
# when its output already exists, so a second run only hashes a few files and
# asks Docker a few questions.
#
# Usage: tests/images/build.sh [--force]
#   --force   rebuild the rootfs tarball, re-import the base image and rebuild
#             the images without Docker's layer cache.
#
# Environment:
#   OPENCLAW_CACHE_DIR       cache root (default: <repo>/.cache)
#   OPENCLAW_DEBIAN_MIRROR   Debian mirror for debootstrap
#                            (default: http://deb.debian.org/debian)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
CACHE_DIR="${OPENCLAW_CACHE_DIR:-$REPO_ROOT/.cache}"
ROOTFS_DIR="$CACHE_DIR/rootfs"
LOG_DIR="$CACHE_DIR/image-logs"
MIRROR="${OPENCLAW_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

SUITE=bookworm
# Bump when the rootfs recipe changes in a way the hash below cannot see.
ROOTFS_RECIPE_VERSION=1
# Everything the images need at run time; the images' builds have no network,
# so nothing can be installed later.
PACKAGES=(
    ca-certificates
    curl
    jq
    netbase
    nodejs
    postgresql-15
    postgresql-client-15
    procps
    python3
    python3-jsonschema
    python3-psycopg2
    python3-requests
    socat
    tini
    util-linux
)

BASE_REPO=openclaw-test/base
BASE_TAG="$BASE_REPO:$SUITE"
HASH_LABEL=org.openclaw.test.content-hash
# name:tag and build context of each image, and optionally an image listed
# before it to build on instead of the base.
IMAGES=(
    "openclaw-test/gateway:latest gateway"
    "openclaw-test/postgres:16 postgres"
    "openclaw-test/gateway-light:latest gateway-light openclaw-test/gateway:latest"
)
# Files from elsewhere in the collection that a build context needs (path
# relative to the repository root), copied next to the context's own files:
# the gateway stand-in enforces the very schema the tenant role validates
# against, so there is one copy of it.
declare -A CONTEXT_EXTRAS=(
    [gateway]="roles/tenant/files/openclaw-gateway.schema.json"
)

FORCE=0
TMP_BUILD_DIR=""

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

die() {
    printf 'build.sh: %s\n' "$*" >&2
    exit 1
}

short_id() {
    local id="${1#sha256:}"
    printf '%s' "${id:0:12}"
}

# Prints the image id of a reference, or nothing when it does not exist.
image_id() {
    docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
}

image_label() {
    docker image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

report() {
    printf '%-36s %-11s %s\n' "$1" "$2" "$(short_id "$3")"
}

# A failed debootstrap can leave /proc, /sys or /dev bind mounts inside the
# target; they must go before `rm -rf` or it would descend into the host's.
unmount_under() {
    local dir="$1" mnt
    while read -r mnt; do
        umount -l "$mnt" 2>/dev/null || true
    done < <(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
}

cleanup() {
    if [[ -n "$TMP_BUILD_DIR" && -d "$TMP_BUILD_DIR" ]]; then
        unmount_under "$TMP_BUILD_DIR"
        rm -rf --one-file-system "$TMP_BUILD_DIR"
    fi
}
trap cleanup EXIT

ensure_debootstrap() {
    command -v debootstrap >/dev/null 2>&1 && return
    [[ $EUID -eq 0 ]] || die "debootstrap is missing and only root can install it"
    local log="$LOG_DIR/apt-debootstrap.log"
    export DEBIAN_FRONTEND=noninteractive
    if apt-get install -y -qq --no-install-recommends debootstrap >"$log" 2>&1; then
        return
    fi
    # A fresh machine may not have package lists yet.
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap; } >>"$log" 2>&1; then
        tail -n 20 "$log" >&2
        die "could not install debootstrap (log: $log)"
    fi
}

# Trims the freshly bootstrapped tree at $1 into what the images start from.
finish_rootfs() {
    local root="$1"
    # Keep maintainer scripts of packages installed by derived images from
    # starting daemons: there is no init system in a container build.
    printf '#!/bin/sh\n# Services are never started by package installs in this image.\nexit 101\n' \
        >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    # postgresql's postinst creates a default cluster; the postgres image
    # initialises its own in $PGDATA, so this one is dead weight.
    rm -rf "$root/var/lib/postgresql/15/main" "$root/etc/postgresql/15/main"
    rm -f "$root"/var/log/postgresql/*.log
    # Package caches and lists: big, and stale by the time anyone reads them.
    rm -f "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin
    rm -rf "$root"/var/lib/apt/lists/*
    mkdir -p "$root/var/lib/apt/lists/partial"
    rm -f "$root/var/log/bootstrap.log" "$root/var/log/dpkg.log" "$root"/var/log/apt/*.log
    # Documentation and translations are a fifth of the tree and nobody reads
    # them in a test container; licences stay.
    rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    # Docker provides these at run time; the build host's copies must not leak in.
    : >"$root/etc/resolv.conf"
    : >"$root/etc/machine-id"
}

build_rootfs() {
    local tarball="$1" arch="$2" log="$3"
    [[ $EUID -eq 0 ]] || die "building the rootfs needs root (debootstrap); run as root or provide $tarball"
    ensure_debootstrap
    TMP_BUILD_DIR="$(mktemp -d "$ROOTFS_DIR/.build.XXXXXX")"
    local root="$TMP_BUILD_DIR/root"
    local include
    include="$(IFS=,; printf '%s' "${PACKAGES[*]}")"
    if ! debootstrap --variant=minbase --arch="$arch" --components=main \
        --include="$include" "$SUITE" "$root" "$MIRROR" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "debootstrap failed (log: $log)"
    fi
    unmount_under "$root"
    finish_rootfs "$root"
    # Device nodes are created by Docker at run time; importing them would
    # only fail on storage drivers that refuse mknod.
    tar --numeric-owner -C "$root" -cf "$TMP_BUILD_DIR/rootfs.tar" \
        --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' .
    # Same filesystem, so readers see either no tarball or a complete one.
    mv -f "$TMP_BUILD_DIR/rootfs.tar" "$tarball"
    cleanup
    TMP_BUILD_DIR=""
}

ensure_base_image() {
    local hash="$1" tarball="$2"
    local hash_tag="$BASE_REPO:$hash" id
    id="$(image_id "$hash_tag")"
    if [[ $FORCE -eq 0 && -n "$id" ]]; then
        if [[ "$(image_id "$BASE_TAG")" == "$id" ]]; then
            report "$BASE_TAG" "up to date" "$id"
        else
            docker tag "$hash_tag" "$BASE_TAG"
            report "$BASE_TAG" "retagged" "$id"
        fi
        return
    fi
    id="$(docker import \
        --change "LABEL $HASH_LABEL=$hash" \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["bash"]' \
        --message "debootstrap --variant=minbase $SUITE (${PACKAGES[*]})" \
        "$tarball" "$hash_tag")"
    docker tag "$hash_tag" "$BASE_TAG"
    # Bases of older recipes; images still built on them keep their layers.
    docker image ls --format '{{.Repository}}:{{.Tag}}' "$BASE_REPO" |
        grep -vxF -e "$hash_tag" -e "$BASE_TAG" |
        xargs -r docker image rm >/dev/null 2>&1 || true
    report "$BASE_TAG" "imported" "$id"
}

# Hash of a build context: every file's path, mode and content, plus the base
# image it builds on, so a change to either rebuilds the image.
context_hash() {
    local dir="$1" base_hash="$2"
    {
        printf 'base=%s\n' "$base_hash"
        cd "$dir"
        find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -printf '%m %p\n' | LC_ALL=C sort
        find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-16
}

ensure_image() {
    local ref="$1" dir="$2" base_hash="$3" base_ref="$4"
    local hash old_id id log
    hash="$(context_hash "$dir" "$base_hash")"
    old_id="$(image_id "$ref")"
    if [[ $FORCE -eq 0 ]]; then
        if [[ -n "$old_id" && "$(image_label "$ref" "$HASH_LABEL")" == "$hash" ]]; then
            report "$ref" "up to date" "$old_id"
            return
        fi
        id="$(docker image ls --quiet --no-trunc --filter "label=$HASH_LABEL=$hash" | head -n 1)"
        if [[ -n "$id" ]]; then
            docker tag "$id" "$ref"
            report "$ref" "retagged" "$id"
            return
        fi
    fi
    log="$LOG_DIR/$(basename "$dir").log"
    local args=(--quiet --network none --label "$HASH_LABEL=$hash"
        --build-arg "BASE_IMAGE=$base_ref" --tag "$ref")
    [[ $FORCE -eq 1 ]] && args+=(--no-cache)
    if ! docker build "${args[@]}" "$dir" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "docker build of $ref failed (log: $log)"
    fi
    id="$(image_id "$ref")"
    # The replaced image is now untagged; drop it unless a container still
    # uses it (then `docker image rm` refuses, which is fine).
    if [[ -n "$old_id" && "$old_id" != "$id" ]]; then
        docker image rm "$old_id" >/dev/null 2>&1 || true
    fi
    report "$ref" "built" "$id"
}

main() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --force) FORCE=1 ;;
            -h | --help) usage; return 0 ;;
            *) die "unknown argument: $1 (try --help)" ;;
        esac
        shift
    done
    command -v docker >/dev/null 2>&1 || die "the docker CLI is required"
    mkdir -p "$ROOTFS_DIR" "$LOG_DIR"

    # Two concurrent runs would race on the tarball and the tags.
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$CACHE_DIR/.images.lock"
        flock 9
    fi

    local arch hash tarball
    arch="$(dpkg --print-architecture 2>/dev/null || uname -m)"
    # The recipe functions are part of the hash so editing them rebuilds.
    hash="$(
        {
            printf 'recipe=%s\nsuite=%s\narch=%s\n' "$ROOTFS_RECIPE_VERSION" "$SUITE" "$arch"
            printf 'package=%s\n' "${PACKAGES[@]}" | LC_ALL=C sort
            declare -f build_rootfs finish_rootfs
        } | sha256sum | cut -c1-16
    )"
    tarball="$ROOTFS_DIR/$SUITE-$hash.tar"

    # The tarball is only needed to import a base image that is not there yet.
    if [[ $FORCE -eq 1 || (! -s "$tarball" && -z "$(image_id "$BASE_REPO:$hash")") ]]; then
        local started=$SECONDS
        build_rootfs "$tarball" "$arch" "$LOG_DIR/debootstrap-$SUITE-$hash.log"
        # Older recipes' tarballs are never used again.
        find "$ROOTFS_DIR" -maxdepth 1 -name "$SUITE-*.tar" ! -name "$SUITE-$hash.tar" -delete
        printf '%-36s %-11s %s (%s, %ss)\n' "rootfs" "built" "$tarball" \
            "$(du -h "$tarball" | cut -f1)" "$((SECONDS - started))"
    fi

    ensure_base_image "$hash" "$tarball"
    local entry context extra on base_hash base_ref
    for entry in "${IMAGES[@]}"; do
        read -r ref dir on <<<"$entry"
        # An image on another one is rebuilt whenever that one changes: its
        # content hash stands in for the rootfs hash.
        if [[ -n "$on" ]]; then
            base_hash="$(image_label "$on" "$HASH_LABEL")"
            base_ref="$on"
        else
            base_hash="$hash"
            base_ref="$BASE_REPO:$hash"
        fi
        context="$HERE/$dir"
        if [[ -n "${CONTEXT_EXTRAS[$dir]:-}" ]]; then
            TMP_BUILD_DIR="$(mktemp -d)"
            context="$TMP_BUILD_DIR/$dir"
            mkdir "$context"
            cp -a "$HERE/$dir/." "$context/"
            for extra in ${CONTEXT_EXTRAS[$dir]}; do
                install -m 0644 "$REPO_ROOT/$extra" "$context/$(basename "$extra")"
            done
        fi
        ensure_image "$ref" "$context" "$base_hash" "$base_ref"
        if [[ "$context" != "$HERE/$dir" ]]; then
            rm -rf "$TMP_BUILD_DIR"
            TMP_BUILD_DIR=""
        fi
    done
}

main "$@"
