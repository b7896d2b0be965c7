#!/usr/bin/env bash
# Benchmark of binary-cache substitution (issue 6): team A builds an image cold and pushes it to a
# `himg cache serve` on 127.0.0.1; team B, with an empty store, builds the same file from the cache.
# Prints B's time against A's cold time (target <= 20 %) and the bytes B downloaded against the
# image size (target <= 110 %).
#
#   bash benches/cache.sh                        (builds himg in release mode first)
#   HIMG=/path/to/himg bash benches/cache.sh     (uses that binary)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${HIMG:-}" ]; then
  cargo build --release --quiet
  HIMG="$(pwd)/${CARGO_TARGET_DIR:-target}/release/himg"
fi
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT

# 40 MB of content in 8 layers: half random, half compressible text.
mkdir -p "$work/p"
{
  echo 'image "bench" {'
  for i in $(seq 1 8); do
    mkdir -p "$work/p/d$i"
    head -c 2500000 /dev/urandom >"$work/p/d$i/random.bin"
    for j in $(seq 1 50); do seq 1 10000 | sed "s/^/line $i $j /" >"$work/p/d$i/text$j.txt"; done
    echo "  layer \"l$i\" { copy \"d$i\" { to = \"/data/d$i\" } }"
  done
  echo '}'
} >"$work/p/bench.himg"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HIMG_STORE="$work/server-store" "$HIMG" -q cache serve --listen "127.0.0.1:$port" --dir "$work/served" &
server=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
url="http://127.0.0.1:$port/bench"
export HIMG_CONFIG_DIR="$work/config"
pk=$("$HIMG" -q key generate bench-1)

ms() { date +%s%3N; }
cd "$work/p"
t0=$(ms)
HIMG_STORE="$work/a" "$HIMG" -q build bench.himg --out out-a --json >"$work/a.json"
t1=$(ms)
HIMG_STORE="$work/a" "$HIMG" -q cache push "$url" bench.himg --json >"$work/push.json"
t2=$(ms)
HIMG_STORE="$work/b" "$HIMG" -q build bench.himg --out out-b --json \
  --substituters "$url" --trusted-key "$pk" >"$work/b.json"
t3=$(ms)

cold=$((t1 - t0)); push=$((t2 - t1)); subst=$((t3 - t2))
image=$(du -sb --apparent-size out-a/blobs | cut -f1)
down=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["downloaded_bytes"])' "$work/b.json")
python3 - "$cold" "$push" "$subst" "$image" "$down" "$work/b.json" "$work/a.json" <<'PY'
import json, sys
cold, push, subst, image, down = map(int, sys.argv[1:6])
b = json.load(open(sys.argv[6]))
a = json.load(open(sys.argv[7]))
assert a["images"][0]["digest"] == b["images"][0]["digest"], "B's image differs from A's"
print(f"A cold build:          {cold} ms")
print(f"A push (whole closure): {push} ms")
print(f"B build from cache:    {subst} ms  ({100 * subst / cold:.1f} % of cold; target <= 20 %)")
print(f"B built {b['built']}, substituted {b['substituted']}")
print(f"image size:            {image} bytes")
print(f"B downloaded:          {down} bytes ({100 * down / image:.1f} % of the image; target <= 110 %)")
PY
