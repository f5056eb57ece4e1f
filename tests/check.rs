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
