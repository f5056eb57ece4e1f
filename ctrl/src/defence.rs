//! The control thread's side of the overload defences: sysctl-like writes
//! checked whole, the values `/proc/sys/net/ipv4/vs/*` would show, and a
//! log line whenever a worker's defence switches. The workers decide and
//! publish (`fastpath::defence`); this only reads and sets.

use ctrl_api::{ApiError, DefenceInfo, DefenceSet, Errno, WorkerDefence};
use fastpath::defence::{mode, DefenceSettings, View};

/// `cur` with `set`'s values, or an error naming the first bad one (and
/// nothing set: a write of several values is all or none).
pub fn apply(cur: DefenceSettings, set: &DefenceSet) -> Result<DefenceSettings, ApiError> {
    let m = |v: Option<u8>, name: &str, now: u8| match v {
        Some(v) if v > mode::ALWAYS => Err(ApiError::new(
            Errno::Einval,
            format!("{name} must be 0, 1, 2 or 3, not {v}"),
        )),
        // The kernel takes a written 2 as "automatic": it means on only
        // while the table is short, like 1.
        Some(v) => Ok(v),
        None => Ok(now),
    };
    let am_droprate = match set.am_droprate {
        Some(0) => {
            return Err(ApiError::new(
                Errno::Einval,
                "am_droprate must be at least 1",
            ))
        }
        Some(v) => v,
        None => cur.am_droprate,
    };
    let threshold_permille = match set.table_threshold_permille {
        Some(v) if v > 1000 => {
            return Err(ApiError::new(
                Errno::Einval,
                format!(
                    "table_threshold must be a fraction 0..=1, not {}",
                    f64::from(v) / 1000.0
                ),
            ))
        }
        Some(v) => v,
        None => cur.threshold_permille,
    };
    Ok(DefenceSettings {
        drop_entry: m(set.drop_entry, "drop_entry", cur.drop_entry)?,
        drop_packet: m(set.drop_packet, "drop_packet", cur.drop_packet)?,
        secure_tcp: m(set.secure_tcp, "secure_tcp", cur.secure_tcp)?,
        am_droprate,
        threshold_permille,
    })
}

/// A mode as the kernel's sysctl would read: an automatic one is 2 if any
/// worker has it on, 1 otherwise; 0 and 3 are what was written.
fn shown(configured: u8, workers: &[View], of: impl Fn(&View) -> u8) -> u8 {
    match configured {
        mode::AUTO_OFF | mode::AUTO_ON => {
            if workers.iter().any(|w| of(w) == mode::AUTO_ON) {
                mode::AUTO_ON
            } else {
                mode::AUTO_OFF
            }
        }
        v => v,
    }
}

pub fn info(cfg: DefenceSettings, workers: &[View]) -> DefenceInfo {
    DefenceInfo {
        drop_entry: shown(cfg.drop_entry, workers, |w| w.drop_entry),
        drop_packet: shown(cfg.drop_packet, workers, |w| w.drop_packet),
        secure_tcp: shown(cfg.secure_tcp, workers, |w| w.secure_tcp),
        am_droprate: cfg.am_droprate,
        table_threshold_permille: cfg.threshold_permille,
        workers: workers
            .iter()
            .map(|w| WorkerDefence {
                drop_entry: w.drop_entry,
                drop_packet: w.drop_packet,
                secure_tcp: w.secure_tcp,
                drop_rate: w.drop_rate,
                conns: w.conns,
                capacity: w.capacity,
            })
            .collect(),
    }
}

/// Whether a mode value means the defence is on.
fn on(v: u8) -> bool {
    v >= mode::AUTO_ON
}

/// What the workers last published, to log each switch once.
#[derive(Debug, Default)]
pub struct Watch {
    last: Vec<View>,
}

impl Watch {
    /// A line per defence that switched on a worker since the last pass.
    /// (A defence that went on and off again between two passes is seen
    /// only in the workers' counters.)
    pub fn pass(&mut self, now: &[View]) -> Vec<String> {
        let mut lines = Vec::new();
        for (w, v) in now.iter().enumerate() {
            let old = self.last.get(w).copied().unwrap_or_default();
            let pairs = [
                ("drop_entry", old.drop_entry, v.drop_entry),
                ("drop_packet", old.drop_packet, v.drop_packet),
                ("secure_tcp", old.secure_tcp, v.secure_tcp),
            ];
            for (name, a, b) in pairs {
                if on(a) != on(b) {
                    let what = if on(b) { "on" } else { "off" };
                    let rate = if name == "drop_packet" && on(b) {
                        format!(", dropping 1 in {}", v.drop_rate)
                    } else {
                        String::new()
                    };
                    lines.push(format!(
                        "defence: worker {w}: {name} {what} ({b}; connection table {} of {}{rate})",
                        v.conns, v.capacity
                    ));
                }
            }
        }
        self.last = now.to_vec();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(e: u8, p: u8, s: u8) -> View {
        View {
            drop_entry: e,
            drop_packet: p,
            secure_tcp: s,
            drop_rate: 2,
            conns: 950,
            capacity: 1000,
        }
    }

    #[test]
    fn a_write_is_checked_whole() {
        let cur = DefenceSettings::default();
        let bad = DefenceSet {
            drop_entry: Some(1),
            secure_tcp: Some(4),
            ..Default::default()
        };
        let e = apply(cur, &bad).unwrap_err();
        assert_eq!(e.errno, Errno::Einval);
        assert_eq!(e.detail, "secure_tcp must be 0, 1, 2 or 3, not 4");
        let e = apply(
            cur,
            &DefenceSet {
                am_droprate: Some(0),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.detail, "am_droprate must be at least 1");
        let e = apply(
            cur,
            &DefenceSet {
                table_threshold_permille: Some(1001),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            e.detail,
            "table_threshold must be a fraction 0..=1, not 1.001"
        );
        let ok = apply(
            cur,
            &DefenceSet {
                drop_entry: Some(1),
                am_droprate: Some(5),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            ok,
            DefenceSettings {
                drop_entry: 1,
                am_droprate: 5,
                ..cur
            }
        );
    }

    #[test]
    fn automatic_modes_read_2_while_any_worker_has_them_on() {
        let cfg = DefenceSettings {
            drop_entry: 1,
            drop_packet: 3,
            secure_tcp: 1,
            ..Default::default()
        };
        let i = info(cfg, &[view(1, 3, 1), view(2, 3, 1)]);
        assert_eq!((i.drop_entry, i.drop_packet, i.secure_tcp), (2, 3, 1));
        let i = info(cfg, &[view(1, 3, 1), view(1, 3, 1)]);
        assert_eq!((i.drop_entry, i.drop_packet, i.secure_tcp), (1, 3, 1));
        assert_eq!(i.workers.len(), 2);
        assert_eq!(i.workers[0].conns, 950);
    }

    #[test]
    fn each_switch_is_logged_once() {
        let mut w = Watch::default();
        assert!(w.pass(&[view(1, 1, 0)]).is_empty());
        assert_eq!(
            w.pass(&[view(2, 2, 0)]),
            vec![
                "defence: worker 0: drop_entry on (2; connection table 950 of 1000)",
                "defence: worker 0: drop_packet on (2; connection table 950 of 1000, dropping 1 in 2)",
            ]
        );
        assert!(w.pass(&[view(2, 2, 0)]).is_empty());
        assert_eq!(
            w.pass(&[view(1, 2, 3)]),
            vec![
                "defence: worker 0: drop_entry off (1; connection table 950 of 1000)",
                "defence: worker 0: secure_tcp on (3; connection table 950 of 1000)",
            ]
        );
    }
}
