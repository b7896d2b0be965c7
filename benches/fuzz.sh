#!/usr/bin/env bash
# Builds the coverage-guided fuzz targets (fuzz/) and runs each for SECONDS (default 60).
#
#   bash benches/fuzz.sh [SECONDS] [TARGET...]
#
# libFuzzer through `libfuzzer-sys` on stable Rust: the same coverage instrumentation cargo-fuzz
# asks for (SanitizerCoverage: inline 8-bit counters, PC table, compare tracing), without the
# nightly-only `-Zsanitizer=address` (safe Rust needs no ASan; panics, overflows, OOM and
# timeouts are still findings). Inputs that grow the coverage are kept in fuzz/target/corpus/;
# findings are written to fuzz/artifacts/TARGET/ — copy each into fuzz/regressions/TARGET/ (the
# normal test suite replays them: tests/fuzz_corpus.rs) once it is fixed. HIMG_FUZZ_SEED fixes
# libFuzzer's seed (fuzz/run-ci.sh sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(himg_lang debian_index deb_unpack cache_archive oci_json registry_response)
fi
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
# --target keeps the instrumentation out of build scripts and proc macros.
cargo build --release --locked --manifest-path fuzz/Cargo.toml --target "$host" --target-dir fuzz/target \
    $(printf -- '--bin %s ' "${targets[@]}")
status=0
for t in "${targets[@]}"; do
    work="fuzz/target/corpus/$t"
    artifacts="fuzz/artifacts/$t"
    mkdir -p "$work" "$artifacts"
    echo "fuzzing $t for ${seconds}s" >&2
    # New inputs go to the first (scratch) directory; the committed seeds are only read.
    if ! "fuzz/target/$host/release/$t" "$work" "fuzz/corpus/$t" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 ${HIMG_FUZZ_SEED:+-seed="$HIMG_FUZZ_SEED"} 2> "fuzz/target/$t.log"; then
        status=1
        echo "FINDING in $t (input in $artifacts/, log in fuzz/target/$t.log):" >&2
        tail -n 40 "fuzz/target/$t.log" >&2
    else
        grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "fuzz/target/$t.log" >&2 || true
    fi
done
exit "$status"
