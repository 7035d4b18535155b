#!/usr/bin/env bash
# Fuzzes the IDX reader and the checkpoint loader with libFuzzer (Swift's -sanitize=fuzzer, with AddressSanitizer),
# each target for a bounded time, one process and one worker each.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 30 seconds, targets idx and checkpoint
#
# Seeds come from Tests/Fuzz/corpus/TARGET and Tests/Fuzz/regressions/TARGET (read only); what libFuzzer learns is
# kept in .build-fuzz/corpus/TARGET for the next run. Prints libFuzzer's final stats and a table (executions and
# executions per second per target) on stdout. A crash, timeout or out-of-memory input is left in
# .build-fuzz/artifacts/TARGET/, copied to Tests/Fuzz/regressions/TARGET/ (commit it with the fix: the regression
# tests replay that directory) and makes the script exit 1. Linux only (the toolchain must ship libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "fuzz: SECONDS_PER_TARGET must be a positive whole number of seconds (got '$seconds')" >&2
    exit 2
fi
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(idx checkpoint); fi
for target in "${targets[@]}"; do
    case "$target" in
        idx | checkpoint) ;;
        *) echo "fuzz: unknown target '$target'; the targets are idx and checkpoint" >&2; exit 2 ;;
    esac
done

scratch=.build-fuzz
flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
       -Xswiftc -enable-experimental-feature -Xswiftc Extern)
echo "fuzz: building LatentFuzz with -sanitize=fuzzer,address in $scratch" >&2
build_start=$SECONDS
# gold warns once per AddressSanitizer helper symbol that it cannot export it; those lines are noise.
swift build -c debug --scratch-path "$scratch" --product LatentFuzz "${flags[@]}" 2>&1 \
    | { grep -v "Cannot export local symbol" || true; } >&2
binary="$scratch/debug/LatentFuzz"
echo "fuzz: built in $((SECONDS - build_start)) s" >&2

export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}abort_on_error=0:symbolize=1"
# Swift's own crash backtracer would handle the trap before libFuzzer and AddressSanitizer (and confuse them).
export SWIFT_BACKTRACE=enable=no
summary=()
failed=0
for target in "${targets[@]}"; do
    work="$scratch/corpus/$target"
    artifacts="$scratch/artifacts/$target"
    log="$scratch/logs/$target.log"
    regressions="Tests/Fuzz/regressions/$target"
    mkdir -p "$work" "$scratch/logs" "$regressions"
    rm -rf "$artifacts"
    mkdir -p "$artifacts"
    echo "fuzz: $target for ${seconds} s (log: $log)" >&2
    status=0
    LATENT_FUZZ_TARGET="$target" timeout --kill-after=10 $((seconds + 120)) \
        "$binary" "$work" "Tests/Fuzz/corpus/$target" "$regressions" \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=25 -rss_limit_mb=2048 \
        -dict="Tests/Fuzz/$target.dict" -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    grep '^stat::' "$log" | sed "s/^/$target /" || true
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    corpus=$(find "$work" -type f | wc -l)
    result=ok
    crashes=$(find "$artifacts" -type f | sort)
    if [ "$status" -ne 0 ] || [ -n "$crashes" ]; then
        failed=1
        result="FAILED (exit $status)"
        echo "fuzz: $target failed (libFuzzer exit $status); from $log:" >&2
        first=$(grep -n -m1 -E 'ERROR: |fuzz property violated|Fatal error' "$log" | cut -d: -f1 || true)
        if [ -n "$first" ]; then sed -n "${first},\$p" "$log" | head -n 70 >&2; else tail -n 40 "$log" >&2; fi
        for file in $crashes; do
            echo "fuzz: replay: LATENT_FUZZ_TARGET=$target SWIFT_BACKTRACE=enable=no $binary $file" >&2
            known=""
            for old in "$regressions"/*; do
                if [ -f "$old" ] && cmp -s "$file" "$old"; then known="$old"; fi
            done
            if [ -n "$known" ]; then
                echo "fuzz: $file is the known regression input $known (not fixed yet)" >&2
            else
                cp "$file" "$regressions/"
                echo "fuzz: input $file saved as $regressions/$(basename "$file")" >&2
            fi
        done
    fi
    row=$(printf '%-11s %8s %12s %8s %8s  %s' "$target" "$seconds" "${runs:-?}" "${rate:-?}" "$corpus" "$result")
    summary+=("$row")
done

printf '%-11s %8s %12s %8s %8s  %s\n' target seconds executions exec/s corpus result
printf '%s\n' "${summary[@]}"
exit "$failed"
