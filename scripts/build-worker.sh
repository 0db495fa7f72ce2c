#!/usr/bin/env bash
# Builds mediasoup-worker from the installed mediasoup package's own sources
# against Debian's libraries, and caches it by mediasoup version outside the
# clone. Prints the binary's path as its last line. A second run with the
# binary cached returns at once.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="$root/node_modules/mediasoup"
if [ ! -f "$pkg/package.json" ]; then
  echo "build-worker: $pkg is missing; run 'npm ci' first (scripts/setup.sh does it)" >&2
  exit 1
fi
version="$(node -p "require('$pkg/package.json').version")"
cache="${HOICHAN_CACHE_DIR:-$HOME/.cache/hoichan}/mediasoup-worker/$version"
bin="$cache/mediasoup-worker"

# A worker started without its parent exits 41 ("you don't seem to be my real
# father") once it has loaded: proof the binary and its libraries are whole.
worker_runs() {
  local rc=0
  env -u MEDIASOUP_VERSION "$1" </dev/null >/dev/null 2>&1 || rc=$?
  [ "$rc" -eq 41 ]
}

# The binary also depends on our patches and compat headers: a change to any
# of them rebuilds it, not only a new mediasoup version.
inputs_hash="$(cat "$root/scripts/patch-worker-meson.mjs" "$root/scripts/patch-worker-dtls.mjs" "$root/scripts/patch-worker-consumer.mjs" "$root"/scripts/worker-compat/*.h | sha256sum | cut -d' ' -f1)"
stamp="$cache/build-inputs.sha256"

if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$inputs_hash" ] && worker_runs "$bin"; then
  echo "build-worker: cached mediasoup-worker $version"
  echo "$bin"
  exit 0
fi

step() { echo "build-worker: [$1/5] $2"; }
# shellcheck source=lib/debian.sh
source "$root/scripts/lib/debian.sh"

step 1 "Debian build packages"
build_pkgs=(meson ninja-build pkg-config g++ python3 libuv1-dev libssl-dev libsrtp2-dev libabsl-dev libusrsctp-dev
            flatbuffers-compiler libflatbuffers-dev liburing-dev)
ensure_debian_packages build-worker "${build_pkgs[@]}"

step 2 "copy worker sources of mediasoup $version"
work="$(mktemp -d "${TMPDIR:-/tmp}/hoichan-worker-build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -r "$pkg/worker" "$work/worker"
rm -rf "$work/worker/subprojects" "$work/worker/out"

step 3 "patch meson files for system libraries, the DTLS send path and paused consumers"
# scripts/worker-compat: <srtp.h> and <liburing.h> wrappers that add the
# libsrtp 3 and liburing 2.4 names the worker uses to Debian's older headers.
node "$root/scripts/patch-worker-meson.mjs" "$work/worker" "$root/scripts/worker-compat"
# DTLS sent after each OpenSSL call instead of from a BIO callback (which
# crashed against Debian's OpenSSL; see the script).
node "$root/scripts/patch-worker-dtls.mjs" "$work/worker"
# A paused SimpleConsumer no longer keeps a heap node per packet it skips
# (~1.5 MiB per paused video consumer; see the script).
node "$root/scripts/patch-worker-consumer.mjs" "$work/worker"

step 4 "configure"
meson setup "$work/build" "$work/worker" --buildtype=release -Db_ndebug=true --wrap-mode=nodownload

step 5 "compile (takes a few minutes on 2 cores)"
ninja -C "$work/build" mediasoup-worker

worker_runs "$work/build/mediasoup-worker" || { echo "build-worker: the built worker does not start" >&2; exit 1; }
mkdir -p "$cache"
install -m 0755 "$work/build/mediasoup-worker" "$bin.tmp"
mv "$bin.tmp" "$bin"
echo "$inputs_hash" > "$stamp"
echo "build-worker: built $bin"
echo "$bin"
