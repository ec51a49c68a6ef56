#!/usr/bin/env bash
# The chaos suite N times in a row under stress-ng background load (issue 9, "Done when").
#
#   tests/chaos/under_load.sh [OUT_DIR]          (or: make chaos-load)
#
# Environment (defaults in brackets):
#   RUNS      runs in a row that must pass [5]
#   STRESS    stress-ng load arguments ["--cpu 2 --cpu-load 70"]
#   RUN_LIMIT seconds one run may take before it counts as failed [900]
#
# Starts stress-ng (bounded by --timeout RUNS*RUN_LIMIT) and an uptime sampler, both stopped by
# their pid on exit; runs `pytest tests/chaos` RUNS times, stopping at the first failure. Each
# run keeps its output (run-K.log), its test directories with every process log (run-K/) and the
# load averages seen (uptime.log: one line every 15 s). summary.txt: one line per run.
set -uo pipefail
cd "$(dirname "$0")/../.."

RUNS=${RUNS:-5}
STRESS=${STRESS:---cpu 2 --cpu-load 70}
RUN_LIMIT=${RUN_LIMIT:-900}
OUT=${1:-${TMPDIR:-/tmp}/chaos-load-$(date -u +%Y%m%dT%H%M%SZ)}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"

# shellcheck disable=SC2086 - STRESS is a list of arguments
stress-ng $STRESS --timeout $((RUNS * RUN_LIMIT))s --quiet >"$OUT/stress-ng.log" 2>&1 &
stress_pid=$!
(while :; do echo "$(date -u +%T) $(uptime)"; sleep 15; done) >"$OUT/uptime.log" 2>&1 &
sampler_pid=$!
stop() {
    kill "$sampler_pid" 2>/dev/null
    kill -INT "$stress_pid" 2>/dev/null  # stress-ng stops its own workers on SIGINT
    wait "$stress_pid" 2>/dev/null
}
trap stop EXIT
trap 'exit 130' INT TERM

{
    echo "commit: $(git rev-parse HEAD) ($(git log -1 --format=%s | cut -c1-80))"
    echo "load:   stress-ng $STRESS (pid $stress_pid)"
    echo "start:  $(date -u +%FT%TZ) $(uptime)"
} | tee "$OUT/summary.txt"

passed=0
for run in $(seq 1 "$RUNS"); do
    before=$(uptime | sed 's/.*load average: //')
    start=$(date +%s)
    timeout --signal=INT --kill-after=60 "$RUN_LIMIT" \
        "$PY" -m pytest -q tests/chaos -p no:randomly -p no:cacheprovider --durations=0 \
        --basetemp="$OUT/run-$run" >"$OUT/run-$run.log" 2>&1
    rc=$?
    seconds=$(($(date +%s) - start))
    after=$(uptime | sed 's/.*load average: //')
    line="run $run: rc=$rc ${seconds}s load before [$before] after [$after] :: $(tail -1 "$OUT/run-$run.log")"
    echo "$line" | tee -a "$OUT/summary.txt"
    if [ "$rc" -ne 0 ]; then
        echo "FAILED at run $run after $passed in a row; output in $OUT/run-$run.log" | tee -a "$OUT/summary.txt"
        exit 1
    fi
    passed=$((passed + 1))
done
echo "PASSED $passed in a row; $(date -u +%FT%TZ) $(uptime)" | tee -a "$OUT/summary.txt"
