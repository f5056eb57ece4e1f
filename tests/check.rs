//! `ripvsd --check`: one clear error line with file, line, column and key,
//! and a non-zero exit, for each kind of broken config; 0 for good ones.

mod common;

use common::{ripvsd, Scratch};

const GOOD: &str = r#"[eal]
worker_lcores = [1]

[[ports]]
name = "p0"
device = "net_ring0"
addresses = ["10.0.0.1/24"]

[[services]]
protocol = "tcp"
vip = "10.0.0.100"
port = 80
"#;

/// Runs `--check` on `text`; returns (exit code, stdout, stderr).
fn check(dir: &Scratch, name: &str, text: &str) -> (i32, String, String) {
    let path = dir.path(name);
    std::fs::write(&path, text).unwrap();
    let out = ripvsd()
        .arg("-c")
        .arg(&path)
        .arg("--check")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn broken(name: &str, text: &str) -> String {
    let dir = Scratch::new(&format!("check-{name}"));
    let (code, out, err) = check(&dir, name, text);
    assert_eq!(code, 1, "stdout: {out} stderr: {err}");
    assert_eq!(out, "");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let prefix = format!("{}:", dir.path(name).display());
    err.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("names the file: {err}"))
        .trim_end()
        .to_string()
}

#[test]
fn good_config_and_shipped_configs_pass() {
    let dir = Scratch::new("check-good");
    let (code, out, err) = check(&dir, "good.toml", GOOD);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        format!(
            "{}: configuration is valid\n",
            dir.path("good.toml").display()
        )
    );
    for shipped in ["conf/ripvs.toml", "conf/production.example.toml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(shipped);
        let out = ripvsd()
            .arg("-c")
            .arg(&path)
            .arg("--check")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{shipped}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // No -c: the embedded default.
    let out = ripvsd().arg("--check").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<embedded conf/ripvs.toml>: configuration is valid\n"
    );
}

#[test]
fn unknown_key() {
    let text = GOOD.replace("addresses =", "colour = \"blue\"\naddresses =");
    assert_eq!(
        broken("unknown.toml", &text),
        "7:1: key `ports[0].colour`: unknown key `colour`, expected one of `name`, `device`, `mtu`, `mac`, `addresses`, `exception`"
    );
}

#[test]
fn bad_address() {
    let text = GOOD.replace("10.0.0.1/24", "10.0.0.300/24");
    assert_eq!(
        broken("badaddr.toml", &text),
        "7:14: key `ports[0].addresses[0]`: invalid IPv4 prefix \"10.0.0.300/24\" (expected ADDRESS/LEN)"
    );
    let text = GOOD.replace("vip = \"10.0.0.100\"", "vip = \"10.0.0\"");
    assert_eq!(
        broken("badvip.toml", &text),
        "11:7: key `services[0].vip`: invalid IPv4 address \"10.0.0\""
    );
}

#[test]
fn missing_port() {
    let text = "[eal]\nworker_lcores = [1]\n\n[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.100\"\nport = 80\n";
    assert_eq!(
        broken("noport.toml", text),
        "1:1: key `ports`: at least one [[ports]] is required"
    );
    let text = GOOD.replace("device = \"net_ring0\"\n", "");
    assert_eq!(
        broken("nodevice.toml", &text),
        "4:1: key `ports[0].device`: missing required key"
    );
}

#[test]
fn duplicate_vip() {
    let text =
        format!("{GOOD}\n[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.100\"\nport = 80\n");
    assert_eq!(
        broken("dupvip.toml", &text),
        "16:7: key `services[1].vip`: duplicate service tcp 10.0.0.100:80 (also services[0])"
    );
}

#[test]
fn bad_health_checks() {
    let text = format!("{GOOD}health = {{ checker = \"ping\" }}\n");
    assert_eq!(
        broken("checker.toml", &text),
        "13:22: key `services[0].health.checker`: unknown checker \"ping\" (expected \"tcp\", \"http\", \"https\", \"udp\", \"exec\" or \"none\")"
    );
    let text = format!("{GOOD}[services.health]\nchecker = \"tcp\"\ninterval = 0\n");
    assert_eq!(
        broken("interval.toml", &text),
        "15:12: key `services[0].health.interval`: 0 is out of range (expected 0.001..=86400 seconds)"
    );
    let text = format!("{GOOD}[services.health]\nchecker = \"exec\"\n");
    assert_eq!(
        broken("exec.toml", &text),
        "14:11: key `services[0].health.command`: the exec checker needs `command` ([PROGRAM, ARGS...]; the real server's address and port are appended)"
    );
}

#[test]
fn unreadable_file_and_bad_arguments() {
    let out = ripvsd()
        .args(["-c", "/nonexistent/ripvs.toml", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "/nonexistent/ripvs.toml:1:1: cannot read: No such file or directory (os error 2)\n"
    );
    let out = ripvsd().arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("ripvsd: unknown argument `--frobnicate`\nusage: ripvsd"));
}

/// `GOOD` with `n` services (10.x.y.z:80), optionally `extra` after them.
fn many_services(n: u32, head: &str, extra: &str) -> String {
    let mut t = format!("{head}{}", GOOD.split("[[services]]").next().unwrap());
    for i in 0..n {
        let vip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        t.push_str(&format!(
            "[[services]]\nprotocol = \"tcp\"\nvip = \"{vip}\"\nport = 80\n"
        ));
    }
    t + extra
}

fn timed_check(dir: &Scratch, name: &str, text: &str) -> (std::time::Duration, i32, String) {
    let t0 = std::time::Instant::now();
    let (code, _, err) = check(dir, name, text);
    (t0.elapsed(), code, err)
}

#[test]
fn large_configs_check_in_linear_time() {
    let dir = Scratch::new("check-large");
    let head = "[dataplane]\nmax_services = 262144\n\n";
    let (small, code, err) = timed_check(&dir, "small.toml", &many_services(10_000, head, ""));
    assert_eq!((code, err.as_str()), (0, ""));
    let (large, code, err) = timed_check(&dir, "large.toml", &many_services(80_000, head, ""));
    assert_eq!((code, err.as_str()), (0, ""));
    // Eight times the services: a quadratic check takes 64 times as long
    // (it did: 0.19 s and 8.9 s), a linear one about 8 times plus the
    // start-up both share.
    assert!(
        large < small * 20,
        "10,000 services: {small:?}, 80,000: {large:?}"
    );
    assert!(large.as_secs() < 15, "80,000 services: {large:?}");

    // The duplicate at the very end, where the quadratic check took
    // longest, is found and named with its line.
    let dup = "[[services]]\nprotocol = \"tcp\"\nvip = \"10.0.0.0\"\nport = 80\n";
    let text = many_services(80_000, head, dup);
    let line = text.lines().count() - 1;
    let (t, code, err) = timed_check(&dir, "dup.toml", &text);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "{}:{line}:7: key `services[80000].vip`: duplicate service tcp 10.0.0.0:80 (also services[0])\n",
            dir.path("dup.toml").display()
        )
    );
    assert!(
        t < small * 20,
        "10,000 services: {small:?}, duplicate: {t:?}"
    );
}

#[test]
fn the_service_limit_is_checked_by_name() {
    // The default: the 16,385th service is one too many.
    let text = many_services(16_385, "", "");
    let line = text.lines().count() - 3;
    assert_eq!(
        broken("limit.toml", &text),
        format!("{line}:1: key `services[16384]`: too many services: 16385 are configured, dataplane.max_services is 16384")
    );
    let dir = Scratch::new("check-limit-ok");
    let (code, _, err) = check(&dir, "ok.toml", &many_services(16_384, "", ""));
    assert_eq!((code, err.as_str()), (0, ""));
    // A set limit.
    let text = many_services(3, "[dataplane]\nmax_services = 2\n", "");
    assert_eq!(
        broken("limit2.toml", &text),
        "19:1: key `services[2]`: too many services: 3 are configured, dataplane.max_services is 2"
    );
    let text = many_services(1, "[dataplane]\nmax_services = 262145\n", "");
    assert_eq!(
        broken("limit3.toml", &text),
        "2:16: key `dataplane.max_services`: 262145 is out of range (expected 1..=262144)"
    );
}

#[test]
fn over_long_values_are_shown_shortened() {
    let dir = Scratch::new("check-long");
    let long = "x".repeat(8 << 20);
    for (name, text, start, end) in [
        (
            "sched.toml",
            format!("{GOOD}scheduler = \"{long}\"\n"),
            "13:13: key `services[0].scheduler`: unknown scheduler \"xxx",
            "xxx\" (expected one of rr, wrr, lc, wlc, sed, nq, lblc, lblcr, dh, sh, mh, fo, ovf, twos)",
        ),
        (
            "type.toml",
            GOOD.replace("port = 80", &format!("port = \"{long}\"")),
            "12:8: key `services[0].port`: invalid type: string \"xxx",
            "xxx\", expected an integer",
        ),
        (
            "key.toml",
            format!("{GOOD}{long} = 1\n"),
            "13:1: key `services[0].xxx",
            "`sorry_server`, `health`, `real_servers`",
        ),
    ] {
        let (code, out, err) = check(&dir, name, &text);
        assert_eq!((code, out.as_str()), (1, ""), "{name}");
        let err = err
            .strip_prefix(&format!("{}:", dir.path(name).display()))
            .unwrap_or_else(|| panic!("{name}: names the file"));
        assert!(err.len() < 2 * 1024 + 200, "{name}: {} bytes", err.len());
        assert!(err.starts_with(start), "{name}: {err}");
        assert!(err.contains(" bytes ...]"), "{name}: {err}");
        assert!(err.ends_with('\n') && err.lines().count() == 1, "{name}: {err}");
        assert!(err.trim_end().ends_with(end), "{name}: {err}");
    }
}

#[test]
fn non_utf8_is_reported_at_the_bad_byte() {
    let dir = Scratch::new("check-utf8");
    // Latin-1 é: a lone 0xe9 on line 5, after `name = "p`.
    let mut raw = GOOD.replace("\"p0\"", "\"p\u{1}0\"").into_bytes();
    let at = raw.iter().position(|&b| b == 1).unwrap();
    raw[at] = 0xe9;
    let path = dir.path("latin1.toml");
    std::fs::write(&path, &raw).unwrap();
    let out = ripvsd()
        .arg("-c")
        .arg(&path)
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "{}:5:10: key `ports[0].name`: invalid UTF-8 (byte 0xe9): a config file must be UTF-8\n",
            path.display()
        )
    );
}
