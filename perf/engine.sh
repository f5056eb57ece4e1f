#!/usr/bin/env bash
# Measures the IPVS engine on ReplayIo (frames from memory, no NIC, no
# DPDK) over N_CONN established connections: Mpps of ripvs and of a bare
# rx->tx forwarder over the same frames, alternated ROUNDS times in one
# process (best of each, and their ratio); instructions per packet from
# callgrind (the difference of two runs with 200k and 100k measured
# packets after the same setup, so setup cancels); bytes per connection
# of the table. Then where the DR path's instructions go, per function.
# The sync-master modes (dr-sync, dr-sync-full) are also run against dr
# in one process (`engine MODE N vs`, VS_ROUNDS rounds, default 15).
# MODES="dr dr-sync" picks modes.
# Needs valgrind (tools/setup installs it). See perf/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p ripvs-perf >/dev/null 2>&1
cg=target/engine-cg
mkdir -p "$cg"
# A copy, so that a rebuild during the run cannot mix two versions.
cp target/release/engine "$cg/engine"
bin=$cg/engine
rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- fastpath 2>/dev/null || echo +dirty)"
N=${N:-10000000}              # measured packets per round, established modes
export N_CONN=${N_CONN:-1048576}
export N_SYN=${N_SYN:-262144} # new flows per SYN round
CG_CONN=${CG_CONN:-$N_CONN}   # connections set up under callgrind
# Transparent huge pages for the heap, so the connection table gets them
# as ConnTable::with_memory_advice means it to (madvise(MADV_HUGEPAGE));
# the worker builds its table with ConnTable::new, which fastpath cannot
# advise without unsafe, and this machine's THP mode is `madvise`.
export GLIBC_TUNABLES=${GLIBC_TUNABLES-glibc.malloc.hugetlb=1}

# "bare ripvs ratio bytes-per-connection" from one alternating run.
timing() {
  local out
  out=$("$bin" "$@" both)
  echo "$out" >&2
  printf '%s %s\n' \
    "$(echo "$out" | sed -n 's/.*best of .*: bare \([0-9.]*\) Mpps, ripvs \([0-9.]*\) Mpps, ratio \([0-9.]*\).*/\1 \2 \3/p')" \
    "$(echo "$out" | sed -n 's/.* = \([0-9.]*\) bytes per connection.*/\1/p')"
}
# Instructions of one run; its callgrind file is kept as $cg/NAME.out.
# drain_ring is the sync thread's share of dr-sync (another core's in
# ripvsd), so it is left out: collection toggles off inside it. (The
# order matters: --toggle-collect alone would collect only inside it.)
ir() {
  local name=$1
  shift
  N_CONN=$CG_CONN valgrind --tool=callgrind --toggle-collect='*drain_ring*' --collect-atstart=yes \
    --callgrind-out-file="$cg/$name.out" "$bin" "$@" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
per_packet() {
  [[ -n $1 && -n $2 ]] || {
    echo "engine.sh: a callgrind run failed" >&2
    return 1
  }
  echo $((($1 - $2) / 100000))
}

MODES=${MODES:-dr dr-sync dr-sync-full tun nat nat-out syn}
rows=()
vs=()
for mode in $MODES; do
  if [ "$mode" = syn ]; then
    read -r b r ratio bytes < <(ROUNDS=${ROUNDS:-5} timing syn "$N_SYN")
  else
    read -r b r ratio bytes < <(ROUNDS=${ROUNDS:-3} timing "$mode" "$N")
  fi
  ib=$(per_packet "$(ir "$mode-bare-200k" "$mode" 200000 bare)" "$(ir "$mode-bare-100k" "$mode" 100000 bare)")
  ir_=$(per_packet "$(ir "$mode-200k" "$mode" 200000)" "$(ir "$mode-100k" "$mode" 100000)")
  rows+=("$(printf '%-12s %10s %10s %7s %12d %12d %12d %9s' "$mode" "$b" "$r" "$ratio" "$ib" "$ir_" $((ir_ - ib)) "$bytes")")
  case $mode in
    dr) dr_ir=$ir_ ;;
    dr-sync*)
      out=$(ROUNDS=${VS_ROUNDS:-15} "$bin" "$mode" "$N" vs)
      echo "$out" >&2
      vs+=("$(echo "$out" | sed -n 's/.* vs dr best of .*: \(.*\)/\1/p')")
      vs+=("  $(echo "$out" | grep ' over .* rounds: ')")
      vs+=("  instructions per packet: $mode $ir_${dr_ir:+, dr $dr_ir ($(echo "scale=1; 100 * ($ir_ - $dr_ir) / $dr_ir" | bc) %)}")
      ;;
  esac
done

echo
echo "fastpath at $rev; N_CONN=$N_CONN (callgrind: $CG_CONN), N=$N, N_SYN=$N_SYN, GLIBC_TUNABLES=$GLIBC_TUNABLES"
printf '%-12s %10s %10s %7s %12s %12s %12s %9s\n' mode "bare Mpps" "ripvs Mpps" ratio "bare ins/p" "ripvs ins/p" "ripvs-bare" "B/conn"
printf '%s\n' "${rows[@]}"
if ((${#vs[@]})); then
  echo
  echo "sync master against dr, alternated in one process:"
  printf '%s\n' "${vs[@]}"
fi
echo
"$bin" lookup "$N"
for mode in $MODES; do
  case $mode in
    dr | dr-sync)
      echo
      echo "$mode, instructions per packet by function (perf/cgdiff.sh):"
      perf/cgdiff.sh "$cg/$mode-100k.out" "$cg/$mode-200k.out" 100000
      ;;
  esac
done
