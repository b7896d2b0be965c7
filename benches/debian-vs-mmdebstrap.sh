#!/usr/bin/env bash
# Debian benchmark (issue 2/5): a cold build of examples/python.himg from the host's mirror against
# `mmdebstrap --variant=extract` of the same package set, side by side in one run; a warm rebuild after
# one package changes (one more package added to the image); image size against mmdebstrap's tar,
# gzipped. Prints the times, the sizes and the ratios.
#
# Usage: bash benches/debian-vs-mmdebstrap.sh   (installs mmdebstrap if missing; needs the network path
# to the host's Debian mirror, which both tools resolve from the host's apt sources).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v mmdebstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; }
cargo build --release -q
HIMG="$PWD/target/release/himg"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cp -r examples "$work/"
cd "$work"

# The mirror, as the host's apt sources name it (never written down here).
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)

"$HIMG" lock examples/python.himg -q
packages=$(python3 -c 'import json; d=json.load(open("examples/python.himg.lock")); print(",".join(p["name"] for p in d["images"]["python"]["architectures"]["amd64"]))')
count=$(tr ',' '\n' <<<"$packages" | wc -l)

now() { date +%s.%N; }
# Cold = empty store / empty apt cache. The mirror (or a caching proxy in front of it) may be warmer
# for whichever tool runs second, so each tool runs twice, interleaved, and the second runs count.
himg_cold_run() { rm -rf "$work/store" py; local t0; t0=$(now); HIMG_STORE="$work/store" "$HIMG" build examples/python.himg --locked --out py -q; echo "$(now) - $t0" | bc; }
mm_cold_run() { rm -f "$work/mm.tar"; local t0; t0=$(now); mmdebstrap --quiet --variant=extract --include="$packages" trixie "$work/mm.tar" "deb $mirror trixie main" "deb $mirror trixie-updates main" "deb ${mirror}-security trixie-security main"; echo "$(now) - $t0" | bc; }
mm_cold_run >/dev/null; himg_cold_run >/dev/null
mm_cold=$(mm_cold_run); himg_cold=$(himg_cold_run)

# One package changes: add libyaml-0-2 (not in the closure yet) to the image, re-lock, rebuild warm.
sed -i 's/packages = \["python3"/packages = ["python3", "libyaml-0-2"/' examples/python.himg
"$HIMG" lock examples/python.himg -q
t0=$(now); HIMG_STORE="$work/store" "$HIMG" build examples/python.himg --locked --out py -q; t1=$(now)
himg_warm=$(echo "$t1 - $t0" | bc)

himg_size=$(skopeo inspect --raw oci:py:python | python3 -c 'import json,sys; m=json.load(sys.stdin); print(sum(l["size"] for l in m["layers"]))')
mm_gz=$(gzip -6 -c "$work/mm.tar" | wc -c)
mm_tar=$(stat -c %s "$work/mm.tar")

printf 'debian benchmark: examples/python.himg, %s packages (trixie, amd64)\n' "$count"
printf '%-34s %10s\n' "cold, himg (s)" "$himg_cold" "cold, mmdebstrap extract (s)" "$mm_cold" "one package changed, himg (s)" "$himg_warm"
printf '%-34s %10s\n' "image, himg layers (bytes)" "$himg_size" "mmdebstrap tar (bytes)" "$mm_tar" "mmdebstrap tar.gz (bytes)" "$mm_gz"
python3 - "$himg_cold" "$mm_cold" "$himg_warm" "$himg_size" "$mm_gz" <<'PY'
import sys
hc, mc, hw, hs, mg = map(float, sys.argv[1:])
print(f"cold: himg / mmdebstrap = {hc/mc:.2f} (target <= 1.00: {'met' if hc <= mc else 'MISSED'})")
print(f"warm one-package change / cold = {100*hw/hc:.1f}% (target < 10%: {'met' if hw < 0.1*hc else 'MISSED'})")
print(f"size: himg / mmdebstrap gzipped = {100*hs/mg:.1f}% (target < 70%: {'met' if hs < 0.7*mg else 'MISSED'})")
PY
