//! keepalived's notify scripts: `notify_master`, `notify_backup` and
//! `notify_fault` run as they are; `notify` gets `INSTANCE NAME STATE
//! PRIORITY` appended, as keepalived calls it. Each runs under `sh -c`,
//! detached from the VRRP thread, which never waits for one: finished
//! ones are reaped on the thread's next pass.

use ctrl_api::VrrpState;
use std::process::{Child, Command, Stdio};

#[derive(Default)]
pub struct Notifier {
    running: Vec<Child>,
}

impl Notifier {
    /// Starts the scripts `cfg` names for a move to `to`; an error names
    /// the script that could not start.
    pub fn run(&mut self, cfg: &conf::Vrrp, to: VrrpState) -> Option<String> {
        let specific = match to {
            VrrpState::Master => cfg.notify_master.as_deref(),
            VrrpState::Backup => cfg.notify_backup.as_deref(),
            VrrpState::Fault => cfg.notify_fault.as_deref(),
            VrrpState::Init => None,
        };
        let mut errors = Vec::new();
        if let Some(cmd) = specific {
            if let Err(e) = self.spawn(Command::new("sh").args(["-c", cmd])) {
                errors.push(format!("{cmd}: {e}"));
            }
        }
        if let (Some(cmd), false) = (cfg.notify.as_deref(), to == VrrpState::Init) {
            // `sh -c 'CMD "$@"' sh ARGS`: the arguments stay words even
            // when the command is a line with its own.
            let script = format!("{cmd} \"$@\"");
            let prio = cfg.priority.to_string();
            let args = ["-c", &script, "sh", "INSTANCE", &cfg.name, to.name(), &prio];
            if let Err(e) = self.spawn(Command::new("sh").args(args)) {
                errors.push(format!("{cmd}: {e}"));
            }
        }
        (!errors.is_empty()).then(|| errors.join("; "))
    }

    fn spawn(&mut self, c: &mut Command) -> std::io::Result<()> {
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.running.push(child);
        Ok(())
    }

    /// Collects scripts that have finished.
    pub fn reap(&mut self) {
        self.running
            .retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }
}
