#!/usr/bin/env bash
# GPU readiness check: every CUDA path of prunetui measured once, side by side, in about 5 minutes.
#
#   bash benchmarks/gpu_check.sh                                     # on a machine with a CUDA device
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_SMALL=1 bash benchmarks/gpu_check.sh   # dry run: every section, tiny, on CPU
#
# Run from the repository root; prunetui need not be installed (PYTHONPATH=$PWD; tomli-w comes from
# .whl/ when it is missing). Writes the results table to $OUT/gpu_results.md (./gpu_results.md without
# $OUT), rewritten after every section, prints it at the end, and the full logs to $OUT/gpu_log.txt.
# Each section runs alone under a timeout: a failure is a FAILED row with its last lines, and the next
# section runs. GPU_CHECK_BUDGET (seconds, default 470) bounds the whole run: sections that would start
# past it are skipped. GPU_CHECK_SECTIONS="scan accel" runs only those. Sections: benchmarks/gpu_check.py.

set -u
cd "$(dirname "$0")/.." || exit 1

PY=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
BUDGET=${GPU_CHECK_BUDGET:-470}

if [ "$DEVICE" = cuda ]; then
  if ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu_check: no CUDA device here (nvidia-smi finds none); nothing to measure."
    exit 0
  fi
  if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
    echo "gpu_check: torch sees no CUDA device here (torch.cuda.is_available() is False); nothing to measure."
    exit 0
  fi
fi

OUT_DIR=${OUT:-$PWD}
mkdir -p "$OUT_DIR"
RESULTS=$OUT_DIR/gpu_results.md
LOG=$OUT_DIR/gpu_log.txt
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
ROWS=$WORK/rows.md
: >"$ROWS"
: >"$LOG"
export GPU_CHECK_ROWS=$ROWS GPU_CHECK_DEVICE=$DEVICE PYTHONUNBUFFERED=1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

# tomli-w (imported by prunetui.core.profile) from the wheels in .whl/ when this Python lacks it.
if ! "$PY" -c 'import tomli_w' >/dev/null 2>&1; then
  SITE=$WORK/site
  if "$PY" -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl >>"$LOG" 2>&1; then
    export PYTHONPATH=$SITE:$PYTHONPATH
  else  # no pip: a pure-Python wheel imports straight from its zip
    for wheel in .whl/*.whl; do export PYTHONPATH=$PWD/$wheel:$PYTHONPATH; done
  fi
  echo "tomli_w missing: using .whl/ (PYTHONPATH=$PYTHONPATH)" | tee -a "$LOG"
fi

write_results() {
  {
    echo "## GPU check ($(date -u '+%Y-%m-%d %H:%M UTC'), device $DEVICE${GPU_CHECK_SMALL:+, small sizes})"
    echo
    echo "| section | measure | result | notes |"
    echo "|---|---|---|---|"
    cat "$ROWS"
  } >"$RESULTS"
}

# run_section NAME SECONDS: benchmarks/gpu_check.py NAME under a timeout within what is left of the budget.
run_section() {
  local name=$1 limit=$2 left started rc tail_text
  left=$((BUDGET - SECONDS))
  if [ "$left" -lt "$limit" ]; then limit=$left; fi
  if [ "$limit" -lt 20 ]; then
    echo "| $name | (whole section) | SKIPPED: the ${BUDGET} s budget is spent | |" >>"$ROWS"
    echo "[$name] skipped: budget spent"
    write_results
    return
  fi
  printf '\n===== %s (timeout %s s) =====\n' "$name" "$limit" >>"$LOG"
  started=$SECONDS
  timeout -k 10 "$limit" "$PY" benchmarks/gpu_check.py "$name" >"$WORK/$name.log" 2>&1
  rc=$?
  cat "$WORK/$name.log" >>"$LOG"
  if [ "$rc" -eq 0 ]; then
    echo "[$name] ok in $((SECONDS - started)) s"
  else
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
      tail_text="timed out after ${limit} s; last: $(grep -v '^|' "$WORK/$name.log" | grep . | tail -n 2 | tr '\n' ' ')"
    else
      tail_text="exit $rc: $(grep -v '^|' "$WORK/$name.log" | grep . | tail -n 3 | tr '\n' ' ')"
    fi
    tail_text=$(printf '%s' "$tail_text" | sed 's/|/\\|/g' | cut -c1-400)
    echo "| $name | (whole section) | FAILED | $tail_text |" >>"$ROWS"
    echo "[$name] FAILED ($tail_text)"
  fi
  echo "rc=$rc, $((SECONDS - started)) s" >>"$LOG"
  write_results
}

echo "gpu_check on $DEVICE: results to $RESULTS, logs to $LOG (budget ${BUDGET} s)"
write_results
for section in ${GPU_CHECK_SECTIONS:-env tests scan finetune accel data latency memory nccl speedup}; do
  case $section in
    env | latency) run_section "$section" 60 ;;
    speedup) run_section "$section" 180 ;;
    tests | data | memory | nccl) run_section "$section" 120 ;;
    finetune | accel) run_section "$section" 150 ;;
    scan) run_section "$section" 240 ;;
    *) echo "gpu_check: unknown section '$section'" ;;
  esac
done
echo
cat "$RESULTS"
echo
echo "gpu_check: done in $SECONDS s; full logs in $LOG"
rm -rf "$WORK"
exit 0
