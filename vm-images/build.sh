#!/usr/bin/env bash
# Builds the Paddock guest image for the QEMU backend into OUTDIR:
#   vmlinux      uncompressed kernel cut out of Debian's generic bzImage (PVH direct boot on
#                `-M microvm`, the fastest measured; the cloud kernel has no 9p, see VM-NOTES)
#   initrd.img   uncompressed cpio: busybox-static, the needed modules, /init
#   rootfs.img   sparse ext4 (mkfs.ext4 -d, no loop mount): bookworm minbase + tools + agent
#   manifest.json
#
# Usage: sudo vm-images/build.sh OUTDIR        (idempotent: OUTDIR is rebuilt from scratch)
#        vm-images/build.sh --print-version     (the version an image built now would get)
# Env:   PADDOCK_MIRROR      Debian mirror (default http://deb.debian.org/debian)
#        PADDOCK_IMAGE_VERSION  version string (default: hash of vm-images/ and src/guest/)
#        PADDOCK_AGENT_BIN   use this prebuilt static agent instead of building src/guest
#        PADDOCK_ALLOW_NO_AGENT=1  build without an agent (the guest then only prints a marker)
#        PADDOCK_ROOTFS_SIZE size of the sparse root image (default 2G)
# Progress lines on stdout: "@@progress FRACTION STEP" (read by src/main/vm/image.ts).
set -euo pipefail

OUT="${1:?usage: build.sh OUTDIR}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
MIRROR="${PADDOCK_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${PADDOCK_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
SUITE=bookworm
ROOTFS_SIZE="${PADDOCK_ROOTFS_SIZE:-2G}"
T0=$(date +%s)

progress() { echo "@@progress $1 $2"; }
die() {
	echo "build.sh: $*" >&2
	exit 1
}

# Same algorithm as imageVersion() in src/main/vm/image.ts.
recipe_version() {
	(cd "$REPO" && find vm-images src/guest \( -name '.*' -o -path vm-images/out -o -path src/guest/out \) -prune \
		-o -type f ! -name '*.o' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum) | sha256sum | cut -c1-16
}
if [ "$OUT" = --print-version ]; then
	recipe_version
	exit 0
fi
# Every host program this recipe runs, with its Debian package. src/main/vm/host-tools.ts names
# the same ones to the person before a build starts; test/unit/host-tools.test.ts checks that
# scripts/setup.sh installs each one's package.
need() { # program package
	command -v "$1" >/dev/null 2>&1 || die "missing $1: install the package $2 (sudo apt-get install --no-install-recommends $2)"
}
need mmdebstrap mmdebstrap
need mkfs.ext4 e2fsprogs
need depmod kmod
need lz4 lz4
need xz xz-utils
need zstd zstd
need cpio cpio
need dpkg-deb dpkg
need apt-get apt
need sha256sum coreutils
BUSYBOX=/bin/busybox # from busybox-static; the initramfs has no libc
[ -x "$BUSYBOX" ] || die "missing $BUSYBOX: install the package busybox-static"
if command -v ldd >/dev/null && ldd "$BUSYBOX" >/dev/null 2>&1; then
	die "$BUSYBOX is dynamically linked: install busybox-static, not busybox"
fi

# Root builds directly. A normal user builds in user namespaces: mmdebstrap's unshare mode makes
# the root filesystem as a tarball, and assemble-rootfs.sh unpacks it and makes the ext4 image in
# a namespace where the person is root and their subordinate ids (/etc/subuid) are the other
# users, so file owners come out right without any real privilege (no loop mounts, no mknod).
if [ "$(id -u)" = 0 ]; then
	MODE=root
	IN_NS=()
else
	MODE=unshare
	need newuidmap uidmap
	need unshare util-linux
	IN_NS=(unshare --user --map-auto --map-root-user --)
	grep -q "^$(id -un):" /etc/subuid 2>/dev/null ||
		die "building as a normal user needs subordinate ids for $(id -un) in /etc/subuid and /etc/subgid (sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $(id -un)), or run the build as root"
	"${IN_NS[@]}" true 2>/dev/null ||
		die "this system does not allow user namespaces for $(id -un) (needed to build without root); run the build as root"
fi

VERSION="${PADDOCK_IMAGE_VERSION:-$(recipe_version)}"

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$OUT/.work"
rm -rf "$WORK" "$OUT/vmlinux" "$OUT/initrd.img" "$OUT/rootfs.img" "$OUT/manifest.json"
mkdir -p "$WORK"
KDIR=""
cleanup() {
	rm -rf "$WORK"
	if [ -n "$KDIR" ]; then "${IN_NS[@]}" rm -rf "$KDIR"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- guest agent
progress 0.02 agent
AGENT="$WORK/agent/paddock-agent"
mkdir -p "$WORK/agent"
if [ -n "${PADDOCK_AGENT_BIN:-}" ]; then
	cp "$PADDOCK_AGENT_BIN" "$AGENT"
elif [ -f "$REPO/src/guest/build.sh" ]; then
	sh "$REPO/src/guest/build.sh" "$WORK/agent" >&2 || die "guest agent build failed"
elif [ "${PADDOCK_ALLOW_NO_AGENT:-}" = 1 ]; then
	AGENT=""
else
	die "src/guest/build.sh not found (set PADDOCK_ALLOW_NO_AGENT=1 to build without the agent)"
fi
if [ -n "$AGENT" ]; then
	[ -x "$AGENT" ] || die "the agent build did not produce $AGENT"
	if ldd "$AGENT" >/dev/null 2>&1; then die "$AGENT is not a static binary"; fi
fi

# ---------------------------------------------------------------- root filesystem
progress 0.05 rootfs
# In unshare mode the customize hook runs as the namespace's root, the person's first subordinate
# id, which can neither enter their (0700) home and data folder nor write there. The hook and the
# kernel download get a folder of their own under the temp folder, owned by that id (uid 1 in
# IN_NS) and writable by it alone, so no other local user can swap the downloaded kernel.
KDIR="$(mktemp -d "${TMPDIR:-/tmp}/paddock-kernel.XXXXXX")"
cp "$HERE/fetch-kernel.sh" "$KDIR/fetch-kernel.sh"
chmod 0755 "$KDIR"
chmod 0644 "$KDIR/fetch-kernel.sh"
if [ "$MODE" = unshare ]; then "${IN_NS[@]}" chown -R 1:1 "$KDIR"; fi
ROOTTAR="$WORK/rootfs.tar"
PKGS="$(grep -v '^\s*#' "$HERE/packages.txt" | awk 'NF { print $1 }' | paste -sd, -)"
# ./dev is left out of the tarball: the guest's init mounts a devtmpfs there (no device nodes are
# needed, and a normal user could not create them).
mmdebstrap --mode="$MODE" --variant=minbase --include="$PKGS" --skip=output/dev \
	--dpkgopt='path-exclude=/usr/share/man/*' \
	--dpkgopt='path-exclude=/usr/share/locale/*' \
	--dpkgopt='path-include=/usr/share/locale/locale.alias' \
	--dpkgopt='path-exclude=/usr/share/doc/*' \
	--dpkgopt='path-include=/usr/share/doc/*/copyright' \
	--dpkgopt='path-exclude=/usr/share/info/*' \
	--aptopt='Acquire::Languages "none"' \
	--customize-hook="sh '$KDIR/fetch-kernel.sh' \"\$1\" '$KDIR'" \
	"$SUITE" "$ROOTTAR" \
	"deb $MIRROR $SUITE main" \
	"deb $MIRROR $SUITE-updates main" \
	"deb $SECURITY_MIRROR $SUITE-security main" >&2 || die "mmdebstrap failed"

# ---------------------------------------------------------------- kernel
progress 0.80 kernel
KPKG="$(cat "$KDIR/package")"
KX="$WORK/kernel"
dpkg-deb -x "$KDIR"/"$KPKG"_*.deb "$KX"
# Modules live in /lib/modules (bookworm) or /usr/lib/modules (trixie and later).
MODBASE="$KX/lib/modules"
[ -d "$MODBASE" ] || MODBASE="$KX/usr/lib/modules"
KVER="$(basename "$(ls -d "$MODBASE"/* | head -1)")"
[ -n "$KVER" ] || die "the kernel package has no modules folder"
KPKG_VERSION="$(dpkg-deb -f "$KDIR"/"$KPKG"_*.deb Version)"
BZ="$KX/boot/vmlinuz-$KVER"
KCONFIG="$KX/boot/config-$KVER"
MODROOT="$MODBASE/$KVER"

# Cut the uncompressed ELF vmlinux out of the bzImage, as the kernel's scripts/extract-vmlinux
# does: find a compressed-stream magic and decompress from there. VM-NOTES measured the cloud
# kernel (LZ4, magic 02 21 4c 18); the generic kernel of bookworm is XZ. Decompressors complain
# about the bytes after the stream, so their status is ignored and the ELF magic checked instead.
try_extract() { # magic-regex command...
	local magic="$1" off
	shift
	for off in $(LC_ALL=C grep -obUaP "$magic" "$BZ" | head -5 | cut -d: -f1); do
		tail -c +"$((off + 1))" "$BZ" | "$@" >"$WORK/vmlinux" 2>/dev/null || true
		if [ "$(head -c 4 "$WORK/vmlinux" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then return 0; fi
	done
	return 1
}
try_extract '\x02\x21\x4c\x18' lz4 -dc ||
	try_extract '\xfd\x37\x7a\x58\x5a' xz -dc --single-stream ||
	try_extract '\x28\xb5\x2f\xfd' zstd -dc ||
	try_extract '\x1f\x8b\x08' gzip -dc ||
	die "could not extract an ELF vmlinux from $BZ"
grep -q '^CONFIG_PVH=y' "$KCONFIG" || die "kernel lacks CONFIG_PVH (needed for microvm direct boot)"

# ---------------------------------------------------------------- initramfs
progress 0.85 initramfs
depmod -b "$KX" "$KVER" 2>/dev/null || die "depmod failed"
IR="$WORK/initramfs"
mkdir -p "$IR"/{bin,sbin,dev,proc,sys,newroot,lib/modules}
cp "$BUSYBOX" "$IR/bin/busybox"
for a in $("$IR/bin/busybox" --list); do
	[ "$a" = busybox ] || ln -sf busybox "$IR/bin/$a"
done
install -m 0755 "$HERE/init" "$IR/init"

# Resolve wanted modules to files in dependency order (deps first), skipping built-ins.
declare -A SEEN=()
ORDER=()
modfile() { # name -> path relative to $MODROOT, or "" if built-in
	local n="$1" alt
	alt="${n//-/_}"
	awk -F: -v a="$n" -v b="$alt" '{
		f=$1; base=f; sub(/.*\//, "", base); sub(/\.ko(\.[a-z]+)?$/, "", base); gsub(/-/, "_", base)
		if (base == b) { print f; exit }
	}' "$MODROOT/modules.dep"
}
visit() {
	local rel="$1" dep
	[ -n "${SEEN[$rel]:-}" ] && return 0
	SEEN[$rel]=1
	for dep in $(awk -F: -v f="$rel" '$1 == f { print $2; exit }' "$MODROOT/modules.dep"); do
		visit "$dep"
	done
	ORDER+=("$rel")
}
while read -r name _; do
	case "$name" in "" | "#"*) continue ;; esac
	rel="$(modfile "$name")"
	if [ -z "$rel" ]; then
		grep -qE "/${name//_/[-_]}\.ko" "$MODROOT/modules.builtin" ||
			die "module $name is neither a module nor built in"
		continue
	fi
	visit "$rel"
done <"$HERE/modules.txt"
# The virtio RNG seeds the guest's entropy pool at once (the host passes /dev/urandom).
rel="$(modfile virtio_rng)"
[ -n "$rel" ] && visit "$rel"
: >"$IR/lib/modules/load-order"
for rel in "${ORDER[@]}"; do
	b="$(basename "$rel")"
	case "$b" in
	*.ko) cp "$MODROOT/$rel" "$IR/lib/modules/$b" ;;
	*.ko.xz) xz -dc "$MODROOT/$rel" >"$IR/lib/modules/${b%.xz}" && b="${b%.xz}" ;;
	*.ko.zst) zstd -dqc "$MODROOT/$rel" >"$IR/lib/modules/${b%.zst}" && b="${b%.zst}" ;;
	*) die "unknown module format $b" ;;
	esac
	# Debug info and the appended signature go: smaller initramfs, and no RSA signature check per
	# module at boot, which is slow under TCG (CONFIG_MODULE_SIG_FORCE is off; same as
	# INSTALL_MOD_STRIP=1).
	if command -v strip >/dev/null; then strip --strip-debug "$IR/lib/modules/$b"; fi
	echo "$b" >>"$IR/lib/modules/load-order"
done
echo "modules: $(tr '\n' ' ' <"$IR/lib/modules/load-order")" >&2
# Uncompressed: no decompression at boot (which costs more than reading a few MB under TCG).
(cd "$IR" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --owner 0:0 --quiet) >"$WORK/initrd.img"

progress 0.90 mkfs
"${IN_NS[@]}" bash "$HERE/assemble-rootfs.sh" "$ROOTTAR" "$WORK/rootfs.img" "$ROOTFS_SIZE" "${AGENT:-}" "$WORK/packages.tsv" ||
	die "assembling the root filesystem failed"
rm -f "$ROOTTAR"
PKGLIST="$(cat "$WORK/packages.tsv")"

# ---------------------------------------------------------------- manifest
progress 0.97 manifest
# Read-only on disk too: QEMU only ever opens the base through a per-session qcow2 overlay.
chmod 0444 "$WORK/vmlinux" "$WORK/initrd.img" "$WORK/rootfs.img"
mv "$WORK/vmlinux" "$WORK/initrd.img" "$WORK/rootfs.img" "$OUT/"
sha() { sha256sum "$OUT/$1" | cut -d' ' -f1; }
T1=$(date +%s)
{
	printf '{\n'
	printf '  "format": 1,\n'
	printf '  "version": "%s",\n' "$VERSION"
	printf '  "suite": "%s",\n' "$SUITE"
	printf '  "builtAt": "%s",\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	printf '  "buildSeconds": %s,\n' "$((T1 - T0))"
	printf '  "kernel": { "package": "%s", "packageVersion": "%s", "release": "%s" },\n' "$KPKG" "$KPKG_VERSION" "$KVER"
	printf '  "agent": %s,\n' "$([ -n "$AGENT" ] && echo true || echo false)"
	printf '  "files": {\n'
	printf '    "vmlinux": { "sha256": "%s", "size": %s },\n' "$(sha vmlinux)" "$(stat -c %s "$OUT/vmlinux")"
	printf '    "initrd.img": { "sha256": "%s", "size": %s },\n' "$(sha initrd.img)" "$(stat -c %s "$OUT/initrd.img")"
	printf '    "rootfs.img": { "sha256": "%s", "size": %s, "allocated": %s }\n' "$(sha rootfs.img)" "$(stat -c %s "$OUT/rootfs.img")" "$(($(stat -c %b "$OUT/rootfs.img") * 512))"
	printf '  },\n'
	printf '  "packages": {\n'
	printf '%s\n' "$PKGLIST" | awk -F'\t' 'NF == 2 { printf "%s    \"%s\": \"%s\"", (n++ ? ",\n" : ""), $1, $2 } END { print "" }'
	printf '  }\n'
	printf '}\n'
} >"$OUT/manifest.json.tmp"
mv "$OUT/manifest.json.tmp" "$OUT/manifest.json"
progress 1 done
echo "built image $VERSION in $((T1 - T0)) s: $OUT" >&2
