#!/usr/bin/env bash
# Cost of the configure step (issue 12): for each package list, the build after a change that
# re-runs everything above the packages (a new SOURCE_DATE_EPOCH: configure, layers, config,
# manifest), with the maintainer scripts (the lock's configure tools) and without them (the same
# lock with its `tools` removed), on a store that already holds every `.deb` and unpacked package.
# Prints both wall times and their ratio, and the configure step's own share. Needs the host's
# Debian mirror (once, to fill the store) and bubblewrap.
#
#   bash benches/configure.sh                      (builds himg in release mode first)
#   HIMG=/path/to/himg bash benches/configure.sh   (uses that binary)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${HIMG:-}" ]; then
  cargo build --release --quiet
  HIMG="$(pwd)/${CARGO_TARGET_DIR:-target}/release/himg"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/keys examples/debian.himg "$work/"
export HIMG_STORE="$work/store"

cases=("nginx-light" "openjdk-21-jre-headless" "python3" "postgresql-17")
printf '%-28s %9s %9s %7s %6s\n' "packages" "scripts" "none" "ratio" "ran"
epoch=1700000000
for pkgs in "${cases[@]}"; do
  name=$(echo "$pkgs" | tr -c 'a-z0-9\n' '-' | cut -c1-20)
  list=$(printf '"%s", ' $pkgs)
  cat >"$work/$name.himg" <<HIMG
let d = import "debian.himg"
image "$name" {
  repositories = d.repositories
  packages = [${list%, }]
}
HIMG
  "$HIMG" -q lock "$work/$name.himg"
  python3 - "$work/$name.himg.lock" "$work/$name-none.himg.lock" <<'PY'
import json, sys
lock = json.load(open(sys.argv[1]))
for image in lock["images"].values():
    image.pop("tools", None)
json.dump(lock, open(sys.argv[2], "w"), indent=2, sort_keys=True)
PY
  cp "$work/$name.himg" "$work/$name-none.himg"
  # Warm the store: every .deb fetched and unpacked, both variants built once.
  SOURCE_DATE_EPOCH=$epoch "$HIMG" -q build "$work/$name.himg" --locked --no-sbom --no-policy -o "$work/out" >/dev/null
  SOURCE_DATE_EPOCH=$epoch "$HIMG" -q build "$work/$name-none.himg" --locked --no-sbom --no-policy -o "$work/out" >/dev/null
  epoch=$((epoch + 1))
  t0=$(date +%s.%N)
  SOURCE_DATE_EPOCH=$epoch "$HIMG" build "$work/$name.himg" --locked --no-sbom --no-policy -o "$work/out" --json 2>/dev/null >"$work/report.json"
  t1=$(date +%s.%N)
  SOURCE_DATE_EPOCH=$((epoch + 1000)) "$HIMG" -q build "$work/$name-none.himg" --locked --no-sbom --no-policy -o "$work/out" >/dev/null
  t2=$(date +%s.%N)
  ran=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(sum(len(c["ran"]) for c in r["configure"]))' "$work/report.json")
  python3 -c "import sys; a=float(sys.argv[2])-float(sys.argv[1]); b=float(sys.argv[3])-float(sys.argv[2]); print('%-28s %8.2fs %8.2fs %6.2fx %6s' % (sys.argv[4], a, b, a/b, sys.argv[5]))" "$t0" "$t1" "$t2" "$pkgs" "$ran"
done
