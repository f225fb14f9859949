#!/usr/bin/env bash
# The image of docker/Dockerfile, built with podman from Debian's packages alone: no registry of images
# is needed. The base is Debian bookworm made with debootstrap and imported into podman once; later runs
# on the same machine reuse it (and podman's layer cache), so only changed layers are built again.
#
#   bash scripts/container.sh build      build the image and print its name: $INSTABOT_IMAGE, by default
#                                        localhost/instabot:local-<hash of this checkout's path> (one per
#                                        checkout, so two checkouts building at once keep their own)
#
# Installs podman, runc and debootstrap with apt-get if absent. Runs containers with runc (crun fails on
# hybrid cgroups) on the host network, with docker/containers.conf (CONTAINERS_CONF).
# Exit status 77: podman cannot run containers on this machine (the message says why).
set -o errexit -o nounset -o pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

export CONTAINERS_CONF="$ROOT/docker/containers.conf"
INSTABOT_IMAGE=${INSTABOT_IMAGE:-localhost/instabot:local-$(printf %s "$ROOT" | sha1sum | cut -c1-10)}
BASE_IMAGE=${INSTABOT_BASE_IMAGE:-localhost/instabot-base:bookworm}
BUILD_CA_BUNDLE=${INSTABOT_BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
CANNOT_RUN=77

podman_() { podman --runtime runc "$@"; }

# The Debian mirror apt already uses (DEBIAN_MIRROR overrides it).
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local found
  found=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | grep -v '^\s*#' | grep -oE '(https?|file)://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ') || true
  echo "${found:-http://deb.debian.org/debian}"
}

ensure_tools() {
  command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null && return 0
  apt_install podman runc debootstrap || true
  if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    echo "podman cannot run containers here: podman and runc are not installed and apt-get could not install them" >&2
    exit "$CANNOT_RUN"
  fi
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed and apt-get could not install it" >&2; exit 1; }
}

# Debian bookworm, minimal, as a podman image: one to four minutes the first time (by mirror), then reused.
ensure_base_image() {
  podman_ image exists "$BASE_IMAGE" && return 0
  # One build of the base at a time on this machine; a second caller waits, then finds it.
  exec 9>"/var/tmp/instabot-container-base.lock"
  flock 9
  podman_ image exists "$BASE_IMAGE" && return 0
  local mirror rootfs started
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d /var/tmp/instabot-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  started=$SECONDS
  echo "making the base image $BASE_IMAGE: debootstrap --variant=minbase bookworm from $mirror" >&2
  as_root debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
  as_root tar -C "$rootfs" -c . | podman_ import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  echo "base image made in $((SECONDS - started)) s" >&2
}

ensure_containers_run() {
  local out
  if ! out=$(podman_ run --rm --network host "$BASE_IMAGE" true 2>&1); then
    echo "podman cannot run containers here: $out" >&2
    exit "$CANNOT_RUN"
  fi
}

build() {
  ensure_tools
  ensure_base_image
  ensure_containers_run
  local started=$SECONDS ca=()
  # pip in the build trusts what this machine trusts (a TLS-inspecting proxy's CA, say): the bundle is a
  # build secret, mounted for the pip step only and kept in no layer.
  [ -f "$BUILD_CA_BUNDLE" ] && ca=(--secret "id=pip_ca_bundle,src=$BUILD_CA_BUNDLE")
  mkdir -p var
  # --format docker keeps the HEALTHCHECK (the OCI format has no field for it).
  if ! podman_ build --network host --format docker --build-arg "BASE_IMAGE=$BASE_IMAGE" "${ca[@]}" \
    -f docker/Dockerfile -t "$INSTABOT_IMAGE" . >var/container-build.log 2>&1; then
    tail -40 var/container-build.log >&2
    echo "the image did not build; the whole log is var/container-build.log" >&2
    exit 1
  fi
  echo "built $INSTABOT_IMAGE in $((SECONDS - started)) s ($(podman_ image inspect --format '{{.Size}}' "$INSTABOT_IMAGE") bytes)" >&2
  echo "$INSTABOT_IMAGE"
}

case "${1:-}" in
  build) build ;;
  *) echo "usage: bash scripts/container.sh build" >&2; exit 2 ;;
esac
