#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Runs libFuzzer targets for a fixed time each and keeps what they find:
#   tests/fuzz/run-fuzz.sh SECONDS TARGET_BINARY...
# Each target starts from its committed corpus (tests/fuzz/corpus/NAME/) and writes new inputs
# into a scratch directory; afterwards `-merge=1` copies into the committed corpus only those
# inputs that reach new coverage, so the corpus grows minimized (`make check` replays it).
# Prints one line per target with libFuzzer's own count of executions
# (stat::number_of_executed_units, from -print_final_stats=1). Fails when a target crashes,
# leaks, times out, exceeds its memory, or prints any sanitizer report (UBSan recovers by default,
# so its reports are made fatal here and also looked for in the output); the reproducer is left
# in build/fuzz-artifacts/.
set -euo pipefail

if [ $# -lt 2 ]; then
        echo "usage: $0 SECONDS TARGET_BINARY..." >&2
        exit 2
fi
seconds=$1
shift
root=$(cd "$(dirname "$0")/../.." && pwd)
artifacts=$root/build/fuzz-artifacts
mkdir -p "$artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
report='ERROR: (Address|Leak|Memory|Thread|Undefined)Sanitizer|runtime error:|SUMMARY: libFuzzer'

failed=()
total=0
for bin in "$@"; do
        name=$(basename "$bin")
        corpus=$root/tests/fuzz/corpus/$name
        new=$scratch/$name
        log=$scratch/$name.log
        mkdir -p "$corpus" "$new"
        before=$(find "$corpus" -type f | wc -l)
        rc=0
        # New inputs go to the first directory ($new); the committed corpus is only read here.
        "$bin" -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 -timeout=10 \
                -rss_limit_mb=2048 -artifact_prefix="$artifacts/$name-" "$new" "$corpus" \
                >"$log" 2>&1 || rc=$?
        execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
        if [ "$rc" -ne 0 ] || grep -Eq "$report" "$log" || [ -z "$execs" ]; then
                echo "$name: FAILED (exit $rc) after ${execs:-?} executions:" >&2
                first=$(grep -n -m1 -E "$report|==[0-9]+== ?ERROR|deadly signal|out-of-memory" \
                        "$log" | cut -d: -f1)
                sed -n "${first:-1},+40p" "$log" >&2
                grep -E '^(artifact_prefix|Test unit written to)' "$log" >&2 || true
                failed+=("$name")
                continue
        fi
        # Only inputs that add coverage join the committed corpus.
        if ! "$bin" -merge=1 -max_len=65536 -timeout=10 "$corpus" "$new" >"$log.merge" 2>&1; then
                echo "$name: merging the new inputs failed:" >&2
                tail -n 30 "$log.merge" >&2
                failed+=("$name")
                continue
        fi
        after=$(find "$corpus" -type f | wc -l)
        total=$((total + execs))
        printf '%-16s %10d executions in %ss, corpus %d -> %d inputs\n' "$name" "$execs" \
                "$seconds" "$before" "$after"
done
echo "fuzzing: $total executions in all, ${#failed[@]} of $# targets failed"
if [ ${#failed[@]} -gt 0 ]; then
        echo "failed: ${failed[*]} (reproducers in $artifacts)" >&2
        exit 1
fi
