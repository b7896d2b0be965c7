#!/usr/bin/env bash
# Benchmark of the inner loop "edit one file, rebuild, push to the registry": himg against Docker
# (the legacy builder; this machine's engine has no buildx) on the same content and layering, both
# pushing to Debian's docker-registry on 127.0.0.1. nix2container's README gives 1.8 s for this
# loop (rebuild + re-push after a one-file change); this prints our figures side by side.
#
#   bash benches/edit-push.sh                     (builds himg in release mode first)
#   HIMG=/path/to/himg bash benches/edit-push.sh  (uses that binary)
#   TRIALS=5 bash benches/edit-push.sh            (edits per tool; the median is printed)
#
# Needs /usr/bin/docker-registry; the Docker column needs a running Docker engine (skipped, and
# said so, without one).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${HIMG:-}" ]; then
  cargo build --release --quiet
  HIMG="$(pwd)/${CARGO_TARGET_DIR:-target}/release/himg"
fi
TRIALS=${TRIALS:-5}
work=$(mktemp -d)
trap 'kill $registry 2>/dev/null || true; rm -rf "$work"' EXIT

# ~100 MB in 4 layers: a 20 MB random file and 100 text files each.
mkdir -p "$work/p"
{
  echo 'image "bench" {'
  for i in 1 2 3 4; do
    mkdir -p "$work/p/d$i"
    head -c 20000000 /dev/urandom >"$work/p/d$i/random.bin"
    for j in $(seq 1 100); do seq 1 5000 | sed "s/^/line $i $j /" >"$work/p/d$i/text$j.txt"; done
    echo "  layer \"l$i\" { copy \"d$i\" { to = \"/data/d$i\" } }"
  done
  echo '}'
} >"$work/p/bench.himg"
{
  echo 'FROM scratch'
  for i in 1 2 3 4; do echo "COPY d$i /data/d$i"; done
} >"$work/p/Dockerfile"
printf 'bench.himg\nDockerfile\n' >"$work/p/.dockerignore"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
/usr/bin/docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry=$!
for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

ms() { date +%s%3N; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
edit() { echo "edit $1 $(date +%s%N)" >>"$work/p/d2/text7.txt"; }

cd "$work/p"
export HIMG_STORE="$work/store"
ref="127.0.0.1:$port/bench/himg:1"
t0=$(ms)
"$HIMG" -q push bench.himg "$ref" >/dev/null
t1=$(ms)
himg_cold=$((t1 - t0))
himg_edits=()
for n in $(seq 1 "$TRIALS"); do
  edit "h$n"
  t0=$(ms)
  "$HIMG" -q push bench.himg "$ref" >/dev/null
  t1=$(ms)
  himg_edits+=($((t1 - t0)))
done
himg_edit=$(median "${himg_edits[@]}")

docker_cold=-
docker_edit=-
if docker info >/dev/null 2>&1; then
  dref="127.0.0.1:$port/bench/docker:1"
  docker rmi -f "$dref" >/dev/null 2>&1 || true
  docker builder prune -af >/dev/null 2>&1 || true
  t0=$(ms)
  DOCKER_BUILDKIT=0 docker build -q -t "$dref" . >/dev/null 2>&1
  docker push -q "$dref" >/dev/null
  t1=$(ms)
  docker_cold=$((t1 - t0))
  docker_edits=()
  for n in $(seq 1 "$TRIALS"); do
    edit "d$n"
    t0=$(ms)
    DOCKER_BUILDKIT=0 docker build -q -t "$dref" . >/dev/null 2>&1
    docker push -q "$dref" >/dev/null
    t1=$(ms)
    docker_edits+=($((t1 - t0)))
  done
  docker_edit=$(median "${docker_edits[@]}")
  docker rmi -f "$dref" >/dev/null 2>&1 || true
else
  echo "(no running Docker engine: the Docker column is skipped)" >&2
fi

size=$(du -sb --apparent-size "$work/p" | cut -f1)
python3 - "$himg_cold" "$himg_edit" "$docker_cold" "$docker_edit" "$size" "$TRIALS" <<'PY'
import sys
hc, he, dc, de, size, trials = sys.argv[1:7]
print(f"content: {int(size) / 1e6:.0f} MB in 4 layers; one text file edited per trial, {trials} trials (median)")
print(f"{'':34}{'himg':>10}{'docker (legacy builder)':>26}")
print(f"{'cold build + push':34}{hc + ' ms':>10}{(dc + ' ms') if dc != '-' else '-':>26}")
print(f"{'one-file edit: build + push':34}{he + ' ms':>10}{(de + ' ms') if de != '-' else '-':>26}")
if de != "-":
    print(f"himg edit loop / docker edit loop: {int(he) / int(de):.2f}")
print(f"himg edit loop / nix2container's published 1.8 s: {int(he) / 1800:.2f}")
PY
