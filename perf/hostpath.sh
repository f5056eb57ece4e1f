#!/usr/bin/env bash
# Measures the director's own paths on ReplayIo (no NIC): Mpps of ripvs and
# of a bare rx->tx forwarder over the same frames, in one run, and their
# ratio; then instructions per packet from callgrind (the difference of two
# runs, so start-up cost cancels). Needs valgrind (tools/setup installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p ripvs-perf >/dev/null 2>&1
bin=target/release/hostpath
N=${N:-20000000}

mpps() { "$bin" "$@" | sed -n 's/.* = \([0-9.]*\) Mpps.*/\1/p'; }
ir() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$@" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }

printf '%-7s %12s %12s %7s %14s %14s %14s\n' mix "bare Mpps" "ripvs Mpps" ratio "bare instr/p" "ripvs instr/p" "ripvs - bare"
for mix in arp echo kernel drop; do
  b=$(mpps "$mix" "$N" bare); r=$(mpps "$mix" "$N")
  ib=$(( ($(ir "$mix" 200000 bare) - $(ir "$mix" 100000 bare)) / 100000 ))
  ir_=$(( ($(ir "$mix" 200000) - $(ir "$mix" 100000)) / 100000 ))
  printf '%-7s %12s %12s %7.2f %14d %14d %14d\n' "$mix" "$b" "$r" "$(echo "$r / $b" | bc -l)" "$ib" "$ir_" $((ir_ - ib))
done
