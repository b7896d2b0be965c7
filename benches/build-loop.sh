#!/usr/bin/env bash
# The edit-one-file loop of a compiled program, himg against docker build, side by side in one run.
#
# himg: examples/hello.himg (a `build` step compiling hello.c with gcc in a toolchain image from
# Debian, then the minimal image). Docker: a multi-stage Dockerfile whose first stage is the same
# toolchain image (built by himg and loaded into Docker as its FROM), compiling the same file, then
# `FROM scratch` with the program copied in. Each round edits one string of hello.c (so the program
# really changes), then times `himg build` and `docker build`. Also: himg's no-op, and its overhead
# (the loop's time minus the compile command's own time, from the build report).
# Usage: bash benches/build-loop.sh [ROUNDS]   (needs the host's Debian mirror, bwrap and Docker)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
run="$(date +%s)-$$"
cargo build --release -q
himg="$PWD/target/release/himg"
work="$(mktemp -d)"
trap 'rm -rf "$work"; docker rmi -f himg-bench-toolchain:1 himg-bench-hello:1 >/dev/null 2>&1 || true' EXIT
cp -r examples "$work/"
cd "$work/examples"
export HIMG_STORE="$work/store"
ms() { date +%s%3N; }

"$himg" build hello.himg --locked --image toolchain --format docker-archive --out "$work/toolchain.tar" -q
docker load -q -i "$work/toolchain.tar" >/dev/null
docker tag toolchain:latest himg-bench-toolchain:1
mkdir -p "$work/docker"
cat >"$work/docker/Dockerfile" <<'DOCKERFILE'
FROM himg-bench-toolchain:1 AS build
WORKDIR /src
COPY hello.c .
RUN gcc -static -Os -o /hello hello.c
FROM scratch
COPY --from=build /hello /usr/local/bin/hello
ENTRYPOINT ["/usr/local/bin/hello"]
DOCKERFILE
cp hello/hello.c "$work/docker/hello.c"
"$himg" build hello.himg --locked --image hello --out "$work/out" -q --no-sbom --no-policy
DOCKER_BUILDKIT=0 docker build -q -t himg-bench-hello:1 "$work/docker" >/dev/null 2>&1

printf '%-6s %10s %12s %10s %12s\n' round himg_ms command_ms docker_ms ratio
himg_all=(); docker_all=(); over_all=()
for i in $(seq 1 "$rounds"); do
  # A token new to this run: Docker's build cache must not have seen the edit before.
  sed -i -E "s/\"hello( [0-9a-z-]*)?\"/\"hello $run-$i\"/" hello/hello.c
  cp hello/hello.c "$work/docker/hello.c"
  t0=$(ms); report=$("$himg" build hello.himg --locked --image hello --out "$work/out" --no-sbom --no-policy --json 2>/dev/null); t1=$(ms)
  command_ms=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sum(b.get("command_ms",0) for b in d["builds"]))' "$report")
  t2=$(ms); DOCKER_BUILDKIT=0 docker build -q -t himg-bench-hello:1 "$work/docker" >/dev/null 2>&1; t3=$(ms)
  h=$((t1 - t0)); d=$((t3 - t2))
  himg_all+=("$h"); docker_all+=("$d"); over_all+=("$((h - command_ms))")
  printf '%-6s %10s %12s %10s %12s\n' "$i" "$h" "$command_ms" "$d" "$(python3 -c "print(f'{$h/$d:.2f}')")"
done
t0=$(ms); "$himg" build hello.himg --locked --image hello --out "$work/out" -q --no-sbom --no-policy; t1=$(ms)
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median himg loop: $(median "${himg_all[@]}") ms; docker loop: $(median "${docker_all[@]}") ms"
echo "median himg overhead (loop - command): $(median "${over_all[@]}") ms; himg no-op: $((t1 - t0)) ms"
