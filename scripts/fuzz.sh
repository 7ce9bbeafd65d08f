#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, starting from the seed corpora in
# fuzz/corpus (copied: the run never changes the repository), and fails on the first crash,
# whose input libFuzzer saves under fuzz/artifacts/TARGET/.
#
#   bash scripts/fuzz.sh          # 20 s per target (what scripts/test.sh runs)
#   bash scripts/fuzz.sh 1800     # 30 minutes per target
#
# Builds on stable Rust: `-s none` leaves out the sanitizers, which need nightly; libFuzzer's
# coverage instrumentation and its crash detection (panics, aborts) still apply.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=${1:-20}

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi

cd fuzz
cargo fuzz build -s none -O >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for target in $(cargo fuzz list); do
    mkdir -p "$work/$target"
    cp -r "corpus/$target/." "$work/$target/"
    echo "fuzzing $target for ${seconds} s"
    cargo fuzz run -s none -O "$target" "$work/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
        grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|panicked|Test unit written)' || true
    # grep hides the progress lines; the run's own exit status decides.
    status=${PIPESTATUS[0]}
    if [[ $status -ne 0 ]]; then
        echo "fuzz target $target failed (exit $status); the input is in fuzz/artifacts/$target/" >&2
        exit "$status"
    fi
done
echo "fuzzing: every target ran ${seconds} s without a crash"
