#!/usr/bin/env bash
# The edit-one-file loop of a compiled program, himg against docker build, side by side in one run.
#
#   c     examples/hello.himg: a `build` step compiling hello.c with gcc in a toolchain image from
#         Debian, then the minimal image. Docker: a multi-stage Dockerfile whose first stage is the
#         same toolchain image (built by himg and loaded into Docker as its FROM), compiling the
#         same file, then `FROM scratch` with the program copied in.
#   rust  examples/rust-service.himg: vendored crates, a dependency build keyed by Cargo.lock and
#         the service's build on top of it. Docker: the cargo-chef pattern on the same toolchain
#         image (the manifests and vendored crates copied first, the dependencies compiled against
#         a stub main.rs in their own layer, then the sources copied and the service compiled),
#         then the program copied into himg's runtime image (glibc alone).
# Each round edits one string of the program (a token new to the run, so neither tool's cache has
# seen it), then times `himg build` and `docker build`. Also: himg's no-op, and its overhead (the
# loop's time minus the build commands' own time, from the build report).
# Usage: bash benches/build-loop.sh [c|rust] [ROUNDS]   (needs the host's Debian mirror, bwrap and
# Docker; rust also the crates registry, through cargo's own configuration)
set -euo pipefail
cd "$(dirname "$0")/.."
lang="${1:-c}"
rounds="${2:-5}"
run="$(date +%s)-$$"
cargo build --release -q
himg="$PWD/target/release/himg"
work="$(mktemp -d)"
trap 'rm -rf "$work"; docker rmi -f himg-bench-toolchain:1 himg-bench-runtime:1 himg-bench-app:1 >/dev/null 2>&1 || true' EXIT
cp -r examples "$work/"
cd "$work/examples"
export HIMG_STORE="$work/store"
ms() { date +%s%3N; }
mkdir -p "$work/docker"
offline="--offline --locked --config 'source.crates-io.replace-with=\"vendored\"' --config 'source.vendored.directory=\"vendor\"'"

case "$lang" in
  c)
    file=hello.himg toolchain=toolchain image=hello
    edit() { sed -i -E "s/\"hello( [0-9a-z-]*)?\"/\"hello $1\"/" hello/hello.c; }
    sync() { cp hello/hello.c "$work/docker/hello.c"; }
    cat >"$work/docker/Dockerfile" <<'DOCKERFILE'
FROM himg-bench-toolchain:1 AS build
WORKDIR /src
COPY hello.c .
RUN gcc -static -Os -o /hello hello.c
FROM scratch
COPY --from=build /hello /usr/local/bin/hello
ENTRYPOINT ["/usr/local/bin/hello"]
DOCKERFILE
    ;;
  rust)
    file=rust-service.himg toolchain=rust image=greeter
    edit() { sed -i -E "s/hello from rust[ 0-9a-z-]*/hello from rust $1/" rust-service/src/main.rs; }
    sync() { cp -r rust-service/src "$work/docker/"; }
    cp -r rust-service/Cargo.toml rust-service/Cargo.lock rust-service/src "$work/docker/"
    (cd "$work/docker" && cargo vendor -q --locked --versioned-dirs vendor >/dev/null)
    "$himg" build "$file" --locked --image greeter --format docker-archive --out "$work/runtime.tar" -q
    docker load -q -i "$work/runtime.tar" >/dev/null
    docker tag greeter:latest himg-bench-runtime:1
    cat >"$work/docker/Dockerfile" <<DOCKERFILE
FROM himg-bench-toolchain:1 AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY vendor ./vendor
RUN mkdir src && echo 'fn main() {}' > src/main.rs && cargo build --release $offline
COPY src ./src
RUN touch src/*.rs && cargo build --release $offline && cp target/release/greeter /greeter
FROM himg-bench-runtime:1
COPY --from=build /greeter /usr/local/bin/greeter
DOCKERFILE
    ;;
  *) echo "usage: $0 [c|rust] [ROUNDS]" >&2; exit 2 ;;
esac

"$himg" build "$file" --locked --image "$toolchain" --format docker-archive --out "$work/toolchain.tar" -q
docker load -q -i "$work/toolchain.tar" >/dev/null
docker tag "$toolchain:latest" himg-bench-toolchain:1
sync
"$himg" build "$file" --locked --image "$image" --out "$work/out" -q --no-sbom --no-policy
DOCKER_BUILDKIT=0 docker build -q -t himg-bench-app:1 "$work/docker" >/dev/null 2>&1

printf '%-6s %10s %12s %10s %12s\n' round himg_ms command_ms docker_ms ratio
himg_all=(); docker_all=(); over_all=()
for i in $(seq 1 "$rounds"); do
  edit "$run-$i"
  sync
  t0=$(ms); report=$("$himg" build "$file" --locked --image "$image" --out "$work/out" --no-sbom --no-policy --json 2>/dev/null); t1=$(ms)
  command_ms=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(sum(b.get("command_ms",0) for b in d["builds"]))' "$report")
  t2=$(ms); DOCKER_BUILDKIT=0 docker build -q -t himg-bench-app:1 "$work/docker" >/dev/null 2>&1; t3=$(ms)
  h=$((t1 - t0)); d=$((t3 - t2))
  himg_all+=("$h"); docker_all+=("$d"); over_all+=("$((h - command_ms))")
  printf '%-6s %10s %12s %10s %12s\n' "$i" "$h" "$command_ms" "$d" "$(python3 -c "print(f'{$h/$d:.2f}')")"
done
t0=$(ms); "$himg" build "$file" --locked --image "$image" --out "$work/out" -q --no-sbom --no-policy; t1=$(ms)
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "$lang: median himg loop: $(median "${himg_all[@]}") ms; docker loop: $(median "${docker_all[@]}") ms"
echo "$lang: median himg overhead (loop - commands): $(median "${over_all[@]}") ms; himg no-op: $((t1 - t0)) ms"
