//! ripvsd: the director daemon. It validates the config, brings up DPDK
//! (EAL, pools, ports, exception taps), launches one run-to-completion
//! worker per worker lcore, and keeps the main lcore for control until
//! SIGINT/SIGTERM.

#![forbid(unsafe_code)]

mod args;
mod control;
mod dataplane;
mod dpdk_io;
mod rss;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ripvsd: {e}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    if args.help {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    if args.version {
        println!("ripvsd {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let (cfg, name) = match &args.config {
        Some(path) => (conf::load(path), path.display().to_string()),
        None => (
            conf::parse(conf::DEFAULT_CONFIG, "<embedded conf/ripvs.toml>"),
            "<embedded conf/ripvs.toml>".into(),
        ),
    };
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if args.check {
        println!("{}: configuration is valid", Path::new(&name).display());
        return ExitCode::SUCCESS;
    }
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| ctrl_api::DEFAULT_SOCKET.into());
    match dataplane::run(&cfg, args.config.as_deref(), &socket, &args.eal_extra) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ripvsd: {e}");
            ExitCode::FAILURE
        }
    }
}
