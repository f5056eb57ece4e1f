#!/usr/bin/env bash
# A backup's install rate: records per second one worker installs in its
# connection table through Ipvs::install_synced (batches of 256, a table of
# CAPACITY slots, default 1,048,576), for records of new connections and
# for updates of connections it holds; best of ROUNDS in one process. Then
# instructions per record from callgrind: the difference of two runs with
# 200k and 100k measured records after the same setup, so setup cancels.
# Needs valgrind (tools/setup installs it). See perf/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p ripvs-perf >/dev/null 2>&1
cg=target/sync-install-cg
mkdir -p "$cg"
# A copy, so that a rebuild during the run cannot mix two versions.
cp target/release/sync_install "$cg/sync_install"
bin=$cg/sync_install
rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- fastpath 2>/dev/null || echo +dirty)"
export CAPACITY=${CAPACITY:-1048576}
# The table as perf/engine.sh gives it: transparent huge pages.
export GLIBC_TUNABLES=${GLIBC_TUNABLES-glibc.malloc.hugetlb=1}

ir() {
  local name=$1
  shift
  valgrind --tool=callgrind --callgrind-out-file="$cg/$name.out" "$bin" "$@" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
per_record() {
  [[ -n $1 && -n $2 ]] || {
    echo "sync_install.sh: a callgrind run failed" >&2
    return 1
  }
  echo $((($1 - $2) / 100000))
}

rows=()
for mode in new update; do
  out=$(ROUNDS=${ROUNDS:-5} "$bin" "$mode")
  echo "$out" >&2
  best=$(echo "$out" | sed -n 's/.* best of .*: \([0-9.]*\) M records\/s (\([0-9]*\) ns.*/\1 \2/p')
  ins=$(ROUNDS=1 per_record "$(ROUNDS=1 ir "$mode-200k" "$mode" 200000)" "$(ROUNDS=1 ir "$mode-100k" "$mode" 100000)")
  rows+=("$(printf '%-8s %12s %10s %12d' "$mode" ${best% *} ${best#* } "$ins")")
done

echo
echo "fastpath at $rev; CAPACITY=$CAPACITY, GLIBC_TUNABLES=$GLIBC_TUNABLES"
printf '%-8s %12s %10s %12s\n' records "M records/s" "ns each" "instr each"
printf '%s\n' "${rows[@]}"
for mode in new update; do
  echo
  echo "$mode, instructions per record by function (perf/cgdiff.sh):"
  perf/cgdiff.sh "$cg/$mode-100k.out" "$cg/$mode-200k.out" 100000
done
