//! ripvsadm against a running ripvsd: the listings, counters, connection
//! table, timeouts, save/restore and error messages an operator sees, as
//! exact text. The daemon runs on pcap ports and is fed a known set of
//! packets, so every counter in the listings is known in advance.

mod common;

use common::frames::{eth, ipv4, tcp_syn, udp};
use common::{ripvsadm, write_pcap, Daemon, Scratch};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

const DIRECTOR: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const GATEWAY: [u8; 6] = [0x02, 0, 0, 0, 0, 0xfe];

/// Runs `ripvsadm args` (stdin `input`) and returns (exit code, stdout, stderr).
fn adm(socket: &Path, args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = ripvsadm(socket)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ripvsadm");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `ripvsadm args`, which must succeed; its stdout.
fn ok(socket: &Path, args: &[&str]) -> String {
    let (code, out, err) = adm(socket, args, "");
    assert_eq!(code, 0, "ripvsadm {args:?}: {err}");
    assert_eq!(err, "", "ripvsadm {args:?}");
    out
}

/// Services etc., after `common::pcap_port`.
const CONFIG: &str = r#"
[[neighbours]]
address = "10.0.0.11"
mac = "02:00:00:00:00:11"
port = "p0"
[[neighbours]]
address = "10.0.0.12"
mac = "02:00:00:00:00:12"
port = "p0"

[[fwmarks]]
mark = 7
[[fwmarks.match]]
protocol = "tcp"
destination = "10.0.0.200/32"
ports = "80-81"

[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
scheduler = "rr"
[[services.real_servers]]
address = "10.0.0.11"
weight = 1
[[services.real_servers]]
address = "10.0.0.12"
weight = 3

[[services]]
protocol = "udp"
vip = "10.0.0.100"
port = 53
scheduler = "wlc"
persistent = 300
[[services.real_servers]]
address = "10.0.0.12"
"#;

/// Three SYNs to the TCP service (rr: two to .11, one to .12) and two
/// datagrams from one client to the persistent UDP service.
fn traffic() -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for (client, sport) in [
        ("192.0.2.1", 40001),
        ("192.0.2.2", 40002),
        ("192.0.2.3", 40003),
    ] {
        frames.push(eth(
            DIRECTOR,
            GATEWAY,
            0x0800,
            &tcp_syn(client, "10.0.0.100", sport, 80),
        ));
    }
    for sport in [5001, 5002] {
        frames.push(eth(
            DIRECTOR,
            GATEWAY,
            0x0800,
            &ipv4(
                "192.0.2.9",
                "10.0.0.100",
                17,
                64,
                &udp("192.0.2.9", "10.0.0.100", sport, 53, b"query", true),
            ),
        ));
    }
    frames
}

fn daemon(name: &str) -> (Scratch, Daemon) {
    daemon_with(name, "")
}

/// [`daemon`] with `extra` appended to its config.
fn daemon_with(name: &str, extra: &str) -> (Scratch, Daemon) {
    let dir = Scratch::new(name);
    write_pcap(&dir.path("in.pcap"), &traffic());
    write_pcap(&dir.path("none.pcap"), &[]);
    let cfg = (common::pcap_port("in.pcap") + CONFIG + extra)
        .replace("DIR", &dir.0.display().to_string());
    std::fs::write(dir.path("ripvs.toml"), cfg).unwrap();
    let d = Daemon::start(&dir.path("ripvs.toml"));
    // net_pcap replays its file as soon as the worker polls, which on a
    // loaded machine can be a while after the control socket is up (the
    // worker builds its connection table first): wait until the five
    // packets are counted, rather than a fixed time.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, out, _) = adm(&d.socket, &["-L", "-n", "--stats"], "");
        let in_pkts: u64 = out
            .lines()
            .filter(|l| l.starts_with("TCP ") || l.starts_with("UDP "))
            .filter_map(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
            .sum();
        if in_pkts >= 5 || std::time::Instant::now() > end {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (dir, d)
}

/// `-L -n -c` with each expiry column (MM:SS, counting down as the test
/// runs) replaced by `mm:ss` once checked to lie within `range` seconds of
/// the entry's timeout.
fn masked_expiry(listing: &str) -> String {
    listing
        .lines()
        .map(|l| {
            let Some(expire) = l.get(4..9).filter(|e| e.as_bytes().get(2) == Some(&b':')) else {
                return l.to_string();
            };
            let secs =
                expire[..2].parse::<u32>().unwrap() * 60 + expire[3..].parse::<u32>().unwrap();
            let timeout = if l.starts_with("TCP") { 60 } else { 300 };
            assert!(
                secs <= timeout && secs + 30 >= timeout,
                "expiry {expire} of a {timeout} s entry, made moments ago: {l}"
            );
            format!("{}mm:ss{}", &l[..4], &l[9..])
        })
        .map(|l| l + "\n")
        .collect()
}

#[test]
fn listings_of_a_running_director_are_exact() {
    let (_dir, d) = daemon("adm-listings");
    let s = d.socket.clone();
    let started = std::time::Instant::now();
    // Trailing spaces are ipvsadm's: the InActConn column is padded too.
    assert_eq!(
        ok(&s, &["-L", "-n"]),
        "IP Virtual Server version 1.2.1 (size=1048576)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:80 rr
  -> 10.0.0.11:80                 Route   1      1          0         
  -> 10.0.0.12:80                 Route   3      2          0         
UDP  10.0.0.100:53 wlc persistent 300
  -> 10.0.0.12:53                 Route   1      0          2         
"
    );
    // A SYN is 40 bytes of IP; a 5-byte datagram 33.
    let stats = "IP Virtual Server version 1.2.1 (size=1048576)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.100:80                       3        3        0      120        0
  -> 10.0.0.11:80                        1        1        0       40        0
  -> 10.0.0.12:80                        2        2        0       80        0
UDP  10.0.0.100:53                       2        2        0       66        0
  -> 10.0.0.12:53                        2        2        0       66        0
";
    assert_eq!(ok(&s, &["-L", "-n", "--stats"]), stats);
    assert_eq!(ok(&s, &["-L", "-n", "--stats", "--exact"]), stats);
    assert_eq!(
        ok(&s, &["-L", "-n", "-t", "10.0.0.100:80"]),
        "Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.100:80 rr
  -> 10.0.0.11:80                 Route   1      1          0         
  -> 10.0.0.12:80                 Route   3      2          0         
"
    );
    // rr ignores weights and starts at the most recently added server, as
    // the kernel's list_add does; the template (client port 0) shows with
    // the persistence timeout.
    assert_eq!(
        masked_expiry(&ok(&s, &["-L", "-n", "-c"])),
        "IPVS connection entries
pro expire state       source             virtual            destination
TCP mm:ss  SYN_RECV    192.0.2.1:40001    10.0.0.100:80      10.0.0.12:80
TCP mm:ss  SYN_RECV    192.0.2.2:40002    10.0.0.100:80      10.0.0.11:80
TCP mm:ss  SYN_RECV    192.0.2.3:40003    10.0.0.100:80      10.0.0.12:80
UDP mm:ss  UDP         192.0.2.9:5001     10.0.0.100:53      10.0.0.12:53
UDP mm:ss  UDP         192.0.2.9:5002     10.0.0.100:53      10.0.0.12:53
UDP mm:ss  NONE        192.0.2.9:0        10.0.0.100:53      10.0.0.12:53
"
    );
    assert_eq!(
        ok(&s, &["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    ok(&s, &["--set", "3600", "0", "60"]);
    assert_eq!(
        ok(&s, &["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 3600 120 60\n"
    );

    // The estimator samples every 2 s from the control loop's start; all
    // traffic came before the first sample. One sample: InBPS = (bytes in
    // 2 s << 4) / 4, read out as (avg + 15) >> 5: 120 B → 15, 40 → 5,
    // 80 → 10, 66 → 8; conns and packets stay below 1/s. A second sample
    // (if this machine is slow) decays each by a quarter.
    std::thread::sleep(std::time::Duration::from_millis(2500).saturating_sub(started.elapsed()));
    let rate = |tcp: u32, a: u32, b: u32, udp: u32| {
        format!(
            "IP Virtual Server version 1.2.1 (size=1048576)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  10.0.0.100:80                       0        0        0 {tcp:>8}        0
  -> 10.0.0.11:80                        0        0        0 {a:>8}        0
  -> 10.0.0.12:80                        0        0        0 {b:>8}        0
UDP  10.0.0.100:53                       0        0        0 {udp:>8}        0
  -> 10.0.0.12:53                        0        0        0 {udp:>8}        0
"
        )
    };
    let listed = ok(&s, &["-L", "-n", "--rate"]);
    // Second sample: avg 480 → 360 → (360+15)>>5 = 11; 160 → 120 → 4;
    // 320 → 240 → 8; 264 → 198 → 6.
    assert!(
        listed == rate(15, 5, 10, 8) || listed == rate(11, 4, 8, 6),
        "{listed}"
    );

    // -Z of one service zeroes it and its servers only.
    ok(&s, &["-Z", "-t", "10.0.0.100:80"]);
    assert_eq!(
        ok(&s, &["-L", "-n", "--stats"]),
        "IP Virtual Server version 1.2.1 (size=1048576)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.100:80                       0        0        0        0        0
  -> 10.0.0.11:80                        0        0        0        0        0
  -> 10.0.0.12:80                        0        0        0        0        0
UDP  10.0.0.100:53                       2        2        0       66        0
  -> 10.0.0.12:53                        2        2        0       66        0
"
    );
    d.stop();
}

/// Every scheduler, every forwarding method, persistence with a netmask,
/// scheduler flags, thresholds, a port-0 service and a fwmark service.
const EVERY_KIND: &str = "\
-A -t 10.0.0.100:1 -s rr
-a -t 10.0.0.100:1 -r 10.0.0.11:1 -g -w 1
-a -t 10.0.0.100:1 -r 10.0.0.12:8001 -m -w 2
-A -t 10.0.0.100:2 -s wrr
-a -t 10.0.0.100:2 -r 10.0.0.11:2 -i -w 5
-A -t 10.0.0.100:3 -s lc
-A -t 10.0.0.100:4 -s wlc -p 600 -M 255.255.255.0
-a -t 10.0.0.100:4 -r 10.0.0.13:4 -g -w 0 -x 100 -y 50
-A -t 10.0.0.100:5 -s sed
-A -t 10.0.0.100:6 -s nq
-A -t 10.0.0.100:7 -s lblc
-A -t 10.0.0.100:8 -s lblcr
-A -t 10.0.0.100:9 -s dh
-A -t 10.0.0.100:10 -s sh -b sh-fallback,sh-port
-A -t 10.0.0.100:11 -s mh -b mh-port
-A -t 10.0.0.100:12 -s fo
-A -t 10.0.0.100:13 -s ovf
-A -t 10.0.0.100:14 -s twos
-A -t 10.0.0.100:0 -s rr -p 300
-a -t 10.0.0.100:0 -r 10.0.0.14:0 -g -w 1
-A -u 10.0.0.100:53 -s rr -o
-a -u 10.0.0.100:53 -r 10.0.0.15:5353 -m -w 1
-A -f 7 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port
-a -f 7 -r 10.0.0.21:0 -i -w 100
";

#[test]
fn save_and_restore_reproduce_the_table() {
    let (_dir, d) = daemon("adm-restore");
    let s = d.socket.clone();
    ok(&s, &["-C"]);
    let (code, out, err) = adm(&s, &["-R"], EVERY_KIND);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let saved = ok(&s, &["-S", "-n"]);
    // Sorted as ipvsadm sorts (protocol, address, port; marks last),
    // thresholds not saved (ipvsadm does not), tunnels with their type.
    assert_eq!(
        saved,
        "\
-A -t 10.0.0.100:0 -s rr -p 300
-a -t 10.0.0.100:0 -r 10.0.0.14:0 -g -w 1
-A -t 10.0.0.100:1 -s rr
-a -t 10.0.0.100:1 -r 10.0.0.11:1 -g -w 1
-a -t 10.0.0.100:1 -r 10.0.0.12:8001 -m -w 2
-A -t 10.0.0.100:2 -s wrr
-a -t 10.0.0.100:2 -r 10.0.0.11:2 -i -w 5 --tun-type ipip
-A -t 10.0.0.100:3 -s lc
-A -t 10.0.0.100:4 -s wlc -p 600 -M 255.255.255.0
-a -t 10.0.0.100:4 -r 10.0.0.13:4 -g -w 0
-A -t 10.0.0.100:5 -s sed
-A -t 10.0.0.100:6 -s nq
-A -t 10.0.0.100:7 -s lblc
-A -t 10.0.0.100:8 -s lblcr
-A -t 10.0.0.100:9 -s dh
-A -t 10.0.0.100:10 -s sh -b sh-fallback,sh-port
-A -t 10.0.0.100:11 -s mh -b mh-port
-A -t 10.0.0.100:12 -s fo
-A -t 10.0.0.100:13 -s ovf
-A -t 10.0.0.100:14 -s twos
-A -u 10.0.0.100:53 -s rr -o
-a -u 10.0.0.100:53 -r 10.0.0.15:5353 -m -w 1
-A -f 7 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port
-a -f 7 -r 10.0.0.21:0 -i -w 100 --tun-type ipip
"
    );
    let listed = ok(&s, &["-L", "-n"]);
    ok(&s, &["-C"]);
    assert_eq!(
        ok(&s, &["-L", "-n"]),
        "IP Virtual Server version 1.2.1 (size=1048576)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
"
    );
    let (code, _, err) = adm(&s, &["-R"], &saved);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(ok(&s, &["-S", "-n"]), saved);
    assert_eq!(ok(&s, &["-L", "-n"]), listed);
    d.stop();
}

/// A restore past `[dataplane] max_services` changes nothing, and says
/// which line stopped it; what fits goes in whole.
#[test]
fn a_restore_past_the_service_limit_is_all_or_nothing() {
    let (_dir, d) = daemon_with("adm-limit", "\n[dataplane]\nmax_services = 5\n");
    let s = d.socket.clone();
    let before = ok(&s, &["-S", "-n"]);
    assert_eq!(before.lines().count(), 5, "{before}");
    // Two services configured: four more are one too many, and the
    // `-C` before them does not happen either.
    let mut input = String::from("-C\n\n");
    for i in 1..=6 {
        input.push_str(&format!("-A -t 10.0.1.{i}:80 -s rr\n"));
        input.push_str(&format!("-a -t 10.0.1.{i}:80 -r 10.0.0.11:80\n"));
    }
    let (code, out, err) = adm(&s, &["-R"], &input);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            255,
            "",
            "Memory allocation problem\n\
             Restore stopped at line 13: more than dataplane.max_services = 5 services: \
             no command of the batch was applied (lines 1-14)\n"
        )
    );
    assert_eq!(ok(&s, &["-S", "-n"]), before, "nothing changed");
    // A plain -A at the limit: ipvsadm's words, exit 255.
    let mut fill = String::new();
    for i in 1..=3 {
        fill.push_str(&format!("-A -t 10.0.1.{i}:80 -s rr\n"));
    }
    let (code, _, err) = adm(&s, &["-R"], &fill);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(ok(&s, &["-S", "-n"]).lines().count(), 8);
    let (code, out, err) = adm(&s, &["-A", "-t", "10.0.1.9:80"], "");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (255, "", "Memory allocation problem\n")
    );
    // Five fit after a clear, in one restore.
    let mut five = String::from("-C\n");
    for i in 1..=5 {
        five.push_str(&format!("-A -t 10.0.2.{i}:80 -s rr\n"));
    }
    let (code, _, err) = adm(&s, &["-R"], &five);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(ok(&s, &["-S", "-n"]).lines().count(), 5);
    d.stop();
}

/// The operator mistakes an ipvsadm user makes, against the real daemon:
/// the kernel's words and exit codes, and nothing changed by a refusal.
#[test]
fn refusals_carry_ipvsadm_messages_and_exit_codes() {
    let (_dir, d) = daemon("adm-errors");
    let s = d.socket.clone();
    let before = ok(&s, &["-S", "-n"]);
    for (args, code, message) in [
        (
            &["-A", "-t", "10.0.0.100:80", "-s", "wlc"][..],
            255,
            "Service already exists\n",
        ),
        (
            &["-E", "-t", "10.0.0.100:81", "-s", "wlc"],
            255,
            "No such service\n",
        ),
        (&["-D", "-t", "10.0.0.100:81"], 255, "No such service\n"),
        (&["-Z", "-t", "10.0.0.100:81"], 255, "No such service\n"),
        (
            &["-a", "-t", "10.0.0.100:81", "-r", "10.0.0.11"],
            255,
            "Service not defined\n",
        ),
        (
            &["-a", "-t", "10.0.0.100:80", "-r", "10.0.0.11"],
            255,
            "Destination already exists\n",
        ),
        (
            &["-e", "-t", "10.0.0.100:80", "-r", "10.0.0.99"],
            255,
            "No such destination\n",
        ),
        (
            &["-d", "-t", "10.0.0.100:80", "-r", "10.0.0.99"],
            255,
            "No such destination\n",
        ),
        (
            &["-A", "-t", "10.0.0.100:81", "-s", "nosuch"],
            255,
            "Scheduler or persistence engine not found\n",
        ),
        (
            &["-a", "-t", "10.0.0.100:80", "-r", "10.0.0.13", "-y", "5"],
            255,
            "Numerical result out of range\n",
        ),
        (&["-L", "-n", "-t", "10.0.0.100:81"], 1, "No such service\n"),
        (
            &["-A", "-t", "10.0.0.100:80", "-L"],
            2,
            "multiple commands specified\n",
        ),
        (
            &[
                "-a",
                "-t",
                "10.0.0.100:80",
                "-r",
                "10.0.0.13",
                "-w",
                "65536",
            ],
            2,
            "illegal weight specified\n",
        ),
        (
            &["-A", "-t", "10.0.0.300:80"],
            2,
            "illegal virtual server address[:port] specified\n",
        ),
    ] {
        let (got, out, err) = adm(&s, args, "");
        assert_eq!(
            (got, out.as_str(), err.as_str()),
            (code, "", message),
            "{args:?}"
        );
    }
    // A fwmark with no match rule in the config cannot be served: the
    // refusal names it (ripvs defines marks by its own match rules).
    let (got, _, err) = adm(&s, &["-A", "-f", "9", "-s", "rr"], "");
    assert_eq!(got, 255);
    assert!(
        err.contains("fwmark 9") && err.contains("match rule"),
        "{err}"
    );
    ok(&s, &["-A", "-f", "7", "-s", "rr"]);
    ok(&s, &["-D", "-f", "7"]);
    assert_eq!(ok(&s, &["-S", "-n"]), before, "a refusal changed nothing");
    d.stop();
    // With no daemon to talk to, ipvsadm's words for a missing IPVS.
    let (got, _, err) = adm(&s, &["-L", "-n"], "");
    assert_eq!(got, 2);
    assert!(err.starts_with("Can't initialize ipvs: "), "{err}");
}

/// A rule file from the field (the ipvsadm HOWTO's NAT example), fed to
/// `-R` as operators' scripts do, with `ipvsadm` words and blank lines.
#[test]
fn a_kernel_rule_file_loads_and_lists_as_ipvsadm_would() {
    let (_dir, d) = daemon("adm-field");
    let s = d.socket.clone();
    ok(&s, &["-C"]);
    let rules = "ipvsadm -A -t 210.77.132.8:80 -s rr\n\
                 ipvsadm -a -t 210.77.132.8:80 -r 10.0.0.11:80 -m -w 1\n\
                 \n\
                 ipvsadm -a -t 210.77.132.8:80 -r 10.0.0.12:80 -m -w 1\n";
    let (code, out, err) = adm(&s, &["-R"], rules);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    assert_eq!(
        ok(&s, &["-L", "-n"]),
        "IP Virtual Server version 1.2.1 (size=1048576)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  210.77.132.8:80 rr
  -> 10.0.0.11:80                 Masq    1      0          0         
  -> 10.0.0.12:80                 Masq    1      0          0         
"
    );
    assert_eq!(
        ok(&s, &["-S", "-n"]),
        "-A -t 210.77.132.8:80 -s rr
-a -t 210.77.132.8:80 -r 10.0.0.11:80 -m -w 1
-a -t 210.77.132.8:80 -r 10.0.0.12:80 -m -w 1
"
    );
    d.stop();
}
