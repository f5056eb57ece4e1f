#!/usr/bin/env python3
"""Port counters of a running DPDK program (ripvsd, dpdk-testpmd) over
time, read from its telemetry socket, for perf/daemon.sh.

  dpdk-stats.py window PREFIX PID WARM MEAS
      Waits for the program's first received packet (t0), reads every
      port's counters at t0 + WARM and at t0 + WARM + MEAS, and prints
      one line: "seconds rx tx cpu" (deltas summed over the ports; cpu:
      the seconds the forwarding lcore's thread was on a CPU), then one
      "port N rx tx" line per port.
  dpdk-stats.py pass PREFIX PID TOTAL
      Samples every 2 ms while the program reads a file once: until
      TOTAL packets have been received, or nothing more arrived for 2 s.
      Prints "rate10_90 rate_first_last received share": the receive
      rate between the samples where 10 % and 90 % of TOTAL had arrived
      (interpolated), the total over the time from the first sample
      with a packet to the first with the last, and the share of the
      time from the first packet to a second after the last that the
      forwarding thread was on a CPU.

PREFIX is the program's EAL --file-prefix; PID its process id (when it
exits the sampler gives up instead of waiting). A telemetry query costs
about 0.2 ms on the sampler's CPU and nothing on the forwarding lcore:
the counters it reads are the PMD's own. The forwarding thread is EAL's
worker lcore thread (rte-worker-N); its CPU time is the scheduler's
se.sum_exec_runtime (/proc/PID/task/TID/sched), which on a shared
machine says how much of the wall clock the forwarder actually ran. The
kernel brings that figure up to date only every few ticks (10 to 40 ms
here), so it is good to about 1 % over a second and useless over a few
milliseconds.
"""

import json
import os
import socket
import sys
import time


def fail(msg):
    print(f"dpdk-stats: {msg}", file=sys.stderr)
    sys.exit(1)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def socket_path(prefix):
    """Where EAL puts the runtime directory (eal_get_runtime_dir)."""
    if os.getuid() == 0:
        base = "/var/run"
    else:
        base = os.environ.get("XDG_RUNTIME_DIR", "/tmp")
    return os.path.join(base, "dpdk", prefix, "dpdk_telemetry.v2")


class Telemetry:
    def __init__(self, prefix, pid, timeout=120.0):
        self.pid = pid
        path = socket_path(prefix)
        end = time.monotonic() + timeout
        while True:
            if not alive(pid):
                fail(f"process {pid} exited before its telemetry socket answered")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(path)
                break
            except OSError:
                s.close()
                if time.monotonic() > end:
                    fail(f"no telemetry socket at {path}")
                time.sleep(0.002)
        self.s = s
        json.loads(s.recv(4096))
        self.ports = self.query("/ethdev/list")["/ethdev/list"]

    def query(self, cmd):
        self.s.send(cmd.encode())
        return json.loads(self.s.recv(1 << 16))

    def sample(self):
        """(time, [(ipackets, opackets) per port], forwarder's CPU
        seconds); the time is the middle of the queries."""
        t0 = time.monotonic()
        c = []
        for p in self.ports:
            # None until the port is started.
            st = self.query(f"/ethdev/stats,{p}")["/ethdev/stats"] or {}
            c.append((st.get("ipackets", 0), st.get("opackets", 0)))
        cpu = worker_cpu(self.pid)
        return (t0 + time.monotonic()) / 2, c, cpu


def worker_cpu(pid):
    """CPU seconds of the process's EAL worker lcore threads."""
    total = 0.0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            if not comm.startswith(("rte-worker-", "lcore-worker-")):
                continue
            with open(f"/proc/{pid}/task/{tid}/sched") as f:
                for line in f:
                    if line.startswith("se.sum_exec_runtime"):
                        total += float(line.split(":")[1]) / 1000
        except OSError:
            pass
    return total


def rx(sample):
    return sum(c[0] for c in sample[1])


def window(tel, pid, warm, meas):
    while True:
        s = tel.sample()
        if rx(s) > 0:
            t0 = s[0]
            break
        if not alive(pid):
            fail("process exited before receiving a packet")
        time.sleep(0.005)
    time.sleep(max(0.0, t0 + warm - time.monotonic()))
    a = tel.sample()
    time.sleep(max(0.0, t0 + warm + meas - time.monotonic()))
    b = tel.sample()
    if not alive(pid):
        fail("process exited during the measurement")
    d = [(cb[0] - ca[0], cb[1] - ca[1]) for ca, cb in zip(a[1], b[1])]
    cpu = b[2] - a[2]
    print(f"{b[0] - a[0]:.6f} {sum(x[0] for x in d)} {sum(x[1] for x in d)} {cpu:.6f}")
    for p, (r, t) in zip(tel.ports, d):
        print(f"port {p} {r} {t}")


def crossing(samples, level):
    """Interpolated time at which the received count reached `level`."""
    for (ta, ra, _), (tb, rb, _) in zip(samples, samples[1:]):
        if ra < level <= rb:
            return ta + (tb - ta) * (level - ra) / (rb - ra)
    return None


def one_pass(tel, pid, total):
    samples = []
    last_change = time.monotonic()
    start = last_change
    while True:
        t, c, cpu = tel.sample()
        r = sum(x[0] for x in c)
        if not samples or r != samples[-1][1]:
            last_change = t
        samples.append((t, r, cpu))
        if r >= total:
            break
        if r > 0 and t - last_change > 2.0:
            break
        if r == 0 and t - start > 120:
            fail("no packet in 120 s")
        if not alive(pid):
            fail("process exited during the pass")
        time.sleep(0.002)
    got = samples[-1][1]
    first = next(i for i, s in enumerate(samples) if s[1] > 0)
    if samples[first][1] > 0.1 * total:
        fail(f"first sample already had {samples[first][1]} of {total} packets")
    t10, t90 = crossing(samples, 0.1 * total), crossing(samples, 0.9 * total)
    if t10 is None or t90 is None:
        fail(f"only {got} of {total} packets arrived")
    # The forwarder polls all the time, packets or not, so its share of
    # the CPU from the first packet to a second after the last stands for
    # its share over 10-90 % (the second makes the kernel's coarse CPU
    # time good enough).
    last = next(s for s in samples if s[1] == got)
    time.sleep(1.0)
    end = tel.sample()
    share = (end[2] - samples[first][2]) / (end[0] - samples[first][0])
    print(
        f"{0.8 * total / (t90 - t10):.0f} "
        f"{got / max(last[0] - samples[first][0], 1e-9):.0f} {got} {share:.3f}"
    )


def main():
    a = sys.argv[1:]
    if len(a) == 5 and a[0] == "window":
        window(Telemetry(a[1], int(a[2])), int(a[2]), float(a[3]), float(a[4]))
    elif len(a) == 4 and a[0] == "pass":
        one_pass(Telemetry(a[1], int(a[2])), int(a[2]), int(a[3]))
    else:
        fail("usage: dpdk-stats.py window PREFIX PID WARM MEAS | pass PREFIX PID TOTAL")


if __name__ == "__main__":
    main()
