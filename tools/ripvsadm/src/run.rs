//! Carrying out a parsed command line: talking to ripvsd, printing what
//! ipvsadm prints, and choosing ipvsadm's exit status.

use crate::cli::{self, Action, Fail, List, ListWhat};
use crate::names::Names;
use crate::render;
use ctrl_api::{ApiError, Command, ConnPage, Envelope, Errno, Request, Response, VERSION};
use std::io::{BufRead, Write};
use std::os::unix::net::UnixStream;

/// How many connection entries to ask for per page: small enough to keep
/// each answer far below the frame limit, large enough to be few round trips.
pub const CONN_PAGE: u32 = 4096;

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// The socket could not be reached (ipvsadm's `ipvs_init` failure).
    Connect(String),
    /// The connection broke, or the answer was not a Response.
    Lost(String),
}

/// The daemon end of the control protocol.
pub trait Daemon {
    fn call(&mut self, req: Request) -> Result<Response, Trouble>;
}

/// ripvsd over its Unix socket, connected on first use so that `-h`, `-v`
/// and command-line errors do not need a running daemon.
pub struct UnixDaemon {
    path: String,
    stream: Option<UnixStream>,
}

impl UnixDaemon {
    pub fn new(path: impl Into<String>) -> Self {
        UnixDaemon {
            path: path.into(),
            stream: None,
        }
    }
}

/// strerror text of an I/O error, without Rust's " (os error N)".
pub fn reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl Daemon for UnixDaemon {
    fn call(&mut self, req: Request) -> Result<Response, Trouble> {
        if self.stream.is_none() {
            let s = UnixStream::connect(&self.path).map_err(|e| Trouble::Connect(reason(&e)))?;
            self.stream = Some(s);
        }
        let Some(s) = self.stream.as_mut() else {
            return Err(Trouble::Lost("not connected".into()));
        };
        let env = Envelope {
            version: VERSION,
            request: req,
        };
        ctrl_api::write_msg(s, &env).map_err(|e| Trouble::Lost(reason(&e)))?;
        match ctrl_api::read_msg::<Response>(s) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(Trouble::Lost("ripvsd closed the connection".into())),
            Err(e) => Err(Trouble::Lost(reason(&e))),
        }
    }
}

/// The socket to use: `--socket`, else `$RIPVS_SOCKET`, else the default.
pub fn socket_path(opt: Option<&str>, env: Option<&str>) -> String {
    opt.or(env.filter(|e| !e.is_empty()))
        .unwrap_or(ctrl_api::DEFAULT_SOCKET)
        .to_string()
}

/// Where output goes.
pub struct Out<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

impl Out<'_> {
    fn print(&mut self, s: &str) {
        // A closed stdout (`| head`) is not worth a panic or a message.
        let _ = self.out.write_all(s.as_bytes());
    }
    fn eprint(&mut self, s: &str) {
        let _ = self.err.write_all(s.as_bytes());
    }
    fn eline(&mut self, s: &str) {
        let _ = writeln!(self.err, "{s}");
    }
}

/// The generic part of libipvs's `ipvs_strerror`, then strerror.
fn errno_text(e: &ApiError) -> String {
    match e.errno {
        Errno::Eperm => "Permission denied (you must be root)".into(),
        Errno::Einval => {
            "Invalid operation.  Possibly wrong module version, address not unicast, ...".into()
        }
        Errno::Enomem => "Memory allocation problem".into(),
        Errno::Eopnotsupp => "Operation not supported with IPv6".into(),
        Errno::Eafnosupport => "Operation not supported with specified address family".into(),
        Errno::Eexist => "File exists".into(),
        Errno::Enoent => "No such file or directory".into(),
        Errno::Esrch => "No such process".into(),
        Errno::Erange => "Numerical result out of range".into(),
        Errno::Other => e.detail.clone(),
    }
}

/// What ipvsadm prints when the kernel refuses `cmd` with `e` (its
/// message depends on the errno and on the call).
pub fn change_message(cmd: &Command, e: &ApiError) -> String {
    use Command as C;
    let s = match (e.errno, cmd) {
        (Errno::Eexist, C::AddService(_)) => "Service already exists",
        (Errno::Enoent, C::AddService(_) | C::EditService(_)) => {
            "Scheduler or persistence engine not found"
        }
        (Errno::Esrch, C::EditService(_) | C::DelService(_) | C::Zero(_)) => "No such service",
        (Errno::Esrch, C::AddDest(..) | C::EditDest(..) | C::DelDest { .. }) => {
            "Service not defined"
        }
        (Errno::Eexist, C::AddDest(..)) => "Destination already exists",
        (Errno::Enoent, C::EditDest(..) | C::DelDest { .. }) => "No such destination",
        _ => return errno_text(e),
    };
    s.to_string()
}

/// What ipvsadm prints when the kernel refuses `--start-daemon` or
/// `--stop-daemon` (libipvs words EEXIST and ESRCH by the call).
pub fn daemon_message(req: &Request, e: &ApiError) -> String {
    match (e.errno, req) {
        (Errno::Eexist, Request::StartDaemon(_)) => "Daemon has already run".into(),
        (Errno::Esrch, Request::StopDaemon(_)) => "No daemon is running".into(),
        _ => errno_text(e),
    }
}

/// What ripvsadm prints when ripvsd refuses one of ripvs's extras: its
/// own words, since ipvsadm has none for a command it lacks.
pub fn extra_message(e: &ApiError) -> String {
    if e.detail.is_empty() {
        errno_text(e)
    } else {
        e.detail.clone()
    }
}

/// What ipvsadm prints when a listing fails.
pub fn list_message(e: &ApiError) -> String {
    match e.errno {
        Errno::Esrch => "No such service".into(),
        _ => errno_text(e),
    }
}

/// Parses and carries out a whole command line; returns the exit status.
pub fn run(
    program: &str,
    args: &[String],
    env_socket: Option<&str>,
    names: &dyn Names,
    stdin: &mut dyn BufRead,
    out: &mut Out<'_>,
    connect: &mut dyn FnMut(&str) -> Box<dyn Daemon>,
) -> i32 {
    let inv = match cli::parse(program, args, names) {
        Ok(i) => i,
        Err(f) => {
            out.eprint(&f.text);
            return f.code;
        }
    };
    let path = socket_path(inv.socket.as_deref(), env_socket);
    let mut daemon = connect(&path);
    match inv.action {
        Action::Restore => restore(program, names, stdin, out, daemon.as_mut()),
        a => match execute(program, &a, names, out, daemon.as_mut()) {
            Ok(code) => code,
            Err(code) => code,
        },
    }
}

fn trouble(out: &mut Out<'_>, t: Trouble) -> i32 {
    match t {
        Trouble::Connect(r) => out.eprint(&format!(
            "Can't initialize ipvs: {r}\nAre you sure that ripvsd is running?\n"
        )),
        Trouble::Lost(r) => out.eline(&format!("Lost the connection to ripvsd: {r}")),
    }
    2
}

fn unexpected(out: &mut Out<'_>) -> i32 {
    out.eline("Unexpected answer from ripvsd");
    2
}

/// Sends `cmds` as one Apply and prints each failure in order. Ok: the
/// status of the last command; Err: stop now with this status.
fn apply(cmds: Vec<Command>, out: &mut Out<'_>, d: &mut dyn Daemon) -> Result<i32, i32> {
    if cmds.is_empty() {
        return Ok(0);
    }
    let n = cmds.len();
    match d.call(Request::Apply(cmds.clone())) {
        Err(t) => Err(trouble(out, t)),
        Ok(Response::Applied(results)) if results.len() == n => {
            let mut last = 0;
            for (c, r) in cmds.iter().zip(results) {
                last = match r {
                    Ok(()) => 0,
                    Err(e) => {
                        out.eline(&change_message(c, &e));
                        255
                    }
                };
            }
            Ok(last)
        }
        Ok(Response::Error(e)) => {
            out.eline(&change_message(&cmds[0], &e));
            Ok(255)
        }
        Ok(_) => Err(unexpected(out)),
    }
}

/// Runs one action other than a restore. Ok: its status; Err: a status
/// that ends a restore too (ipvsadm exits from inside its listings).
fn execute(
    program: &str,
    action: &Action,
    names: &dyn Names,
    out: &mut Out<'_>,
    d: &mut dyn Daemon,
) -> Result<i32, i32> {
    match action {
        Action::Usage => {
            out.print(&render::usage(program));
            Err(0)
        }
        Action::Version => {
            out.print(&render::version());
            Err(0)
        }
        Action::RipvsHelp => {
            out.print(&render::ripvs_help(program));
            Err(0)
        }
        Action::Apply(c) => apply(vec![c.clone()], out, d),
        Action::Reload => match d.call(Request::Reload) {
            Err(t) => Err(trouble(out, t)),
            Ok(Response::Reloaded) => Ok(0),
            Ok(Response::Error(e)) => {
                out.eline(&extra_message(&e));
                Ok(255)
            }
            Ok(_) => Err(unexpected(out)),
        },
        Action::SyncFull => match d.call(Request::SyncFull) {
            Err(t) => Err(trouble(out, t)),
            Ok(Response::Done) => Ok(0),
            Ok(Response::Error(e)) => {
                out.eline(&extra_message(&e));
                Ok(255)
            }
            Ok(_) => Err(unexpected(out)),
        },
        Action::StartDaemon(cfg) => daemon(Request::StartDaemon(cfg.clone()), out, d),
        Action::StopDaemon(role) => daemon(Request::StopDaemon(*role), out, d),
        Action::Save { numeric } => match d.call(Request::Services(None)) {
            Err(t) => Err(trouble(out, t)),
            Ok(Response::Services(s)) => {
                out.print(&render::save(&s, *numeric, names));
                Ok(0)
            }
            Ok(Response::Error(e)) => {
                out.eline(&list_message(&e));
                Err(1)
            }
            Ok(_) => Err(unexpected(out)),
        },
        Action::List(l) => list(l, names, out, d),
        Action::Health {
            svc,
            numeric,
            json: as_json,
        } => match d.call(Request::Health(*svc)) {
            Err(t) => Err(trouble(out, t)),
            Ok(Response::Error(e)) => {
                out.eline(&list_message(&e));
                Err(1)
            }
            Ok(r) if *as_json => {
                json(out, &r);
                Ok(0)
            }
            Ok(Response::Health(h)) => {
                out.print(&render::health(&h, *numeric, names));
                Ok(0)
            }
            Ok(_) => Err(unexpected(out)),
        },
        Action::Vrrp { json: as_json } => match d.call(Request::Vrrp) {
            Err(t) => Err(trouble(out, t)),
            // A listing's exit status, in ripvsd's words: ipvsadm has
            // none for a command it lacks.
            Ok(Response::Error(e)) => {
                out.eline(&extra_message(&e));
                Err(1)
            }
            Ok(r) if *as_json => {
                json(out, &r);
                Ok(0)
            }
            Ok(Response::Vrrp(v)) => {
                out.print(&render::vrrp(&v));
                Ok(0)
            }
            Ok(_) => Err(unexpected(out)),
        },
        Action::Defence { set, json: as_json } => match d.call(Request::Defence(*set)) {
            Err(t) => Err(trouble(out, t)),
            Ok(Response::Error(e)) => {
                out.eline(&extra_message(&e));
                Err(1)
            }
            Ok(r) if *as_json => {
                json(out, &r);
                Ok(0)
            }
            Ok(Response::Defence(i)) => {
                out.print(&render::defence(&i));
                Ok(0)
            }
            Ok(_) => Err(unexpected(out)),
        },
        // Refused by the parser inside a restore.
        Action::Restore => Err(cli::Fail::tryhelp(program).code),
    }
}

/// `--start-daemon` / `--stop-daemon`: silent on success; a refusal is a
/// kernel error to ipvsadm (255), and a restore goes on after it.
fn daemon(req: Request, out: &mut Out<'_>, d: &mut dyn Daemon) -> Result<i32, i32> {
    match d.call(req.clone()) {
        Err(t) => Err(trouble(out, t)),
        Ok(Response::Done) => Ok(0),
        Ok(Response::Error(e)) => {
            out.eline(&daemon_message(&req, &e));
            Ok(255)
        }
        Ok(_) => Err(unexpected(out)),
    }
}

fn json(out: &mut Out<'_>, r: &Response) {
    match serde_json::to_string_pretty(r) {
        Ok(s) => out.print(&(s + "\n")),
        Err(e) => out.eline(&format!("cannot encode the answer as JSON: {e}")),
    }
}

fn list(l: &List, names: &dyn Names, out: &mut Out<'_>, d: &mut dyn Daemon) -> Result<i32, i32> {
    let call = |d: &mut dyn Daemon, out: &mut Out<'_>, req| match d.call(req) {
        Err(t) => Err(trouble(out, t)),
        Ok(Response::Error(e)) => {
            out.eline(&list_message(&e));
            Err(1)
        }
        Ok(r) => Ok(r),
    };
    match &l.what {
        ListWhat::All => {
            let info = call(d, out, Request::Info)?;
            let svcs = call(d, out, Request::Services(None))?;
            if l.json {
                json(out, &svcs);
                return Ok(0);
            }
            match (info, svcs) {
                (Response::Info(i), Response::Services(s)) => {
                    out.print(&render::list_all(&i, &s, &l.fmt, names));
                    Ok(0)
                }
                _ => Err(unexpected(out)),
            }
        }
        ListWhat::Service(k) => {
            let r = call(d, out, Request::Services(Some(*k)))?;
            if l.json {
                json(out, &r);
                return Ok(0);
            }
            match r {
                Response::Services(s) => match s.iter().find(|s| s.spec.key == *k) {
                    Some(s) => {
                        out.print(&render::list_service(s, &l.fmt, names));
                        Ok(0)
                    }
                    None => {
                        out.eline("No such service");
                        Err(1)
                    }
                },
                _ => Err(unexpected(out)),
            }
        }
        ListWhat::Daemons => match call(d, out, Request::Daemons)? {
            r if l.json => {
                json(out, &r);
                Ok(0)
            }
            Response::Daemons(list) => {
                out.print(&render::daemons(&list));
                Ok(0)
            }
            _ => Err(unexpected(out)),
        },
        ListWhat::Timeouts => match call(d, out, Request::Timeouts)? {
            r if l.json => {
                json(out, &r);
                Ok(0)
            }
            Response::Timeouts(t) => {
                out.print(&render::timeouts(&t));
                Ok(0)
            }
            _ => Err(unexpected(out)),
        },
        ListWhat::Connections => {
            let mut all = Vec::new();
            let mut cursor = None;
            loop {
                let r = call(
                    d,
                    out,
                    Request::Connections {
                        cursor,
                        max: CONN_PAGE,
                    },
                )?;
                let Response::Connections(page) = r else {
                    return Err(unexpected(out));
                };
                all.extend(page.conns);
                match page.next {
                    // A cursor that does not move would never end.
                    Some(n) if Some(n) != cursor => cursor = Some(n),
                    Some(_) => return Err(unexpected(out)),
                    None => break,
                }
            }
            if l.json {
                json(
                    out,
                    &Response::Connections(ConnPage {
                        conns: all,
                        next: None,
                    }),
                );
            } else {
                out.print(&render::connections(&all, &l.fmt, names));
            }
            Ok(0)
        }
    }
}

/// `-R`: every line is checked before anything is sent; runs of changes
/// go to ripvsd as one Apply; other lines run in their place.
fn restore(
    program: &str,
    names: &dyn Names,
    stdin: &mut dyn BufRead,
    out: &mut Out<'_>,
    d: &mut dyn Daemon,
) -> i32 {
    let mut actions = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match stdin.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                out.eline(&format!("cannot read the rules: {}", reason(&e)));
                return 2;
            }
        }
        let line = String::from_utf8_lossy(&buf);
        let toks = cli::restore_tokens(line.trim_end_matches('\n'));
        if toks.is_empty() {
            continue;
        }
        match cli::parse_restore_line(program, &toks, names) {
            Ok(a) => actions.push(a),
            Err(Fail { text, .. }) => {
                out.eprint(&text);
                return 2;
            }
        }
    }
    let mut status = 0;
    let mut batch: Vec<Command> = Vec::new();
    for a in actions {
        if let Action::Apply(c) = a {
            batch.push(c);
            continue;
        }
        if let Err(s) = apply(std::mem::take(&mut batch), out, d) {
            return s;
        }
        match execute(program, &a, names, out, d) {
            Ok(s) => status = s,
            Err(s) => return s,
        }
    }
    if !batch.is_empty() {
        match apply(batch, out, d) {
            Ok(s) => status = s,
            Err(s) => return s,
        }
    }
    status
}
