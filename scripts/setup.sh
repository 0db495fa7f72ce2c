#!/usr/bin/env bash
# Everything Hoichan needs on a fresh Debian bookworm machine with Node 20:
# Debian packages (worker build deps and the real parts the tests drive),
# npm packages, the mediasoup worker (built against Debian's libraries and
# cached by version), and the TypeScript and web builds. Safe to run again:
# each step is skipped when it is already done.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
say() { echo "setup: $*"; }
# shellcheck source=lib/debian.sh
source "$root/scripts/lib/debian.sh"

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  echo "setup: Node.js 20 or newer is required (found $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# 1. Debian packages: the worker's build deps, and redis, chromium, ffmpeg, socat and openssl (test certificates) for the tests and demo;
# postgresql for the records tests (test/support/postgres.ts starts a throwaway cluster; no system cluster is used).
debs=(meson ninja-build pkg-config g++ python3 libuv1-dev libssl-dev libsrtp2-dev libabsl-dev libusrsctp-dev
      flatbuffers-compiler libflatbuffers-dev liburing-dev redis-server chromium socat ffmpeg openssl postgresql)
ensure_debian_packages setup "${debs[@]}"

# 2. npm packages, exactly as locked. mediasoup's own postinstall would try to
# download a prebuilt worker (no internet here); MEDIASOUP_WORKER_BIN makes it
# stand aside, and step 3 builds the worker instead.
cache_dir="${HOICHAN_CACHE_DIR:-$HOME/.cache/hoichan}"
# The stamp covers the lock file, the Node ABI and better-sqlite3's native addon:
# it is written only once the addon loads, so a skipped or failed build is redone.
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)-node-abi-$(node -p process.versions.modules)"
stamp="node_modules/.hoichan-lock-sha256"
sqlite_loads() { node -e "new (require('better-sqlite3'))(':memory:').close()" >/dev/null 2>&1; }
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_hash" ] && sqlite_loads; then
  say "npm packages up to date"
else
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
    say "installing npm packages (npm ci)"
    MEDIASOUP_WORKER_BIN="$cache_dir/mediasoup-worker/pending" npm ci --no-audit --no-fund
  fi
  # npm 11 may skip install scripts it has not been told to allow: build the SQLite addon
  # for this Node (no prebuilt download here: node-gyp against the bundled SQLite source).
  if ! sqlite_loads; then
    say "building better-sqlite3's native addon (npm rebuild better-sqlite3)"
    npm rebuild better-sqlite3 --foreground-scripts
    sqlite_loads || { echo "setup: better-sqlite3 does not load after rebuilding it" >&2; exit 1; }
  fi
  echo "$lock_hash" > "$stamp"
fi

# 3. mediasoup worker (cached by version outside the clone; seconds when cached).
bash scripts/build-worker.sh

# 4. TypeScript and the browser bundle.
say "building (tsc + web bundle)"
npm run --silent build
say "ready"
