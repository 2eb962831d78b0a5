#!/usr/bin/env bash
# The README's quick start on a machine where nothing was installed by hand: builds a minimal
# Debian root with mmdebstrap (minbase plus Debian's own nodejs and npm), copies in a clean
# export of this repository (no node_modules, no dist, no data folder) and, inside it, isolated
# from this machine's installed packages (chroot in its own mount and pid namespaces), runs:
#   ./scripts/setup.sh            (the README's setup command; must install everything)
#   npx paddock serve             (must print its address and answer it)
#   npx paddock image build
#   npx paddock exec -- ...       (one command in the sandbox VM)
#   npx paddock run --yes ...     (one agent turn with a tool call, against the scripted Messages
#                                  API in test/support, so no test reaches the internet)
# A package missing from setup.sh fails one of these steps here, instead of hiding behind what
# the machine CI runs on happens to have installed (kmod did, for weeks).
#
# Usage: sudo scripts/fresh-machine-check.sh [--suite bookworm|trixie] [--keep]
# Needs root (mmdebstrap and chroot), mmdebstrap, and the Debian mirror and the npm registry.
# Debian 12 (bookworm, the default, what CI checks) ships a Node older than package.json's
# engines, so this machine's own Node (binary, npm, headers) is copied in: the README's one
# prerequisite. Debian 13 (trixie) ships a Node that meets engines and is used as it is; there
# setup.sh, serve and the image build pass, but QEMU 10's microvm does not boot the guest yet
# (see the notes in src/main/vm/qemu/args.ts), so `paddock exec` fails.
# Env: PADDOCK_MIRROR (default http://deb.debian.org/debian), FRESH_WORK (default /var/tmp).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SUITE=bookworm
KEEP=""
while [ $# -gt 0 ]; do
	case "$1" in
	--suite) SUITE="$2"; shift 2 ;;
	--keep) KEEP=1; shift ;;
	*) echo "fresh-machine-check: unknown argument $1" >&2; exit 2 ;;
	esac
done
MIRROR="${PADDOCK_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${PADDOCK_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
[ "$(id -u)" = 0 ] || { echo "fresh-machine-check: needs root (mmdebstrap, chroot)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { echo "fresh-machine-check: needs mmdebstrap (run scripts/setup.sh)" >&2; exit 2; }

T0=$(date +%s)
step() { echo "fresh-machine-check: [$(($(date +%s) - T0)) s] $*"; }
WORK="$(mktemp -d "${FRESH_WORK:-/var/tmp}/paddock-fresh.XXXXXX")"
ROOT="$WORK/root"
cleanup() {
	if [ -n "$KEEP" ]; then echo "fresh-machine-check: kept $ROOT"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

INCLUDE=ca-certificates
if [ "$SUITE" != bookworm ]; then INCLUDE="$INCLUDE,nodejs,npm"; fi
SOURCES=("deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" "deb $SECURITY_MIRROR $SUITE-security main")
step "building a $SUITE minbase root with $INCLUDE"
mmdebstrap --variant=minbase --include="$INCLUDE" --aptopt='Acquire::Languages "none"' \
	"$SUITE" "$ROOT" "${SOURCES[@]}" >"$WORK/mmdebstrap.log" 2>&1 ||
	{ tail -20 "$WORK/mmdebstrap.log" >&2; echo "fresh-machine-check: mmdebstrap failed" >&2; exit 1; }
if [ "$SUITE" = bookworm ]; then
	# bookworm's nodejs is 18, below engines: bring this machine's Node (binary, npm, headers).
	NODE_PREFIX="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
	cp -a "$NODE_PREFIX/bin/node" "$ROOT/usr/local/bin/node"
	mkdir -p "$ROOT/usr/local/lib" "$ROOT/usr/local/include"
	cp -a "$NODE_PREFIX/lib/node_modules" "$ROOT/usr/local/lib/"
	[ -d "$NODE_PREFIX/include/node" ] && cp -a "$NODE_PREFIX/include/node" "$ROOT/usr/local/include/"
	ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
	ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
fi

step "copying a clean export of the repository"
mkdir -p "$ROOT/src/paddock"
# Tracked and new files, as in the work tree; never node_modules, dist, data folders or images
# (.gitignore excludes them).
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
	while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
	tar --null -T - -cf -) | tar -xf - -C "$ROOT/src/paddock"
# DESIGN.md and friends sit beside the project's root on every machine.
if [ -d "$REPO/../shared" ]; then cp -a "$REPO/../shared" "$ROOT/src/shared"; fi
# What belongs to this network rather than to a machine: its resolver and, where the registry is
# reached through an intercepting proxy, the local certificate authorities this machine trusts.
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
printf 'fund=false\naudit=false\nupdate-notifier=false\n' >"$ROOT/root/.npmrc"
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
	mkdir -p "$ROOT/usr/local/share/ca-certificates"
	cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
	chroot "$ROOT" update-ca-certificates >/dev/null 2>&1
	echo 'cafile=/etc/ssl/certs/ca-certificates.crt' >>"$ROOT/root/.npmrc"
fi

cat >"$ROOT/fresh-inner.sh" <<'INNER'
#!/bin/sh
set -eu
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PADDOCK_HOME=/root/paddock-data
cd /src/paddock
t0=$(date +%s)
step() { echo "fresh-machine-check (inside): [$(($(date +%s) - t0)) s] $*"; }

step "./scripts/setup.sh"
./scripts/setup.sh >/tmp/setup.log 2>&1 || { tail -40 /tmp/setup.log; echo "setup.sh failed"; exit 1; }

step "npx paddock serve"
npx paddock serve --port 0 >/tmp/serve.out 2>/tmp/serve.err &
serve=$!
i=0
until grep -q 'Paddock is serving at' /tmp/serve.out 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 300 ] || ! kill -0 $serve 2>/dev/null; then cat /tmp/serve.out /tmp/serve.err; echo "serve did not start"; exit 1; fi
	sleep 0.1
done
url=$(sed -n 's/^Paddock is serving at \(http[^ ]*\).*/\1/p' /tmp/serve.out)
node -e 'fetch(process.argv[1]).then(async r => { const t = await r.text(); if (r.status !== 200 || !t.includes("<div id=\"root\"")) { console.error(r.status, t.slice(0, 200)); process.exit(1) } })' "$url"
kill $serve

step "npx paddock image build"
npx paddock image build </dev/null

step "npx paddock exec"
out=$(npx paddock exec -- sh -c 'echo fresh-$((6 * 7))' </dev/null)
[ "$out" = fresh-42 ] || { echo "exec printed '$out', not fresh-42"; exit 1; }

step "npx paddock run against the scripted Messages API"
cat >/tmp/script.json <<'JSON'
[
  {"reply": {"content": [{"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"command": "echo from-the-vm-$((20 + 3))"}}], "stop_reason": "tool_use"}},
  {"reply": {"content": [{"type": "text", "text": "All done."}], "stop_reason": "end_turn"}}
]
JSON
node --import tsx test/support/messages-api/cli.ts --script /tmp/script.json --api-key fresh-key >/tmp/api.out 2>/tmp/api.err &
api=$!
i=0
until grep -q '^MESSAGES_API_URL=' /tmp/api.out 2>/dev/null; do
	i=$((i + 1))
	if [ $i -gt 300 ]; then cat /tmp/api.err; echo "the scripted Messages API did not start"; exit 1; fi
	sleep 0.1
done
export ANTHROPIC_BASE_URL="$(sed -n 's/^MESSAGES_API_URL=//p' /tmp/api.out)" ANTHROPIC_API_KEY=fresh-key
npx paddock run --yes --json "Say something from the VM" </dev/null >/tmp/run.jsonl
kill $api
grep -q 'from-the-vm-23' /tmp/run.jsonl || { cat /tmp/run.jsonl; echo "run: the tool's output never came back"; exit 1; }
grep -q 'All done.' /tmp/run.jsonl || { cat /tmp/run.jsonl; echo "run: no final answer"; exit 1; }
step "all passed"
INNER
chmod +x "$ROOT/fresh-inner.sh"

step "running the README's steps inside (own mount and pid namespaces, chroot)"
# /dev is bound for /dev/null, /dev/kvm and /dev/urandom; everything else the root brings itself.
unshare --mount --pid --fork --kill-child --propagation private sh -c '
	set -e
	root="$1"
	mount -t proc proc "$root/proc"
	mount --rbind /sys "$root/sys"
	mount --rbind /dev "$root/dev"
	mount -t tmpfs tmpfs "$root/tmp"
	exec chroot "$root" /fresh-inner.sh
' sh "$ROOT"
step "passed on $SUITE"
