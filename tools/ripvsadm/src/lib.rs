//! `ripvsadm`: ipvsadm 1.31 for ripvsd.
//!
//! Scripts, runbooks and people know ipvsadm; ripvs keeps its rules in a
//! daemon instead of the kernel, so this client speaks ipvsadm's language
//! (grammar, messages, exit statuses, listings byte for byte) and turns each
//! command into a [`ctrl_api::Request`] on ripvsd's control socket.
//!
//! # Where it differs from ipvsadm, and why
//!
//! * **No daemon.** ipvsadm words this for the kernel module; ripvsadm says
//!   `Can't initialize ipvs: <reason>` then `Are you sure that ripvsd is
//!   running?` (exit 2). It connects only when a request is to be sent, so
//!   `-h`, `-v` and command-line errors work without a daemon (ipvsadm
//!   opens netlink before it reads its arguments).
//! * **Restore.** `-R` checks every line before sending anything: a
//!   syntax error anywhere leaves the table untouched (exit 2), where
//!   ipvsadm would already have run the lines above it. Runs of change
//!   lines go as one `Apply`, which ripvsd applies command by command, so
//!   failures are still reported per line, in order, and the exit status
//!   is the last line's. The exception is a full table (more services
//!   than `[dataplane] max_services`): ripvsd then applies none of the
//!   run, and ripvsadm says at which line the restore stopped and which
//!   lines were not applied, and exits 255 without going on (ipvsadm
//!   would have added what fitted).
//! * **Second command.** `-A -L` says `multiple commands specified`, as
//!   the behaviour reference specifies (ipvsadm 1.31 itself says
//!   ``invalid option `-L'``).
//! * `-6 used before -f` is one line (ipvsadm prints an empty one after).
//! * A connection that breaks mid-way: `Lost the connection to ripvsd:
//!   <reason>` (exit 2); ipvsadm has no such case.
//! * A listing ripvsd refuses (`-L --timeout`, `-L --daemon`) prints its
//!   reason before exiting 1; ipvsadm exits 1 without a word, which leaves
//!   an operator nothing to go on when the cause is the daemon, not the
//!   kernel.
//! * A bracketed IPv6 address needs `]:port` (`[::1]` alone is refused,
//!   as ipvsadm's parser does).
//!
//! # Extras
//!
//! Long options ipvsadm does not have (see `ripvsadm --help-ripvs`):
//! `--socket PATH` (also `$RIPVS_SOCKET`; may precede the command, since
//! it names the daemon rather than an action), `--json` (with `-L`: the
//! daemon's answer as pretty JSON, for scripts that would otherwise parse
//! the table), `--reload` (ripvsd re-reads its configuration file), `--health`
//! (each checked real server's health-check state; see the README),
//! `--sync-full`, `--vrrp` (the VRRP instances: a table, or with `--json`
//! the daemon's whole answer) and `--help-ripvs`. `-h` prints ipvsadm's usage
//! unchanged.
//!
//! `--sync-full` exists because IPVS's sync is incremental: a backup that
//! starts (or restarts) learns a connection only when the master next
//! syncs it, so long-lived idle connections can stay unknown until after
//! a failover. On a backup it asks the master for its whole table; on a
//! master it sends it to the group. ripvsd's refusal (no daemon running,
//! say) is printed in its own words, exit 255.
//!
//! # The sync daemon
//!
//! `--start-daemon`, `--stop-daemon` and `-L --daemon` are ipvsadm's,
//! checks and messages included. `--start-daemon` sends what was given
//! and leaves the rest (`None`) to ripvsd, which knows the kernel's
//! defaults and the interface's MTU; `--mcast-interface` is the exception,
//! as ipvsadm itself fills in `eth0`. Refusals are worded by libipvs's
//! table (`Daemon has already run`, `No daemon is running`, then the
//! generic errno texts), status 255.

#![forbid(unsafe_code)]

pub mod cli;
pub mod names;
pub mod render;
pub mod run;

pub use cli::{parse, Action, Fail, Format, Invocation, List, ListWhat};
pub use names::{Names, StaticNames, SystemNames};
pub use run::{run, Daemon, Out, Trouble, UnixDaemon};
