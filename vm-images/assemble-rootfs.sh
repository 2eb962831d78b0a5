#!/usr/bin/env bash
# Turns mmdebstrap's root filesystem tarball into the guest's ext4 image: unpacks it with its
# owners, adds the agent and Paddock's init, and fills a sparse ext4 image with `mkfs.ext4 -d`
# (no loop mount). Runs as root, or, for a normal user, inside `unshare --user --map-auto
# --map-root-user` (build.sh decides), where the unpacked files get their real owners too.
#
# Usage (by build.sh): assemble-rootfs.sh ROOTFS.tar OUT.img SIZE AGENT|"" PACKAGES.tsv
set -euo pipefail
TAR="$1"
IMG="$2"
SIZE="$3"
AGENT="$4"
PKGTSV="$5"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

ROOT="$(dirname "$IMG")/rootfs"
rm -rf "$ROOT"
mkdir -p "$ROOT"
trap 'rm -rf "$ROOT"' EXIT
tar -x -p --numeric-owner --same-owner -f "$TAR" -C "$ROOT"

if [ -n "$AGENT" ]; then install -m 0755 "$AGENT" "$ROOT/usr/local/bin/paddock-agent"; fi
install -m 0755 "$HERE/paddock-init" "$ROOT/usr/local/sbin/paddock-init"
# Lists what a session staged in its review grants (src/main/vm/review.ts runs it).
install -m 0755 "$HERE/paddock-staged" "$ROOT/usr/local/bin/paddock-staged"
echo paddock >"$ROOT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tpaddock\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
: >"$ROOT/etc/resolv.conf"
printf '# Paddock guest: no devices to mount at boot; the initramfs mounts / and /mnt/*.\n' >"$ROOT/etc/fstab"
# /dev is empty: init mounts a devtmpfs over it (the tarball leaves ./dev out).
mkdir -p "$ROOT/dev" "$ROOT/mnt" "$ROOT/root" "$ROOT/tmp"
chmod 0755 "$ROOT/dev"
chmod 1777 "$ROOT/tmp"
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb
dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f '${Package}\t${Version}\n' >"$PKGTSV"

truncate -s "$SIZE" "$IMG"
# -m 0: no blocks reserved for root (everything in the guest is root); small journal.
mkfs.ext4 -q -F -L paddock-root -m 0 -J size=16 -E root_owner=0:0 -d "$ROOT" "$IMG"
