#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s each) with cargo
# fuzz on the nightly toolchain, starting from the saved corpus in
# fuzz/corpus/<target>/, and prints what it found.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 600        # 10 minutes per target
#   scripts/fuzz.sh 60 job_spec
#
# Needs: rustup's nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# A crash is saved in fuzz/artifacts/<target>/; once fixed, copy it into
# fuzz/corpus/<target>/ under a telling name: `cargo test -p iog-fuzz` then
# runs it on every build.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(worker_message job_spec blob_upload)
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "error: cargo fuzz on nightly is missing; run: rustup toolchain install nightly && cargo install cargo-fuzz" >&2
    exit 2
fi
status=0
for target in "${targets[@]}"; do
    # The saved corpus stays as it is in git; new finds go to a scratch copy.
    scratch="fuzz/target/corpus-$target"
    mkdir -p "$scratch"
    cp -n "fuzz/corpus/$target/"* "$scratch/" 2>/dev/null || true
    log="fuzz/target/$target.log"
    echo "== $target: $seconds s"
    if cargo +nightly fuzz run "$target" "$scratch" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        >"$log" 2>&1; then
        grep -E "^Done|stat::number_of_executed_units|#[0-9]+\s+DONE" "$log" | tail -2 || true
    else
        status=1
        echo "!! $target found a problem; see $log and fuzz/artifacts/$target/"
        tail -30 "$log"
    fi
done
exit $status
