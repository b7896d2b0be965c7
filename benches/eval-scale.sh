#!/usr/bin/env bash
# Benchmark of evaluation at scale (issue 11): files of 1,000, 5,000 and 20,000 small images (each
# from a shared base, with a file and an env entry, half of them through a template function), and a
# function of 255 parameters called 2,000 times (a 1.9 MB file). Prints `himg check`'s wall time and maximum
# resident set size for each: both should grow linearly with the number of images.
#
#   bash benches/eval-scale.sh                        (builds himg in release mode first)
#   HIMG=/path/to/himg bash benches/eval-scale.sh     (uses that binary)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${HIMG:-}" ]; then
  cargo build --release --quiet
  HIMG="$(pwd)/${CARGO_TARGET_DIR:-target}/release/himg"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

images_file() { # N → a file of N images
  echo 'let common = { env = { MODE = "bench" }, run_as = "1000" }'
  echo 'let service(name, port) = common // { ports = [port], file "/etc/${name}.conf" { text = "name=${name}\n" } }'
  echo 'image "base" { labels = { team = "bench" } }'
  for i in $(seq 1 "$1"); do
    if [ $((i % 2)) -eq 0 ]; then
      echo "image \"svc$i\" = service(\"svc$i\", $((i % 60000 + 1))) // { from = images.base }"
    else
      echo "image \"img$i\" { from = images.base, env = { N = \"$i\" }, file \"/n\" { text = \"$i\" } }"
    fi
  done
}

params_file() { # a 255-parameter function called N times
  local params args
  params=$(seq -s, -f 'p%g' 0 254)
  args=$(seq -s, 0 254)
  echo "let f($params) = { max_layers = p1 + p0 }"
  for i in $(seq 1 "$1"); do echo "image \"f$i\" = f($args)"; done
}

measure() { # NAME FILE
  /usr/bin/time -f '%e %M' -o "$work/time" "$HIMG" check "$2" >/dev/null 2>"$work/err" || {
    cat "$work/err" >&2
    exit 1
  }
  read -r secs kib <"$work/time"
  printf '%-28s %8.2f s %10d KiB max RSS\n' "$1" "$secs" "$kib"
}

for n in 1000 5000 20000; do
  images_file "$n" >"$work/images-$n.himg"
  measure "$n images" "$work/images-$n.himg"
done
params_file 2000 >"$work/params.himg"
measure "255 parameters x 2000 calls" "$work/params.himg"
