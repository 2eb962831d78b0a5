#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for Paddock: the Debian packages the VM and the tests use,
# then `npm ci` (which also builds dist/). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "setup: installing packages needs root: run this script as root, or install sudo." >&2
    exit 1
  fi
  SUDO="sudo"
fi

PACKAGES=(
  # the sandbox VM
  qemu-system-x86 qemu-utils
  # its image recipe (vm-images/): every program it runs that is not in an Essential package.
  # src/main/vm/host-tools.ts names the same ones, and test/unit/host-tools.test.ts checks both
  # against the programs the code and scripts really run.
  bash apt mmdebstrap busybox-static kmod e2fsprogs lz4 zstd xz-utils cpio mawk binutils
  # a normal user builds the image in user namespaces (newuidmap, newgidmap)
  uidmap
  # the guest agent is C, compiled statically
  gcc libc6-dev make
  # the UI tests drive Debian's Chromium (never a downloaded browser); the rootless image test
  # builds as a throwaway user
  chromium passwd
  # the fresh-machine check exports the work tree with git
  git
  # native modules (better-sqlite3) build from source
  python3 g++
  ca-certificates
)

# node-gyp builds better-sqlite3 against Node's headers: use the ones installed with Node
# (nodesource's nodejs and tarballs bring them; Debian's nodejs has them in libnode-dev) rather
# than downloading them from nodejs.org.
NODE_PREFIX=""
if command -v node >/dev/null 2>&1; then
  NODE_PREFIX="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  if [ ! -f "$NODE_PREFIX/include/node/node_version.h" ] &&
    dpkg -S "$(readlink -f "$(command -v node)")" 2>/dev/null | grep -q '^nodejs:'; then
    PACKAGES+=(libnode-dev)
  fi
fi

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
else
  echo "setup: not a Debian-like system; install QEMU, mmdebstrap, busybox-static, gcc and Chromium yourself." >&2
fi

# The Electron binary cannot be downloaded everywhere; `npm start` says what to do without it.
export ELECTRON_SKIP_BINARY_DOWNLOAD=1
if [ -n "$NODE_PREFIX" ] && [ -f "$NODE_PREFIX/include/node/node_version.h" ]; then
  export npm_config_nodedir="$NODE_PREFIX"
fi
npm ci --no-audit --no-fund
