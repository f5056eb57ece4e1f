//! The control thread's side of sync against a real sync thread on a
//! veth pair: ipvsadm's errnos for a second start and a stop of nothing,
//! the rows `-L --daemon` shows with the kernel's defaults and clamps
//! filled in, what the workers are told, and `[sync]` on reload.
//! Needs root (it makes a veth pair), as the suite runs.

use ctrl::sync::admin::SyncAdmin;
use ctrl::sync::daemon::SyncHandle;
use ctrl_api::{DaemonConfig, Errno, SyncRole};
use fastpath::ipvs::Shared;
use fastpath::service::ServiceTable;
use fastpath::sync::{sync_post, SyncParams};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

struct Veth(String);

impl Veth {
    fn new() -> Veth {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let a = format!("rsa{}x{n}", std::process::id() % 100_000);
        let b = format!("{a}p");
        let ip = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().unwrap().success();
            assert!(ok, "ip {args:?} failed (this test needs root)");
        };
        let _ = Command::new("ip").args(["link", "del", &a]).status();
        ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]);
        ip(&["addr", "add", &format!("10.251.{n}.1/24"), "dev", &a]);
        ip(&["link", "set", &a, "up"]);
        ip(&["link", "set", &b, "up"]);
        Veth(a)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

fn admin() -> SyncAdmin {
    let (post, _boxes) = sync_post(2, 64);
    let shared = Arc::new(Shared::new(2, 64));
    let table = Arc::new(ServiceTable::new(vec![], vec![]).unwrap());
    let h = SyncHandle::spawn(post, shared, Arc::new(|| 0), table).unwrap();
    SyncAdmin::new(h)
}

fn start(role: SyncRole, ifn: &str) -> DaemonConfig {
    DaemonConfig {
        role,
        mcast_ifn: ifn.to_string(),
        syncid: 7,
        maxlen: None,
        group: None,
        port: None,
        ttl: None,
    }
}

#[test]
fn start_stop_and_list_as_ipvsadm_sees_them() {
    let v = Veth::new();
    let mut a = admin();
    assert_eq!(a.worker_settings(), (None, false));
    a.start(&start(SyncRole::Master, &v.0)).unwrap();
    let again = a.start(&start(SyncRole::Master, &v.0)).unwrap_err();
    assert_eq!(again.errno, Errno::Eexist);
    assert_eq!(a.worker_settings(), (Some(SyncParams::default()), false));
    let mut b = start(SyncRole::Backup, &v.0);
    b.maxlen = Some(100);
    a.start(&b).unwrap();
    let rows: Vec<_> = a
        .daemons()
        .into_iter()
        .map(|d| {
            (
                d.role,
                d.mcast_ifn,
                d.syncid,
                d.maxlen,
                d.group,
                d.port,
                d.ttl,
            )
        })
        .collect();
    let g = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81));
    assert_eq!(
        rows,
        vec![
            (SyncRole::Master, v.0.clone(), 7, 1472, g, 8848, 1),
            // A backup's maxlen is clamped up to 1024, as the kernel does.
            (SyncRole::Backup, v.0.clone(), 7, 1024, g, 8848, 1),
        ]
    );
    // Without backup_only a backup does not stand by.
    assert_eq!(a.worker_settings(), (Some(SyncParams::default()), false));
    a.stop(SyncRole::Master).unwrap();
    assert_eq!(a.stop(SyncRole::Master).unwrap_err().errno, Errno::Esrch);
    assert_eq!(a.worker_settings(), (None, false));
    assert_eq!(a.daemons().len(), 1);
    let nowhere = a.start(&start(SyncRole::Master, "rsnoif0")).unwrap_err();
    assert_eq!(nowhere.errno, Errno::Other);
    assert!(nowhere.detail.contains("rsnoif0"), "{}", nowhere.detail);
    let v6 = DaemonConfig {
        group: Some("ff02::1".parse().unwrap()),
        ..start(SyncRole::Master, &v.0)
    };
    assert_eq!(a.start(&v6).unwrap_err().errno, Errno::Eafnosupport);
}

#[test]
fn the_sync_section_starts_roles_and_a_changed_one_restarts_them() {
    let v = Veth::new();
    let mut a = admin();
    let c = conf::Sync {
        backup: true,
        interface: Some(v.0.clone()),
        syncid: 3,
        threshold: 2,
        period: 10,
        ..conf::Sync::default()
    };
    assert!(a.configure(&c, true).is_empty());
    assert_eq!(a.worker_settings(), (None, true), "backup_only: standby");
    let roles = |a: &SyncAdmin| -> Vec<(SyncRole, u8)> {
        a.daemons().iter().map(|d| (d.role, d.syncid)).collect()
    };
    assert_eq!(roles(&a), vec![(SyncRole::Backup, 3)]);
    // An operator's master under an unchanged section stays.
    a.start(&start(SyncRole::Master, &v.0)).unwrap();
    assert!(a.configure(&c, true).is_empty());
    assert_eq!(
        roles(&a),
        vec![(SyncRole::Master, 7), (SyncRole::Backup, 3)]
    );
    let params = SyncParams {
        threshold: 2,
        period: 10,
        ..SyncParams::default()
    };
    assert_eq!(a.worker_settings(), (Some(params), true));
    // The section now names a master only: the backup goes, and the
    // master restarts with the section's settings.
    let c2 = conf::Sync {
        master: true,
        backup: false,
        syncid: 4,
        ..c.clone()
    };
    assert!(a.configure(&c2, true).is_empty());
    assert_eq!(roles(&a), vec![(SyncRole::Master, 4)]);
    assert_eq!(a.worker_settings(), (Some(params), false));
    // A bad interface is reported, not half applied.
    let c3 = conf::Sync {
        interface: Some("rsnoif0".into()),
        ..c2
    };
    let errors = a.configure(&c3, false);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(roles(&a).is_empty());
}
