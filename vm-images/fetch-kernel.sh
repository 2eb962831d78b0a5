#!/bin/sh
# mmdebstrap customize hook: downloads the generic kernel package (linux-image-amd64's current
# linux-image-<abi>-amd64) from the same mirror and suite as the root filesystem, using
# mmdebstrap's apt configuration, so the host's distribution and apt lists do not matter.
# Writes DEST/<package>_*.deb and DEST/package.
# Usage (by build.sh): --customize-hook="sh fetch-kernel.sh \"\$1\" DEST"
set -eu
root="$1"
dest="$2"
# mmdebstrap unsets APT_CONFIG for hooks and passes its own as MMDEBSTRAP_APT_CONFIG; without it
# apt would read the host's sources (on a Debian 13 host: trixie's kernel in a bookworm image).
if [ -n "${MMDEBSTRAP_APT_CONFIG:-}" ]; then export APT_CONFIG="$MMDEBSTRAP_APT_CONFIG"; fi
pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
[ -n "$pkg" ] || { echo "fetch-kernel.sh: cannot resolve linux-image-amd64" >&2; exit 1; }
cd "$dest"
# -o APT::Sandbox::User=root: the destination is not readable by _apt.
apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2
echo "$pkg" >"$dest/package"
: "$root"
