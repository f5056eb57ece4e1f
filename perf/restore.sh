#!/usr/bin/env bash
# Control-plane scale: `ripvsadm -R` of SERVICES services with REALS real
# servers each (default 10,000 x 10 = 100,000), then listing them, against
# a running ripvsd (release build, one worker polling an empty pcap port).
# Reports wall-clock times of the restore and of each listing, ripvsd's
# resident memory, and the worker's longest loop pass (the stall a packet
# could have seen) next to the same figure for a run with no restore.
# Wall-clock times on this shared 2-CPU machine are indicative; run it a
# few times. KEEP=1 leaves the scratch directory (rules, listings,
# ripvsd's log) in /tmp. Needs root (DPDK). See perf/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SERVICES=${SERVICES:-10000}
REALS=${REALS:-10}
SCHED=${SCHED:-wlc}
cargo build --release --locked -p ripvsd -p ripvsadm >/dev/null 2>&1 ||
  cargo build --release --locked -p ripvsd -p ripvsadm
bin=target/release
dir=$(mktemp -d /tmp/ripvs-restore.XXXXXX)
pid=
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [[ -n ${KEEP:-} ]] || rm -rf "$dir"
}
trap cleanup EXIT

# An empty pcap: 24-byte global header only.
printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\x01\x00\x00\x00' >"$dir/none.pcap"
cat >"$dir/ripvs.toml" <<EOF
[eal]
args = ["--no-huge", "--no-pci", "-m", "512", "--no-shconf", "--log-level=error"]
main_lcore = 0
worker_lcores = [1]
[dataplane]
max_connections = 65536
[[ports]]
name = "p0"
device = "net_pcap0,rx_pcap=$dir/none.pcap,tx_pcap=$dir/out.pcap"
mac = "02:00:00:00:00:01"
addresses = ["10.0.0.1/16"]
exception = { device = "net_pcap1,rx_pcap=$dir/none.pcap,tx_pcap=$dir/kernel.pcap" }
EOF

# Services on 10 VIPs x SERVICES/10 ports; real servers numbered across
# 10.1.0.0/16 and up, DR (any address will do: nothing is sent; DR
# forces the real server's port to the service's, as ipvsadm does).
python3 - "$SERVICES" "$REALS" "$SCHED" >"$dir/rules" <<'PY'
import sys
n, r, sched = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
out = []
k = 0
for i in range(n):
    port = 1000 + i // 10
    svc = f"-t 10.0.1.{100 + i % 10}:{port}"
    out.append(f"-A {svc} -s {sched}")
    for j in range(r):
        a = 0x0A010000 + k
        k += 1
        out.append(f"-a {svc} -r {a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}:{port} -g -w {1 + j % 3}")
print("\n".join(out))
PY

start() {
  "$bin/ripvsd" -c "$dir/ripvs.toml" --socket "$dir/sock" >"$dir/log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    grep -q '^ripvsd: control socket' "$dir/log" && return 0
    sleep 0.1
  done
  cat "$dir/log" >&2
  exit 1
}
longest= # set by stop: the longest loop pass of any worker, in us
stop() {
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
  longest=$(sed -n 's/^worker [0-9]* longest_pass_us \([0-9]*\)/\1/p' "$dir/log" | sort -n | tail -1)
}
secs() { # command...: runs it, prints its wall-clock seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  printf '%.3f\n' "$(echo "$t1 - $t0" | bc)"
}
# ripvsadm runs on the main lcore's CPU (0), as an operator's tools would
# on a director whose worker CPUs are isolated: otherwise the scheduler
# shares the worker's CPU with ripvsadm itself and the worker's longest
# pass measures that, not ripvs.
adm() { taskset -c 0 "$bin/ripvsadm" --socket "$dir/sock" "$@"; }

echo "== idle ripvsd (baseline)"
start
sleep 2
stop
idle_us=$longest

echo "== restore $SERVICES services x $REALS real servers ($SCHED)"
start
sleep 1
rss0=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
t_restore=$(secs adm -R <"$dir/rules")
rss1=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
t_list=$(secs taskset -c 0 sh -c "'$bin/ripvsadm' --socket '$dir/sock' -L -n >'$dir/list'")
t_stats=$(secs taskset -c 0 sh -c "'$bin/ripvsadm' --socket '$dir/sock' -L -n --stats >/dev/null")
t_save=$(secs taskset -c 0 sh -c "'$bin/ripvsadm' --socket '$dir/sock' -S -n >'$dir/saved'")
t_one=$(secs taskset -c 0 sh -c "'$bin/ripvsadm' --socket '$dir/sock' -A -t 10.0.2.1:80 -s rr")
t_clear=$(secs adm -C)
stop
busy_us=$longest

svc_lines=$(grep -c '^TCP' "$dir/list")
rs_lines=$(grep -c '^  -> 10\.' "$dir/list")
[[ $svc_lines -eq $SERVICES && $rs_lines -eq $((SERVICES * REALS)) ]] || {
  echo "listing has $svc_lines services and $rs_lines real servers" >&2
  exit 1
}
cmp -s <(sort "$dir/rules") <(sort "$dir/saved") || {
  echo "-S output differs from the restored rules" >&2
  exit 1
}
printf '%-44s %8s\n' \
  "ripvsadm -R ($(wc -l <"$dir/rules") lines)" "${t_restore} s" \
  "ripvsadm -L -n ($(wc -l <"$dir/list") lines)" "${t_list} s" \
  "ripvsadm -L -n --stats" "${t_stats} s" \
  "ripvsadm -S -n" "${t_save} s" \
  "ripvsadm -A (one more service)" "${t_one} s" \
  "ripvsadm -C" "${t_clear} s" \
  "ripvsd RSS before / after restore" "$((rss0 / 1024)) / $((rss1 / 1024)) MiB" \
  "worker longest loop pass, idle run" "${idle_us} us" \
  "worker longest loop pass, restore run" "${busy_us} us"
