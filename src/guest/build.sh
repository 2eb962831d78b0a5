#!/bin/sh
# Builds the guest agent as one static binary: sh src/guest/build.sh OUTDIR
# -> OUTDIR/paddock-agent. Used by the image recipe and by the unit tests.
set -eu
out="${1:?usage: sh src/guest/build.sh OUTDIR}"
here="$(cd "$(dirname "$0")" && pwd)"
cc="${CC:-gcc}"
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "build.sh: $cc not found; install gcc and libc6-dev (apt-get install gcc libc6-dev)" >&2
  exit 1
fi
mkdir -p "$out"
"$cc" -std=gnu11 -static -O2 -Wall -Wextra -Wno-unused-parameter -Werror=implicit-function-declaration \
  -o "$out/paddock-agent.tmp" "$here/agent.c" "$here/json.c"
mv "$out/paddock-agent.tmp" "$out/paddock-agent"
