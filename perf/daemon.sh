#!/usr/bin/env bash
# The whole daemon against a bare DPDK forwarder: ripvsd (release build)
# and dpdk-testpmd (forward modes io and macswap) on the same net_pcap
# devices replaying the same 64-byte frames from memory (infinite_rx; no
# tx stream, so transmitted frames are counted and freed), one forwarding
# core each, alternating in one run. Modes: DR, TUN, NAT in, NAT out and
# the no-service drop, at each flow count of FLOWS; then new connections:
# SYN_FLOWS distinct SYNs read once from a file, against testpmd io on
# the same file. Rates come from the port counters (DPDK telemetry) taken
# between two points, so start-up and the first pass over the flows (when
# ripvsd creates the connections) are left out; each rate is also given
# per second of CPU time the forwarding thread got, which on a shared
# machine says how much of the wall clock it actually ran. Two tables at
# the end: median (min–max) over the rounds. See perf/README.md.
#
# Env: ROUNDS (3) alternations; WARM (2) and MEAS (5) seconds: the window
# starts WARM s after the first packet and lasts MEAS s; FLOWS ("1024
# 1048576"); MODES ("dr tun nat nat-out drop"); SYN_FLOWS (4194304, 0 to
# skip); SYN_ROUNDS (ROUNDS); BEFORE (the path of another ripvsd
# binary, e.g. a build of the previous commit: run as program `before`
# in the same rounds, right after `ripvsd`, so before and after figures
# come from the same minutes of the same machine); PROGS ("io macswap
# ripvsd", plus "before" with BEFORE) picks the programs; DIR (scratch directory for the pcap files,
# configs and logs; default a new one under /tmp, removed at the end
# unless KEEP=1; about 800 MB of files at the defaults). Needs
# dpdk-testpmd (dpdk-dev; tools/setup installs it), python3, CPUs 0 and 1,
# and up to 5 GiB of memory per program (1,048,576 flows, no hugepages).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
WARM=${WARM:-2}
MEAS=${MEAS:-5}
FLOWS=${FLOWS:-"1024 1048576"}
MODES=${MODES:-"dr tun nat nat-out drop"}
SYN_FLOWS=${SYN_FLOWS:-4194304}
SYN_ROUNDS=${SYN_ROUNDS:-$ROUNDS}
# Both programs: main lcore 0 on CPU 0, the forwarding lcore 1 on CPU 1.
# Each is started under `taskset -c 0,1`, never under a narrower mask:
# ripvsd maps lcore N to CPU N modulo the number of CPUs it may use, so
# a mask of one CPU would put both its lcores on that CPU.
CPUS=0,1

command -v dpdk-testpmd >/dev/null || {
  echo "perf/daemon.sh: dpdk-testpmd missing (package dpdk-dev; run tools/setup)" >&2
  exit 1
}
for c in 0 1; do
  [ -d "/sys/devices/system/cpu/cpu$c" ] || {
    echo "perf/daemon.sh: needs CPUs 0 and 1" >&2
    exit 1
  }
done

cargo build --release --locked -p ripvsd -p ripvsadm >/dev/null 2>&1
cargo build --release --locked -p ripvs-perf --bin frames >/dev/null 2>&1
rev="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- . ':!perf' 2>/dev/null || echo +dirty)"

if [ -n "${DIR:-}" ]; then
  mkdir -p "$DIR"
else
  DIR=$(mktemp -d /tmp/ripvs-daemon-bench.XXXXXX)
fi
DIR=$(cd "$DIR" && pwd)
cleanup() {
  if [ -n "${child:-}" ]; then kill -TERM "$child" 2>/dev/null || true; fi
  # The last run's EAL runtime directory, if a failure left it.
  if [ -n "${prefix:-}" ]; then
    rm -rf "/var/run/dpdk/$prefix" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/$prefix"
  fi
  if [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$DIR"
  else
    echo "perf/daemon.sh: files kept in $DIR" >&2
  fi
}
trap cleanup EXIT
# Copies, so that a rebuild during the run cannot mix two versions.
cp target/release/ripvsd target/release/ripvsadm target/release/frames "$DIR/"
PROGS=${PROGS:-io macswap ripvsd}
if [ -n "${BEFORE:-}" ]; then
  cp "$BEFORE" "$DIR/ripvsd-before"
  PROGS="$PROGS before"
fi
# Whether a program is a ripvsd build.
is_rip() { [ "$1" = ripvsd ] || [ "$1" = before ]; }
stats_py=$PWD/perf/dpdk-stats.py
results=$DIR/results
: >"$results"

# The pcap files: per flow count, one per mode (nat-out: the NAT real
# server's replies; the nat file, read once on the client port, first
# creates their connections), an empty one for the idle port, and the
# SYN file.
"$DIR/frames" dr 0 "$DIR/empty.pcap"
for f in $FLOWS; do
  for m in dr tun nat nat-out drop; do
    "$DIR/frames" "$m" "$f" "$DIR/$m-$f.pcap"
  done
done
if [ "$SYN_FLOWS" != 0 ]; then
  "$DIR/frames" syn "$SYN_FLOWS" "$DIR/syn-$SYN_FLOWS.pcap"
fi

# The two devices of a mode: net_pcap0 on ripvsd's client port,
# net_pcap1 on its server port; the measured one loops over its file.
vdevs() {
  local mode=$1 f=$2
  case $mode in
    nat-out)
      echo "net_pcap0,rx_pcap=$DIR/nat-$f.pcap" \
        "net_pcap1,rx_pcap=$DIR/nat-out-$f.pcap,infinite_rx=1"
      ;;
    syn) echo "net_pcap0,rx_pcap=$DIR/syn-$f.pcap" "net_pcap1,rx_pcap=$DIR/empty.pcap" ;;
    *)
      echo "net_pcap0,rx_pcap=$DIR/$mode-$f.pcap,infinite_rx=1" \
        "net_pcap1,rx_pcap=$DIR/empty.pcap"
      ;;
  esac
}
# Buffers: an infinite_rx device holds its whole file in mbufs of the
# pool, so both programs get FLOWS plus 32767 (one pool, 250 cached per
# lcore), and memory (no hugepages) to match: without hugepages a pool
# of N 2,176-byte mbufs needs about 4.5 KiB per mbuf of EAL memory
# (-m 4096 is too little for 1,081,343; 5120 is enough).
mbufs() { if [ "$1" = syn ]; then echo 32767; else echo $(($2 + 32767)); fi; }
mem_mb() { echo $(($(mbufs "$1" "$2") * 4608 / 1048576 + 512)); }

# ripvsd's config: the in-memory engine benchmark's topology
# (perf/src/engine.rs) on two ports, UDP services for the established
# modes and a TCP one for SYNs, static neighbours, no exception path.
config() {
  local mode=$1 f=$2 p0 p1 maxc=1179648
  read -r p0 p1 < <(vdevs "$mode" "$f")
  [ "$mode" = syn ] && maxc=$((f + f / 8))
  cat <<EOF
[eal]
args = ["--no-huge", "--no-pci", "-m", "$(mem_mb "$mode" "$f")", "--no-shconf", "--log-level=error"]
main_lcore = 0
worker_lcores = [1]

[dataplane]
mbufs_per_socket = $(mbufs "$mode" "$f")
mbuf_cache = 250
rx_descriptors = 1024
tx_descriptors = 1024
max_connections = $maxc

[[ports]]
name = "client"
device = "$p0"
mac = "02:00:00:00:00:01"
addresses = ["10.0.0.1/24"]
exception = { enabled = false }

[[ports]]
name = "server"
device = "$p1"
mac = "02:00:00:00:01:01"
addresses = ["10.1.0.1/24"]
exception = { enabled = false }

[[routes]]
prefix = "10.200.0.0/16"
via = "10.0.0.2"
port = "client"

[[neighbours]]
address = "10.0.0.2"
mac = "02:c0:00:00:00:02"
port = "client"
[[neighbours]]
address = "10.1.0.11"
mac = "02:5e:00:00:00:0b"
port = "server"
[[neighbours]]
address = "10.1.0.12"
mac = "02:5e:00:00:00:0c"
port = "server"
[[neighbours]]
address = "10.1.0.13"
mac = "02:5e:00:00:00:0d"
port = "server"

[[services]]
protocol = "udp"
vip = "10.0.0.100"
port = 80
scheduler = "wlc"
real_servers = [{ address = "10.1.0.11" }, { address = "10.1.0.12" }, { address = "10.1.0.13" }]

[[services]]
protocol = "udp"
vip = "10.0.0.100"
port = 8080
scheduler = "rr"
real_servers = [{ address = "10.1.0.12", port = 80, method = "nat" }]

[[services]]
protocol = "udp"
vip = "10.0.0.100"
port = 443
scheduler = "rr"
real_servers = [{ address = "10.1.0.13", method = "tun" }]

[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
scheduler = "wlc"
real_servers = [{ address = "10.1.0.11" }, { address = "10.1.0.12" }, { address = "10.1.0.13" }]
EOF
}

# The service a mode's packets belong to, and the number of connections
# ripvsd must hold after the run.
service_of() {
  case $1 in
    dr) echo "-u 10.0.0.100:80" ;;
    tun) echo "-u 10.0.0.100:443" ;;
    nat | nat-out) echo "-u 10.0.0.100:8080" ;;
    syn) echo "-t 10.0.0.100:80" ;;
  esac
}

run_id=0
# run PROG MODE FLOWS: one run of ripvsd, io or macswap; appends to
# $results "FLOWS MODE PROG rx tx LOAD rx/cpu share" (window: Mpps
# received and sent, the 1-minute load average, Mpps per second of the
# forwarding thread's CPU time, and the share of the window it ran) or
# "FLOWS syn PROG rate10_90 rate_first_last LOAD rate/cpu share" (Mpps).
run() {
  local prog=$1 mode=$2 f=$3 log out rc=0 v0 v1 secs rx tx cpu load
  run_id=$((run_id + 1))
  prefix=ripvs-dbench-$$-$run_id
  log=$DIR/$prog-$mode-$f-$run_id.log
  read -r v0 v1 < <(vdevs "$mode" "$f")
  if is_rip "$prog"; then
    local bin=$DIR/ripvsd
    [ "$prog" = before ] && bin=$DIR/ripvsd-before
    config "$mode" "$f" >"$DIR/ripvsd.toml"
    taskset -c "$CPUS" "$bin" -c "$DIR/ripvsd.toml" --socket "$DIR/ripvsd.sock" \
      -- --file-prefix="$prefix" >"$log" 2>&1 &
  else
    taskset -c "$CPUS" dpdk-testpmd --no-huge --no-pci -m "$(mem_mb "$mode" "$f")" --no-shconf \
      --log-level=error --lcores=0@0,1@1 --main-lcore=0 --file-prefix="$prefix" \
      --vdev="$v0" --vdev="$v1" -- --forward-mode="$prog" --nb-cores=1 \
      --port-topology=loop --total-num-mbufs="$(mbufs "$mode" "$f")" --mbcache=250 \
      --rxd=1024 --txd=1024 --burst=32 --stats-period=1 </dev/null >"$log" 2>&1 &
  fi
  child=$!
  if [ "$mode" = syn ]; then
    out=$(python3 "$stats_py" pass "$prefix" "$child" "$f") || rc=$?
  else
    out=$(python3 "$stats_py" window "$prefix" "$child" "$WARM" "$MEAS") || rc=$?
  fi
  load=$(cut -d' ' -f1 /proc/loadavg)
  # Where the lcores ran: every thread's CPU mask, once per program.
  if [ "$run_id" -le 3 ] && [ -d "/proc/$child/task" ]; then
    for t in /proc/"$child"/task/*; do
      echo "$prog thread $(cat "$t/comm"): CPUs $(sed -n 's/Cpus_allowed_list:\s*//p' "$t/status")"
    done >&2
  fi
  local conns=
  if is_rip "$prog" && [ "$rc" = 0 ] && [ "$mode" != drop ]; then
    # shellcheck disable=SC2046 # the service is two words
    conns=$(RIPVS_SOCKET=$DIR/ripvsd.sock "$DIR/ripvsadm" -L -n --stats --exact \
      $(service_of "$mode") | awk 'NR == 3 { print $3 }')
  fi
  kill -TERM "$child" 2>/dev/null || true
  wait "$child" || rc=$?
  child=
  # testpmd stops cleanly on SIGTERM ("Bye...") and then re-raises it.
  if ! is_rip "$prog" && [ "$rc" = 143 ] && grep -q '^Bye' "$log"; then
    rc=0
  fi
  if [ "$rc" != 0 ]; then
    echo "perf/daemon.sh: $prog $mode $f failed (exit $rc); log $log:" >&2
    tail -20 "$log" >&2
    KEEP=1
    exit 1
  fi
  # Over the whole run ripvsd dropped nothing, or (drop mode) only what
  # no service takes. (NAT out: replies may come before their
  # connections; the window's check above covers that mode.)
  if is_rip "$prog" && [ "$mode" != nat-out ]; then
    local drops expect=0
    drops=$(sed -n 's/^drops total //p' "$log")
    [ "$mode" = drop ] && expect=$(sed -n 's/^drop no_service //p' "$log")
    if [ -z "$drops" ] || [ "$drops" != "${expect:-0}" ]; then
      echo "perf/daemon.sh: ripvsd $mode $f dropped what it should not; log $log:" >&2
      grep '^drop' "$log" >&2 || true
      KEEP=1
      exit 1
    fi
  fi
  if [ -n "$conns" ] && [ "$conns" != "$f" ]; then
    echo "perf/daemon.sh: ripvsd $mode $f: $conns connections, expected $f" >&2
    KEEP=1
    exit 1
  fi
  local line
  if [ "$mode" = syn ]; then
    line=$(echo "$out" | awk -v l="$load" '{ printf "%.4f %.4f %s %.4f %.3f", $1 / 1e6, $2 / 1e6, l, $1 / $4 / 1e6, $4 }')
  else
    # Everything received in the window must have been forwarded (or,
    # in the drop mode, dropped). The ports are read one after the other,
    # and on a loaded machine the telemetry thread can be held up between
    # them: 1 % of slack.
    read -r secs rx tx cpu < <(echo "$out" | head -1)
    local want=$rx
    [ "$mode" = drop ] && is_rip "$prog" && want=0
    if [ $((tx > want ? tx - want : want - tx)) -gt $((rx / 100 + 64)) ]; then
      echo "perf/daemon.sh: $prog $mode $f: received $rx, sent $tx in the window" >&2
      echo "$out" >&2
      KEEP=1
      exit 1
    fi
    line=$(awk -v s="$secs" -v r="$rx" -v t="$tx" -v c="$cpu" -v l="$load" \
      'BEGIN { printf "%.4f %.4f %s %.4f %.3f", r / s / 1e6, t / s / 1e6, l, r / c / 1e6, c / s }')
  fi
  rm -rf "/var/run/dpdk/$prefix" "${XDG_RUNTIME_DIR:-/tmp}/dpdk/$prefix"
  echo "$f $mode $prog $line" | tee -a "$results" >&2
}

# This script, the sampler and ripvsadm stay on CPU 0 (the main lcores'),
# off the forwarding CPU; each program is started with its own mask.
taskset -c -p 0 $$ >/dev/null
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
echo "perf/daemon.sh: ripvsd at $rev, ROUNDS=$ROUNDS WARM=$WARM MEAS=$MEAS, load $load_start" >&2
for _ in $(seq "$ROUNDS"); do
  for f in $FLOWS; do
    for m in $MODES; do
      for p in $PROGS; do
        run "$p" "$m" "$f"
      done
    done
  done
done
if [ "$SYN_FLOWS" != 0 ]; then
  for _ in $(seq "$SYN_ROUNDS"); do
    for p in $PROGS; do
      [ "$p" = macswap ] && continue
      run "$p" syn "$SYN_FLOWS"
    done
  done
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# The tables: each program's Mpps over the rounds, and ripvsd's ratio to
# testpmd io in the same round, as median (min–max); by the wall clock,
# then per second of CPU time the forwarding thread got.
summary() {
  awk -v col="$1" '
    function add(k, v) { vals[k] = (k in vals) ? vals[k] " " v : v }
    # "median (min–max)" of a list of numbers, with `fmt` for each.
    function summary(k, fmt,   a, n, i, j, t, med) {
      if (!(k in vals)) return ""
      n = split(vals[k], a, " ")
      for (i = 2; i <= n; i++)
        for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      med = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      if (n == 1) return sprintf(fmt, med)
      return sprintf(fmt " (" fmt "–" fmt ")", med, a[1], a[n])
    }
    {
      key = $1 " " $2
      if (!(key in seen)) { seen[key] = 1; order[n++] = key }
      add(key " " $3, $col)
      add(key " " $3 " share", $8)
      if ($3 == "io") io[key] = $col
      if ($3 == "ripvsd") add(key " ratio", $col / io[key])
      if ($3 == "before") { add(key " bratio", $col / io[key]); before = 1 }
    }
    END {
      for (i = 0; i < n; i++) {
        k = order[i]; split(k, p, " ")
        mode = p[2] == "syn" ? "new connections (SYN, read once)" : p[2]
        printf "| %s | %s | %s | %s | %s | %s |", p[1], mode, summary(k " io", "%.2f"),
          summary(k " macswap", "%.2f"), summary(k " ripvsd", "%.2f"), summary(k " ratio", "%.3f")
        if (before)
          printf " %s | %s |", summary(k " before", "%.2f"), summary(k " bratio", "%.3f")
        if (col == 7)
          printf " %s | %s |", summary(k " io share", "%.2f"), summary(k " ripvsd share", "%.2f")
        printf "\n"
      }
    }' "$results"
}
echo
echo "ripvsd at $rev; ROUNDS=$ROUNDS, window ${MEAS} s after ${WARM} s; load average at the start $load_start, at the end $load_end"
echo "(1-minute load average at the end of each run: $(awk '{ print $6 }' "$results" | sort -n | sed -n '1p;$p' | paste -sd- -))"
echo
echo "By the wall clock:"
echo
if [ -n "${BEFORE:-}" ]; then
  echo "| flows | mode | testpmd io Mpps | testpmd macswap Mpps | ripvsd Mpps | ripvsd / io | before Mpps | before / io |"
  echo "|---|---|---|---|---|---|---|---|"
else
  echo "| flows | mode | testpmd io Mpps | testpmd macswap Mpps | ripvsd Mpps | ripvsd / io |"
  echo "|---|---|---|---|---|---|"
fi
summary 4
echo
echo "Per second of the forwarding thread's CPU time, and the share of the wall clock it ran:"
echo
if [ -n "${BEFORE:-}" ]; then
  echo "| flows | mode | testpmd io | testpmd macswap | ripvsd | ripvsd / io | before | before / io | io CPU share | ripvsd CPU share |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
else
  echo "| flows | mode | testpmd io | testpmd macswap | ripvsd | ripvsd / io | io CPU share | ripvsd CPU share |"
  echo "|---|---|---|---|---|---|---|---|"
fi
summary 7
