#!/usr/bin/env bash
# Where the instructions of one packet go: the difference of two callgrind
# runs that differ only in their number of measured packets (so setup
# cancels), per compiled function, divided by the difference in packets.
# A function's count is its own code plus everything inlined into it
# (release builds inline most of the data plane), not its callees.
#
#   perf/cgdiff.sh SMALL.out LARGE.out PACKETS
set -euo pipefail
tab=$(printf '\t')

# "function<TAB>count" per function: callgrind_annotate lists code inlined
# from other files as rows of their own, summed here into their function.
rows() {
  callgrind_annotate --auto=no --threshold=100 "$1" 2>/dev/null |
    sed -nE 's/^ *([0-9,]+) \([ 0-9.]+%\) +[^:]*:(.*)$/\1\t\2/p' |
    sed -E 's/ \[[^]]*\]$//' |
    awk -F'\t' '{ gsub(",", "", $1); n[$2] += $1 } END { for (f in n) print f "\t" n[f] }' |
    sort -t "$tab" -k1,1
}

join -t "$tab" -a 2 -e 0 -o 0,1.2,2.2 <(rows "$1") <(rows "$2") |
  awk -F'\t' -v p="$3" '{ d = ($3 - $2) / p; t += d; if (d >= 0.5 || d <= -0.5) printf "%8.1f  %s\n", d, $1 } END { printf "%8.1f  total\n", t }' |
  sort -rn
