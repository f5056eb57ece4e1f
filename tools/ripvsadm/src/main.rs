//! The `ripvsadm` binary: the library's [`ripvsadm::run`] on the process's
//! arguments, standard streams and ripvsd's socket.

#![forbid(unsafe_code)]

use ripvsadm::{Daemon, Out, SystemNames, UnixDaemon};

fn main() {
    let mut args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let program = args.next().unwrap_or_else(|| "ripvsadm".to_string());
    let args: Vec<String> = args.collect();
    let env_socket = std::env::var("RIPVS_SOCKET").ok();
    let names = SystemNames::new();
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    let stdout = std::io::stdout();
    let mut stdout = stdout.lock();
    let stderr = std::io::stderr();
    let mut stderr = stderr.lock();
    let mut out = Out {
        out: &mut stdout,
        err: &mut stderr,
    };
    let code = ripvsadm::run(
        &program,
        &args,
        env_socket.as_deref(),
        &names,
        &mut stdin,
        &mut out,
        &mut |path| Box::new(UnixDaemon::new(path)) as Box<dyn Daemon>,
    );
    use std::io::Write;
    let _ = stdout.flush();
    // ipvsadm exits with -1 for daemon refusals: 255 to the shell.
    std::process::exit(code & 0xff);
}
