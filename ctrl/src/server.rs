//! The control socket (design section 7): ripvsadm's requests in, answers
//! out, without ever blocking the daemon's main loop.
//!
//! An accept thread and one thread per client do all socket I/O; each
//! decoded request travels to the control loop over a channel with a
//! one-shot reply channel, and the loop answers it in [`Server::poll`]
//! between its other duties. A client that sends garbage, speaks another
//! protocol version, announces an oversized message, stalls or vanishes
//! costs only its own thread. How many clients are served, which one makes
//! room for a new one, and how much request memory they may hold is
//! `admission.rs`'s business.
//!
//! Access: the socket is mode 0600, and ripvsd runs as root, so only root
//! can connect. Checking the peer's uid as well (SO_PEERCRED) would need
//! `unsafe` or a new crate (std's `peer_cred` is unstable), so the mode is
//! the whole check. The socket is bound under a temporary name, restricted,
//! then renamed into place, so it is never reachable with a wider mode.

use crate::admission::{Budget, Seat, Slots, REQUEST_BUDGET};
use crossbeam_channel::{Receiver, Sender};
use ctrl_api::{ApiError, Envelope, Errno, Request, Response, VERSION};
use std::fs::{self, DirBuilder, Permissions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long one message may take to arrive, from the moment the server
/// starts waiting for it; also bounds how long an idle client is kept.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(5);

pub use crate::admission::MAX_CLIENTS;

/// A request waiting for the control loop, with where its answer goes.
struct Job {
    request: Request,
    reply: Sender<Response>,
}

pub struct Server {
    path: PathBuf,
    /// Device and inode of our socket file, so dropping the server never
    /// removes a socket some other daemon has since put there.
    inode: (u64, u64),
    jobs: Receiver<Job>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

fn other(detail: impl Into<String>) -> Response {
    Response::Error(ApiError::new(Errno::Other, detail))
}

impl Server {
    /// Listens on `path` (normally [`ctrl_api::DEFAULT_SOCKET`]). Creates
    /// the parent directory (0755) if missing and replaces a stale socket
    /// left by a daemon that died; refuses if a live one answers there.
    pub fn bind(path: impl Into<PathBuf>) -> io::Result<Server> {
        Server::bind_with(path, MESSAGE_TIMEOUT)
    }

    /// [`Server::bind`] with another per-message timeout.
    pub fn bind_with(path: impl Into<PathBuf>, timeout: Duration) -> io::Result<Server> {
        let path = path.into();
        let name = path
            .file_name()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("socket path {} has no file name", path.display()),
                )
            })?
            .to_string_lossy()
            .into_owned();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.exists() {
            DirBuilder::new().recursive(true).mode(0o755).create(&dir)?;
            // The mode above is filtered by the umask; the directory must
            // be traversable by clients that check the socket exists.
            fs::set_permissions(&dir, Permissions::from_mode(0o755))?;
        }
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_socket() => {
                if UnixStream::connect(&path).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("{} is in use by a running daemon", path.display()),
                    ));
                }
                fs::remove_file(&path)?;
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp)?;
        let placed = fs::set_permissions(&tmp, Permissions::from_mode(0o600))
            .and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = placed {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let m = fs::symlink_metadata(&path)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let stop = stop.clone();
            thread::Builder::new()
                .name("ctrl-accept".into())
                .spawn(move || accept_loop(listener, tx, stop, timeout))?
        };
        Ok(Server {
            path,
            inode: (m.dev(), m.ino()),
            jobs: rx,
            stop,
            accept: Some(accept),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answers every request waiting now, without blocking; returns how
    /// many it answered.
    pub fn poll(&self, mut handle: impl FnMut(Request) -> Response) -> usize {
        let mut n = 0;
        while let Ok(job) = self.jobs.try_recv() {
            // The client may have gone meanwhile; nothing to do then.
            let _ = job.reply.send(handle(job.request));
            n += 1;
        }
        n
    }

    /// As [`Server::poll`], but waits up to `timeout` for a first request:
    /// for a loop with nothing else to do until its next tick.
    pub fn poll_timeout(
        &self,
        timeout: Duration,
        mut handle: impl FnMut(Request) -> Response,
    ) -> usize {
        match self.jobs.recv_timeout(timeout) {
            Ok(job) => {
                let _ = job.reply.send(handle(job.request));
                1 + self.poll(handle)
            }
            Err(_) => 0,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread out of accept().
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        if let Ok(m) = fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.inode {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

fn accept_loop(
    listener: UnixListener,
    jobs: Sender<Job>,
    stop: Arc<AtomicBool>,
    timeout: Duration,
) {
    let slots = Arc::new(Slots::default());
    let budget = Arc::new(Budget::new(REQUEST_BUDGET));
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                log::warn!("control socket: accept failed: {e}");
                // Out of descriptors, typically: do not spin on it.
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Some(seat) = slots.admit(&stream) else {
            log::warn!(
                "control socket: all {MAX_CLIENTS} clients are being answered, closing a new one"
            );
            continue;
        };
        let (jobs, budget) = (jobs.clone(), budget.clone());
        let spawned = thread::Builder::new()
            .name("ctrl-client".into())
            .spawn(move || serve(stream, &seat, &budget, &jobs, timeout));
        if let Err(e) = spawned {
            log::warn!("control socket: cannot start a client thread: {e}");
        }
    }
}

/// Reads from a stream with one deadline for a whole message, so a client
/// trickling bytes cannot hold its thread past the timeout.
struct Deadline<'a> {
    stream: &'a UnixStream,
    until: Instant,
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "message not complete in time",
            ));
        }
        self.stream.set_read_timeout(Some(left))?;
        (&mut &*self.stream).read(buf)
    }
}

/// An envelope's version alone: the rest is skipped without being built,
/// so a large request is not held twice (as a JSON tree, then decoded).
#[derive(serde::Deserialize)]
struct Probe {
    version: Option<serde_json::Value>,
}

/// The request in a frame, or the answer that says why there is none.
fn parse(body: &[u8]) -> Result<Request, Response> {
    let undecodable = |e: serde_json::Error| other(format!("undecodable request: {e}"));
    let probe: Probe = serde_json::from_slice(body).map_err(undecodable)?;
    match probe.version.as_ref().map(serde_json::Value::as_u64) {
        Some(Some(n)) if n == u64::from(VERSION) => {}
        Some(Some(n)) => {
            return Err(other(format!(
                "protocol version {n} is not supported: this ripvsd speaks version {VERSION}"
            )))
        }
        _ => return Err(other("request without a protocol version")),
    }
    let env: Envelope = serde_json::from_slice(body).map_err(undecodable)?;
    Ok(env.request)
}

/// Why a frame could not be read.
enum Unread {
    /// The client closed (cleanly, between messages, or not), stalled,
    /// or was evicted: nothing to answer.
    Gone(io::Error),
    /// Said to the client before hanging up.
    Refused(String),
}

/// Reads one frame, reserving its size first if it is large. Ok(None):
/// closed cleanly between messages.
fn read_frame<'b>(
    stream: &UnixStream,
    seat: &Seat,
    budget: &'b Budget,
    timeout: Duration,
) -> Result<Option<(Vec<u8>, crate::admission::Reserved<'b>)>, Unread> {
    let until = Instant::now() + timeout;
    let mut r = Deadline { stream, until };
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(Unread::Gone(e)),
    }
    let n = u32::from_be_bytes(len) as usize;
    if n > ctrl_api::MAX_MESSAGE {
        return Err(Unread::Refused(format!(
            "message of {n} bytes exceeds {}",
            ctrl_api::MAX_MESSAGE
        )));
    }
    let held = budget.reserve(n, until, seat).map_err(|used| {
        Unread::Refused(format!(
            "ripvsd is busy: {used} bytes of large requests are being handled (at most {}); try again",
            budget.cap()
        ))
    })?;
    // Memory is taken as the bytes come, not on the client's word.
    let mut body = Vec::with_capacity(n.min(crate::admission::SMALL_FRAME));
    if n > crate::admission::SMALL_FRAME {
        body.reserve_exact(n);
    }
    (&mut r)
        .take(n as u64)
        .read_to_end(&mut body)
        .map_err(Unread::Gone)?;
    if body.len() < n {
        return Err(Unread::Gone(io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(Some((body, held)))
}

fn serve(stream: UnixStream, seat: &Seat, budget: &Budget, jobs: &Sender<Job>, timeout: Duration) {
    let _ = stream.set_write_timeout(Some(timeout));
    loop {
        let (body, held) = match read_frame(&stream, seat, budget, timeout) {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(Unread::Refused(why)) => {
                // The frame cannot be skipped, so say why and hang up.
                let _ = ctrl_api::write_msg(&mut &stream, &other(why));
                return;
            }
            Err(Unread::Gone(e)) => {
                log::debug!("control socket: client dropped: {e}");
                return;
            }
        };
        let parsed = parse(&body);
        drop(body);
        let answer = match parsed {
            Ok(request) => {
                if !seat.set_busy(true) {
                    return;
                }
                let (tx, rx) = crossbeam_channel::bounded(1);
                if jobs.send(Job { request, reply: tx }).is_err() {
                    return;
                }
                match rx.recv() {
                    Ok(a) => a,
                    // The server is gone: the daemon is stopping.
                    Err(_) => return,
                }
            }
            Err(a) => a,
        };
        let written = ctrl_api::write_msg(&mut &stream, &answer);
        drop((answer, held));
        if !seat.set_busy(false) {
            return;
        }
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                let tell = other(format!("the answer is too large to send: {e}"));
                if ctrl_api::write_msg(&mut &stream, &tell).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctrl_api::{read_msg, write_msg, Timeouts};
    use std::io::Write;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn temp(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("ripvs-srv-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    /// The server on its own control-loop thread, answering every request
    /// with the timeouts `7 8 9` (and `Info` with an error, to tell them
    /// apart), until `stop`.
    fn run(server: Server) -> (Arc<AtomicBool>, JoinHandle<usize>) {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let t = thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::SeqCst) {
                n += server.poll_timeout(Duration::from_millis(20), |req| match req {
                    Request::Info => other("info"),
                    _ => Response::Timeouts(Timeouts {
                        tcp: 7,
                        tcpfin: 8,
                        udp: 9,
                    }),
                });
            }
            n
        });
        (stop, t)
    }

    fn ask(s: &mut UnixStream, version: u32) -> Option<Response> {
        write_msg(
            s,
            &Envelope {
                version,
                request: Request::Timeouts,
            },
        )
        .unwrap();
        read_msg(s).unwrap()
    }

    fn good() -> Response {
        Response::Timeouts(Timeouts {
            tcp: 7,
            tcpfin: 8,
            udp: 9,
        })
    }

    fn error_detail(r: Option<Response>) -> String {
        match r {
            Some(Response::Error(e)) if e.errno == Errno::Other => e.detail,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn serves_good_clients_and_survives_bad_ones() {
        let dir = temp("serve");
        let path = dir.0.join("run/ripvs/ripvsd.sock");
        let server = Server::bind_with(&path, Duration::from_millis(300)).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_socket());
        assert_eq!(
            fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        assert_eq!(
            Server::bind(&path).err().map(|e| e.kind()),
            Some(io::ErrorKind::AddrInUse),
            "a live daemon's socket is not taken over"
        );
        let (stop, t) = run(server);

        // Good: two exchanges on one connection.
        let mut a = UnixStream::connect(&path).unwrap();
        assert_eq!(ask(&mut a, VERSION), Some(good()));
        assert_eq!(ask(&mut a, VERSION), Some(good()));

        // Garbage in a good frame: an error, and the connection goes on.
        let mut g = UnixStream::connect(&path).unwrap();
        g.write_all(&[0, 0, 0, 3, b'x', b'y', b'z']).unwrap();
        assert!(error_detail(read_msg(&mut g).unwrap()).starts_with("undecodable request"));
        assert_eq!(ask(&mut g, VERSION), Some(good()));
        // JSON of the wrong shape.
        write_msg(
            &mut g,
            &serde_json::json!({"version": VERSION, "request": 5}),
        )
        .unwrap();
        assert!(error_detail(read_msg(&mut g).unwrap()).starts_with("undecodable request"));

        // Another version: the answer names both.
        let mut v = UnixStream::connect(&path).unwrap();
        let d = error_detail(ask(&mut v, 99));
        assert!(
            d.contains("99") && d.contains(&format!("version {VERSION}")),
            "{d}"
        );

        // Oversized announcement: told so, then dropped.
        let mut o = UnixStream::connect(&path).unwrap();
        o.write_all(&((ctrl_api::MAX_MESSAGE + 1) as u32).to_be_bytes())
            .unwrap();
        assert!(error_detail(read_msg(&mut o).unwrap()).contains("exceeds"));
        assert_eq!(read_msg::<Response>(&mut o).unwrap(), None);

        // Gone in the middle of a request.
        let mut m = UnixStream::connect(&path).unwrap();
        m.write_all(&[0, 0, 0, 100, b'{', b'"']).unwrap();
        drop(m);

        // Stalled in the middle of a request: dropped after the timeout.
        let mut s = UnixStream::connect(&path).unwrap();
        s.write_all(&[0, 0, 0, 100, b'{']).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(s.read(&mut buf).unwrap(), 0, "closed by the server");

        // Others are still served. (`a` sat idle past the timeout, so it
        // was dropped like the staller.)
        let mut b = UnixStream::connect(&path).unwrap();
        assert_eq!(ask(&mut b, VERSION), Some(good()));
        write_msg(
            &mut b,
            &Envelope {
                version: VERSION,
                request: Request::Info,
            },
        )
        .unwrap();
        assert_eq!(error_detail(read_msg(&mut b).unwrap()), "info");

        stop.store(true, Ordering::SeqCst);
        let answered = t.join().unwrap();
        assert_eq!(answered, 5, "only well-formed requests reach the loop");
        assert!(!path.exists(), "the socket goes with the server");
    }

    #[test]
    fn a_stale_socket_is_replaced() {
        let dir = temp("stale");
        let path = dir.0.join("ripvsd.sock");
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let server = Server::bind(&path).unwrap();
        let (stop, t) = run(server);
        let mut c = UnixStream::connect(&path).unwrap();
        assert_eq!(ask(&mut c, VERSION), Some(good()));
        stop.store(true, Ordering::SeqCst);
        t.join().unwrap();

        fs::write(&path, b"not a socket").unwrap();
        assert_eq!(
            Server::bind(&path).err().map(|e| e.kind()),
            Some(io::ErrorKind::AlreadyExists)
        );
    }
}
