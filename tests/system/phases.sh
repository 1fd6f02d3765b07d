# shellcheck shell=bash
# Sourced by tests/system/run: phase bookkeeping. begin NAME … pass | fail MSG; the EXIT trap prints
# the table (print_phases). A failure prints its reason at once, before anything is torn down.
phases=() phase="" phase_t0=0 phases_failed=0
declare -A phase_secs phase_status
begin() { phase=$1 phase_t0=$SECONDS; echo "== $phase"; }
record() { phases+=("$phase"); phase_secs[$phase]=$((SECONDS - phase_t0)) phase_status[$phase]=$1; [ "$1" = PASS ] || phases_failed=1; phase=""; }
pass() { record PASS; }
fail() { echo "FAIL ($phase): $*" >&2; record FAIL; exit 1; }
print_phases() {
  local p
  echo; echo "summary (logs: $1)"
  for p in "${phases[@]}"; do printf '  %-18s %5ss  %s\n' "$p" "${phase_secs[$p]}" "${phase_status[$p]}"; done
}
