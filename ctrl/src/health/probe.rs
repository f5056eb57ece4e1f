//! One check of one real server, as a non-blocking state machine.
//!
//! A probe never waits: [`Probe::poll`] looks at its socket or child
//! process once and says whether the check is decided. The checker thread
//! polls hundreds of them in turn, so a silent server costs one socket and
//! a few system calls per pass, never a blocked thread. The deadline is
//! the checker's business ([`Probe::expire`]); a probe only knows how to
//! word what it was waiting for.
//!
//! Checks go through the kernel's network stack, from `source` and through
//! `interface` when the config names them (the director's exception tap or
//! a management interface): ripvsd's data plane does not originate traffic.

use conf::{Check, Health, HttpCheck};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What an HTTP check reads of an answer before it gives up looking for
/// the expected text: health pages are small.
pub const HTTP_READ_LIMIT: usize = 64 * 1024;

/// Linux's errno for a non-blocking connect under way (`ErrorKind::InProgress`
/// is not stable yet).
const EINPROGRESS: i32 = 115;

/// Largest UDP reply looked at.
const UDP_READ_LIMIT: usize = 64 * 1024;

/// What is checked: a real server's address and port, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: IpAddr,
    /// The real server's port (given to exec commands); `health.port`, if
    /// set, is the one connected to.
    pub port: u16,
    pub health: Health,
}

impl Target {
    fn sockaddr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.health.port.unwrap_or(self.port))
    }
}

/// A decided check: `Ok` is up, `Err` says why it is down.
pub type Verdict = Result<(), String>;

/// An I/O error as a health log line words it: `connection refused`, not
/// `Connection refused (os error 111)`.
pub fn reason(e: &io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn secs(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

/// A socket bound as the check's settings say, not yet connected.
fn socket(t: &Target, ty: Type, proto: Protocol) -> Result<Socket, String> {
    let sa = t.sockaddr();
    let s = Socket::new(Domain::for_address(sa), ty, Some(proto))
        .map_err(|e| format!("socket: {}", reason(&e)))?;
    s.set_nonblocking(true)
        .map_err(|e| format!("socket: {}", reason(&e)))?;
    if let Some(dev) = &t.health.interface {
        s.bind_device(Some(dev.as_bytes()))
            .map_err(|e| format!("interface {dev}: {}", reason(&e)))?;
    }
    if let Some(src) = t.health.source {
        s.bind(&SockAddr::from(SocketAddr::new(src, 0)))
            .map_err(|e| format!("source {src}: {}", reason(&e)))?;
    }
    Ok(s)
}

/// A TCP connection on its way up.
struct Connecting {
    sock: Socket,
    done: bool,
}

impl Connecting {
    fn start(t: &Target) -> Result<Connecting, String> {
        let sock = socket(t, Type::STREAM, Protocol::TCP)?;
        match sock.connect(&SockAddr::from(t.sockaddr())) {
            Ok(()) => Ok(Connecting { sock, done: true }),
            Err(e) if e.raw_os_error() == Some(EINPROGRESS) => Ok(Connecting { sock, done: false }),
            Err(e) => Err(format!("connect: {}", reason(&e))),
        }
    }

    /// `Some(Ok)` once connected, `Some(Err)` once refused (or worse).
    fn poll(&mut self) -> Option<Result<(), String>> {
        if self.done || self.sock.peer_addr().is_ok() {
            self.done = true;
            return Some(Ok(()));
        }
        // Asked second: a failure between the two calls is still seen.
        match self.sock.take_error() {
            Ok(Some(e)) | Err(e) => Some(Err(format!("connect: {}", reason(&e)))),
            Ok(None) => None,
        }
    }
}

#[derive(Clone, Copy)]
enum HttpStage {
    Connecting,
    Sending { sent: usize },
    Receiving,
}

struct Http {
    conn: Connecting,
    /// What the request and answer go through once connected.
    wire: Option<Wire>,
    /// https: the name to send as SNI (`None`: the address, no SNI).
    tls: Option<ServerName<'static>>,
    stage: HttpStage,
    request: Vec<u8>,
    want: HttpCheck,
    answer: Vec<u8>,
}

impl Http {
    fn request(t: &Target, h: &HttpCheck) -> Vec<u8> {
        let sa = t.sockaddr();
        let host = match &h.host {
            Some(h) => h.clone(),
            None if sa.port() == if h.tls { 443 } else { 80 } => sa.ip().to_string(),
            None => sa.to_string(),
        };
        format!(
            "GET {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: ripvsd-health\r\nConnection: close\r\n\r\n",
            h.path
        )
        .into_bytes()
    }

    fn poll(&mut self) -> Option<Verdict> {
        loop {
            match self.stage {
                HttpStage::Connecting => {
                    if let Err(e) = self.conn.poll()? {
                        return Some(Err(e));
                    }
                    match Wire::new(&self.conn.sock, self.tls.take()) {
                        Ok(w) => self.wire = Some(w),
                        Err(e) => return Some(Err(e)),
                    }
                    self.stage = HttpStage::Sending { sent: 0 };
                }
                HttpStage::Sending { sent } => {
                    match self.wire.as_mut()?.write(&self.request[sent..]) {
                        Ok(n) if sent + n == self.request.len() => {
                            self.stage = HttpStage::Receiving
                        }
                        Ok(n) => self.stage = HttpStage::Sending { sent: sent + n },
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Some(Err(self.io_failure("write", &e))),
                    }
                }
                HttpStage::Receiving => {
                    let mut buf = [0u8; 4096];
                    let tls = matches!(self.wire, Some(Wire::Tls(_)));
                    match self.wire.as_mut()?.read(&mut buf) {
                        Ok(0) => return Some(self.judge(true).unwrap_or(Ok(()))),
                        // Servers often close without TLS's close_notify;
                        // for a health check the answer is all there is.
                        Err(e) if tls && e.kind() == io::ErrorKind::UnexpectedEof => {
                            return Some(self.judge(true).unwrap_or(Ok(())))
                        }
                        Ok(n) => {
                            let room = HTTP_READ_LIMIT - self.answer.len();
                            self.answer.extend_from_slice(&buf[..n.min(room)]);
                            if let Some(v) = self.judge(false) {
                                return Some(v);
                            }
                            if self.answer.len() == HTTP_READ_LIMIT {
                                return Some(Err(format!(
                                    "http: no \"{}\" in the first {HTTP_READ_LIMIT} bytes",
                                    self.want.expect.as_deref().unwrap_or_default()
                                )));
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Some(Err(self.io_failure("read", &e))),
                    }
                }
            }
        }
    }

    /// Decides on what has arrived, if it can; `eof`: nothing more will.
    fn judge(&self, eof: bool) -> Option<Verdict> {
        let a = &self.answer;
        let Some(line_end) = a.windows(2).position(|w| w == b"\r\n") else {
            return eof.then(|| {
                Err(if a.is_empty() {
                    "http: connection closed without a response".to_string()
                } else {
                    "http: malformed status line".to_string()
                })
            });
        };
        let line = String::from_utf8_lossy(&a[..line_end]);
        let mut words = line.split(' ');
        let status = match (words.next(), words.next().map(str::parse::<u16>)) {
            (Some(v), Some(Ok(code))) if v.starts_with("HTTP/") => code,
            _ => {
                return Some(Err(format!(
                    "http: malformed status line \"{}\"",
                    line.chars().take(60).collect::<String>()
                )))
            }
        };
        let (lo, hi) = self.want.status;
        if !(lo..=hi).contains(&status) {
            let range = if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            };
            return Some(Err(format!("http: status {status} (expected {range})")));
        }
        let Some(expect) = &self.want.expect else {
            return Some(Ok(()));
        };
        let body_at = a.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
        let found =
            body_at.is_some_and(|b| a[b..].windows(expect.len()).any(|w| w == expect.as_bytes()));
        if found {
            Some(Ok(()))
        } else if eof {
            Some(Err(format!("http: body does not contain \"{expect}\"")))
        } else {
            None
        }
    }

    /// `read: connection reset by peer`, or `tls: ...` for a TLS failure
    /// (rustls reports those as invalid data).
    fn io_failure(&self, op: &str, e: &io::Error) -> String {
        match (&self.wire, e.kind()) {
            (Some(Wire::Tls(_)), io::ErrorKind::InvalidData) => format!("tls: {}", reason(e)),
            _ => format!("{op}: {}", reason(e)),
        }
    }

    fn waiting_for(&self) -> &'static str {
        match self.stage {
            HttpStage::Connecting => "connecting",
            HttpStage::Sending { .. }
                if self
                    .wire
                    .as_ref()
                    .is_some_and(|w| matches!(w, Wire::Tls(t) if t.conn.is_handshaking())) =>
            {
                "in the TLS handshake"
            }
            HttpStage::Sending { .. } => "sending the request",
            HttpStage::Receiving if self.answer.is_empty() => "waiting for the response",
            HttpStage::Receiving => "reading the response",
        }
    }
}

struct Udp {
    sock: UdpSocket,
    expect: Option<String>,
    buf: Vec<u8>,
}

impl Udp {
    fn start(t: &Target, payload: &str, expect: &Option<String>) -> Result<Udp, String> {
        let s = socket(t, Type::DGRAM, Protocol::UDP)?;
        s.connect(&SockAddr::from(t.sockaddr()))
            .map_err(|e| format!("connect: {}", reason(&e)))?;
        let sock: UdpSocket = s.into();
        sock.send(payload.as_bytes())
            .map_err(|e| format!("send: {}", reason(&e)))?;
        Ok(Udp {
            sock,
            expect: expect.clone(),
            buf: vec![0; UDP_READ_LIMIT],
        })
    }

    fn poll(&mut self) -> Option<Verdict> {
        let buf = &mut self.buf;
        loop {
            return match self.sock.recv(buf) {
                Ok(n) => Some(match &self.expect {
                    Some(e) if !buf[..n].windows(e.len()).any(|w| w == e.as_bytes()) => {
                        Err(format!("udp: reply does not contain \"{e}\""))
                    }
                    _ => Ok(()),
                }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP port unreachable comes back as ECONNREFUSED.
                Err(e) => Some(Err(format!("udp: {}", reason(&e)))),
            };
        }
    }
}

/// The connection an HTTP check talks over.
enum Wire {
    Plain(Socket),
    Tls(Box<StreamOwned<ClientConnection, Socket>>),
}

impl Wire {
    /// Over a connected socket (a second handle on it: the first stays
    /// with the connect stage).
    fn new(sock: &Socket, tls: Option<ServerName<'static>>) -> Result<Wire, String> {
        let sock = sock
            .try_clone()
            .map_err(|e| format!("socket: {}", reason(&e)))?;
        let Some(name) = tls else {
            return Ok(Wire::Plain(sock));
        };
        let conn = ClientConnection::new(tls_config()?, name).map_err(|e| format!("tls: {e}"))?;
        Ok(Wire::Tls(Box::new(StreamOwned::new(conn, sock))))
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.read(buf),
            Wire::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Wire::Plain(s) => s.write(buf),
            Wire::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Wire::Plain(s) => s.flush(),
            Wire::Tls(t) => t.flush(),
        }
    }
}

/// SNI: the configured Host if it is a DNS name, else none (the address).
fn server_name(t: &Target, h: &HttpCheck) -> ServerName<'static> {
    h.host
        .as_deref()
        .and_then(|host| ServerName::try_from(host.to_string()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(t.addr.into()))
}

/// One client configuration for every https check.
fn tls_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("tls: {e}"))?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// Accepts any certificate, as ldirectord's and keepalived's https checks
/// do by default: a health check asks whether the server answers, and a
/// real server's certificate is usually for the VIP's name, often
/// self-signed behind the director. The handshake's signatures are still
/// checked, so the peer holds the key of the certificate it shows.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A check in progress.
pub struct Probe {
    kind: Kind,
    timeout: Duration,
}

enum Kind {
    Tcp(Connecting),
    Http(Box<Http>),
    Udp(Udp),
    Exec { child: Child, program: String },
}

impl Probe {
    /// Starts a check of `t`. An error is a check decided at once (no
    /// route, no such source address, no such program...).
    pub fn start(t: &Target) -> Result<Probe, String> {
        let kind = match &t.health.check {
            Check::Tcp => Kind::Tcp(Connecting::start(t)?),
            Check::Http(h) => Kind::Http(Box::new(Http {
                tls: h.tls.then(|| server_name(t, h)),
                wire: None,
                conn: Connecting::start(t)?,
                stage: HttpStage::Connecting,
                request: Http::request(t, h),
                want: h.clone(),
                answer: Vec::new(),
            })),
            Check::Udp { payload, expect } => Kind::Udp(Udp::start(t, payload, expect)?),
            Check::Exec { command } => {
                let program = command[0].clone();
                let child = Command::new(&program)
                    .args(&command[1..])
                    .arg(t.addr.to_string())
                    .arg(t.port.to_string())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    // Its own process group, so a timeout kills whatever
                    // it started too.
                    .process_group(0)
                    .spawn()
                    .map_err(|e| format!("exec: cannot run {program}: {}", reason(&e)))?;
                Kind::Exec { child, program }
            }
        };
        Ok(Probe {
            kind,
            timeout: t.health.timeout,
        })
    }

    /// Looks once; `Some` when the check is decided.
    pub fn poll(&mut self) -> Option<Verdict> {
        match &mut self.kind {
            Kind::Tcp(c) => c.poll(),
            Kind::Http(h) => h.poll(),
            Kind::Udp(u) => u.poll(),
            Kind::Exec { child, program } => match child.try_wait() {
                Ok(None) => None,
                Ok(Some(st)) if st.success() => Some(Ok(())),
                Ok(Some(st)) => Some(Err(match (st.code(), st.signal_number()) {
                    (Some(c), _) => format!("exec: {program} exited with status {c}"),
                    (None, Some(s)) => format!("exec: {program} killed by signal {s}"),
                    (None, None) => format!("exec: {program} failed"),
                })),
                Err(e) => Some(Err(format!("exec: {program}: {}", reason(&e)))),
            },
        }
    }

    /// The deadline passed: the verdict, after killing a command still
    /// running. Returns the processes to reap, so the caller never waits
    /// for them here.
    pub fn expire(self) -> (String, Vec<Child>) {
        let t = secs(self.timeout);
        match self.kind {
            Kind::Tcp(_) => (format!("timeout after {t} s connecting"), Vec::new()),
            Kind::Http(h) => (
                format!("timeout after {t} s {}", h.waiting_for()),
                Vec::new(),
            ),
            Kind::Udp(_) => (
                format!("timeout after {t} s waiting for a reply"),
                Vec::new(),
            ),
            Kind::Exec { mut child, program } => {
                let mut reap = Vec::new();
                // The group first (std only signals the child itself;
                // kill(1) keeps this free of `unsafe`), then the child in
                // case kill(1) could not run. Already gone is fine.
                if let Ok(k) = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                {
                    reap.push(k);
                }
                let _ = child.kill();
                reap.push(child);
                (
                    format!("exec: {program} still running after {t} s: killed"),
                    reap,
                )
            }
        }
    }
}

/// Unix exit signal, without the `ExitStatusExt` import at every use.
trait SignalNumber {
    fn signal_number(&self) -> Option<i32>;
}

impl SignalNumber for std::process::ExitStatus {
    fn signal_number(&self) -> Option<i32> {
        std::os::unix::process::ExitStatusExt::signal(self)
    }
}

#[cfg(test)]
#[path = "probe_tests.rs"]
mod tests;
