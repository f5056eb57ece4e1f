//! The daemon's half of the control plane: the one narrow interface
//! between `ctrl` (which decides) and the workers (which forward). Config
//! snapshots go in through the workers' mailboxes; counters are read from
//! the per-core blocks; connection listings come back a page at a time,
//! so a table of millions never stalls a worker.

use ctrl::control::Dataplane;
use ctrl_api::{ConnInfo, ConnPage, ConnProto, Cursor};
use fastpath::ipvs::{Ipvs, Settings, Shared};
use fastpath::mailbox::{ConnRow, Postbox, Snapshot};
use fastpath::proto::{self, Timeouts};
use fastpath::service::counters::CoreCounters;
use fastpath::service::ServiceTable;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// `Cursor::source` of the shared persistence templates, listed after
/// every worker's connections.
const TEMPLATES: u32 = u32::MAX;

/// How long a listing waits for a worker's page: workers answer at their
/// next poll, so only a stopped worker takes this long.
const PAGE_WAIT: Duration = Duration::from_secs(2);

pub struct Plane {
    pub postbox: Postbox,
    pub shared: Arc<Shared>,
    pub settings: Settings,
    /// A clock in the workers' milliseconds (template expiry times).
    pub now_ms: Box<dyn Fn() -> u64 + Send>,
    pub conn_tab_size: u32,
    /// The table the workers run (the boot table, then the last
    /// published): services that keep their scheduler need no new one.
    pub last: Option<Arc<ServiceTable>>,
    /// The sync thread follows every published table.
    pub sync_tables: Option<ctrl::sync::daemon::TableSink>,
    /// The VRRP instances' addresses (`ctrl::snapshot::owned_addresses`).
    pub owned: Vec<(std::net::Ipv4Addr, u8)>,
}

fn conn_proto(p: u8) -> ConnProto {
    match p {
        fastpath::service::UDP => ConnProto::Udp,
        fastpath::service::SCTP => ConnProto::Sctp,
        _ => ConnProto::Tcp,
    }
}

/// The state names of `/proc/net/ip_vs_conn`.
fn state_name(p: u8, state: u8) -> &'static str {
    match p {
        fastpath::service::TCP => proto::tcp::State::from_u8(state).map_or("ERR!", |s| s.name()),
        fastpath::service::SCTP => proto::sctp::State::from_u8(state).map_or("ERR!", |s| s.name()),
        _ => "UDP",
    }
}

fn row_info(r: &ConnRow) -> ConnInfo {
    ConnInfo {
        proto: conn_proto(r.proto),
        caddr: IpAddr::V4(r.caddr),
        cport: r.cport,
        vaddr: IpAddr::V4(r.vaddr),
        vport: r.vport,
        daddr: IpAddr::V4(r.daddr),
        dport: r.dport,
        state: state_name(r.proto, r.state).to_string(),
        expires_ms: r.expires_ms,
        template: false,
    }
}

impl Dataplane for Plane {
    fn publish(&mut self, table: ServiceTable, timeouts: Timeouts) {
        let table = Arc::new(table);
        let (vips, gate) = fastpath::gate::gated(&table.vips(), &self.owned);
        let snap = Snapshot {
            vips,
            gate,
            table: table.clone(),
            timeouts,
            settings: self.settings,
        };
        if let Some(s) = &self.sync_tables {
            s.send(table.clone());
        }
        let last = self.last.replace(table.clone());
        let workers = self.postbox.workers();
        let mut sets = Ipvs::prepare_scheduler_sets(&table, last.as_deref(), &self.shared, workers);
        let r = self
            .postbox
            .publish(&snap, |w| std::mem::take(&mut sets[w]));
        if let Err(e) = r {
            log::error!("publishing a service snapshot: a worker's mailbox is {e:?}");
        }
    }

    fn cores(&self) -> Vec<Arc<CoreCounters>> {
        self.shared.cores.clone()
    }

    fn set_owned(&mut self, owned: Vec<(std::net::Ipv4Addr, u8)>) {
        self.owned = owned;
    }

    fn set_sync(&mut self, sync: Option<fastpath::sync::SyncParams>, standby: bool) {
        self.settings.sync = sync;
        self.settings.standby = standby;
    }

    fn set_defence(&mut self, d: fastpath::defence::DefenceSettings) {
        self.settings.defence = d;
    }

    fn defence(
        &self,
    ) -> (
        fastpath::defence::DefenceSettings,
        Vec<fastpath::defence::View>,
    ) {
        let views = self.shared.defence.iter().map(|p| p.view()).collect();
        (self.settings.defence, views)
    }

    fn connections(&mut self, cursor: Option<Cursor>, max: u32) -> ConnPage {
        let max = (max as usize).clamp(1, 65536);
        let nworkers = self.postbox.workers() as u32;
        let mut at = cursor.unwrap_or(Cursor { source: 0, pos: 0 });
        let mut conns = Vec::new();
        while conns.len() < max {
            if at.source < nworkers {
                let pos = at.pos.min(u32::MAX as u64) as u32;
                let want = max - conns.len();
                match self.postbox.conns(at.source as usize, pos, want, PAGE_WAIT) {
                    Ok((rows, next)) => {
                        conns.extend(rows.iter().map(row_info));
                        at = match next {
                            Some(p) => Cursor {
                                source: at.source,
                                pos: p as u64,
                            },
                            None if at.source + 1 < nworkers => Cursor {
                                source: at.source + 1,
                                pos: 0,
                            },
                            None => Cursor {
                                source: TEMPLATES,
                                pos: 0,
                            },
                        };
                    }
                    Err(e) => {
                        log::warn!("connection listing: worker {} {e:?}", at.source);
                        at = Cursor {
                            source: at.source + 1,
                            pos: 0,
                        };
                        if at.source >= nworkers {
                            at.source = TEMPLATES;
                        }
                    }
                }
                continue;
            }
            if at.source != TEMPLATES {
                return ConnPage { conns, next: None };
            }
            // Templates, a shard at a time (a page may run over `max` by
            // one shard's worth; the client prints what it gets).
            let now = (self.now_ms)();
            let next = self.shared.templates.page(at.pos as usize, |k, t| {
                let fwmark = k.proto == 0;
                conns.push(ConnInfo {
                    proto: if fwmark {
                        ConnProto::Ip
                    } else {
                        conn_proto(k.proto)
                    },
                    caddr: IpAddr::V4(k.snet),
                    cport: 0,
                    vaddr: IpAddr::V4(k.vaddr),
                    vport: k.vport,
                    daddr: IpAddr::V4(t.daddr),
                    dport: t.dport,
                    state: if t.assured { "ASSURED" } else { "NONE" }.to_string(),
                    expires_ms: t.expires_ms.saturating_sub(now),
                    template: true,
                });
            });
            match next {
                Some(s) => at.pos = s as u64,
                None => return ConnPage { conns, next: None },
            }
        }
        ConnPage {
            conns,
            next: Some(at),
        }
    }

    fn conn_tab_size(&self) -> u32 {
        self.conn_tab_size
    }
}
