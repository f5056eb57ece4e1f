//! The serde side of the schema: what the TOML text deserializes into.
//!
//! Every struct denies unknown fields, and every value that validation may
//! complain about is wrapped in [`Spanned`] so the error can point at it.
//! Integers are read as `i64` and range-checked later, which gives one
//! consistent "out of range (expected LO..=HI)" message instead of serde's
//! "expected u16". The elements of arrays of tables are `Spanned` too: a
//! semantic "missing key" error points at the table that lacks the key.
//! Tables that are not array elements (`eal`, `dataplane`,
//! `ports.exception`, `ipvs`, `defence`, `sync`) are not: toml 0.8 cannot span a table that only
//! exists through dotted keys (`eal.main_lcore = 1`), and fails on it.
//!
//! Adding a key means: a field here, a field in the clean type in
//! `model.rs`, and a line in the matching `build_*` function in
//! `validate.rs` (`vrrp.rs` for `[[vrrp]]`).

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{value::MapAccessDeserializer, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// A struct that must be written as a TOML table.
///
/// serde-derived structs also accept a sequence of their fields, so
/// `eal = [1]` would otherwise fail with a baffling "expected an array" for
/// the first field. This wrapper only accepts a table.
#[derive(Debug)]
pub(crate) struct Table<T>(pub T);

impl<T> Deref for Table<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Table<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TableVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for TableVisitor<T> {
            type Value = Table<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Table<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Table)
            }
        }
        d.deserialize_map(TableVisitor(PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawConfig {
    pub eal: Option<Table<RawEal>>,
    pub dataplane: Option<Table<RawDataplane>>,
    pub ports: Option<Vec<Spanned<Table<RawPort>>>>,
    #[serde(default)]
    pub routes: Vec<Spanned<Table<RawRoute>>>,
    #[serde(default)]
    pub neighbours: Vec<Spanned<Table<RawNeighbour>>>,
    #[serde(default)]
    pub services: Vec<Spanned<Table<RawService>>>,
    #[serde(default)]
    pub fwmarks: Vec<Spanned<Table<RawFwmark>>>,
    pub ipvs: Option<Table<RawIpvs>>,
    pub defence: Option<Table<RawDefence>>,
    pub sync: Option<Table<RawSync>>,
    #[serde(default)]
    pub vrrp: Vec<Spanned<Table<RawVrrp>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawEal {
    pub args: Option<Vec<Spanned<String>>>,
    pub main_lcore: Option<Spanned<i64>>,
    pub worker_lcores: Option<Spanned<Vec<Spanned<i64>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawDataplane {
    pub mbufs_per_socket: Option<Spanned<i64>>,
    pub mbuf_cache: Option<Spanned<i64>>,
    pub rx_descriptors: Option<Spanned<i64>>,
    pub tx_descriptors: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawPort {
    pub name: Spanned<String>,
    pub device: Spanned<String>,
    pub mtu: Option<Spanned<i64>>,
    pub mac: Option<Spanned<String>>,
    #[serde(default)]
    pub addresses: Vec<Spanned<String>>,
    pub exception: Option<Table<RawException>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawException {
    pub enabled: Option<Spanned<bool>>,
    pub iface: Option<Spanned<String>>,
    pub device: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRoute {
    pub prefix: Spanned<String>,
    pub via: Option<Spanned<String>>,
    pub port: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawNeighbour {
    pub address: Spanned<String>,
    pub mac: Spanned<String>,
    pub port: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawService {
    pub protocol: Option<Spanned<String>>,
    pub vip: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub fwmark: Option<Spanned<i64>>,
    pub scheduler: Option<Spanned<String>>,
    pub sched_flags: Option<Vec<Spanned<String>>>,
    pub persistent: Option<Spanned<i64>>,
    pub netmask: Option<Spanned<String>>,
    pub one_packet: Option<Spanned<bool>>,
    pub quiescent: Option<Spanned<bool>>,
    pub sorry_server: Option<Table<RawSorryServer>>,
    pub health: Option<Table<RawHealth>>,
    #[serde(default)]
    pub real_servers: Vec<Spanned<Table<RawRealServer>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawRealServer {
    pub address: Spanned<String>,
    pub port: Option<Spanned<i64>>,
    pub method: Option<Spanned<String>>,
    pub weight: Option<Spanned<i64>>,
    pub upper_threshold: Option<Spanned<i64>>,
    pub lower_threshold: Option<Spanned<i64>>,
    pub health: Option<Table<RawHealth>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawSorryServer {
    pub address: Spanned<String>,
    pub port: Option<Spanned<i64>>,
    pub method: Option<Spanned<String>>,
}

/// `[services.health]` and its per-real-server override
/// `[services.real_servers.health]`: every key is optional in both, an
/// override's keys win one by one. Times are seconds, integer or float
/// (serde's f64 takes TOML integers too).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawHealth {
    pub checker: Option<Spanned<String>>,
    pub interval: Option<Spanned<f64>>,
    pub timeout: Option<Spanned<f64>>,
    pub delay: Option<Spanned<f64>>,
    pub retries: Option<Spanned<i64>>,
    pub successes: Option<Spanned<i64>>,
    pub initial: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub source: Option<Spanned<String>>,
    pub interface: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub status: Option<Spanned<String>>,
    pub expect: Option<Spanned<String>>,
    pub payload: Option<Spanned<String>>,
    pub command: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawFwmark {
    pub mark: Spanned<i64>,
    #[serde(rename = "match", default)]
    pub rules: Vec<Spanned<Table<RawMarkRule>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawMarkRule {
    pub protocol: Option<Spanned<String>>,
    pub destination: Spanned<String>,
    pub ports: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawIpvs {
    pub expire_nodest_conn: Option<Spanned<bool>>,
    pub expire_quiescent_template: Option<Spanned<bool>>,
    pub conn_reuse_mode: Option<Spanned<i64>>,
    pub sloppy_tcp: Option<Spanned<bool>>,
    pub sloppy_sctp: Option<Spanned<bool>>,
    pub timeout_tcp: Option<Spanned<i64>>,
    pub timeout_tcpfin: Option<Spanned<i64>>,
    pub timeout_udp: Option<Spanned<i64>>,
    pub backup_only: Option<Spanned<bool>>,
    pub drop_entry: Option<Spanned<i64>>,
    pub drop_packet: Option<Spanned<i64>>,
    pub secure_tcp: Option<Spanned<i64>>,
    pub am_droprate: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawDefence {
    pub table_threshold: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawSync {
    pub state: Option<Spanned<String>>,
    pub interface: Option<Spanned<String>>,
    pub syncid: Option<Spanned<i64>>,
    pub group: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub ttl: Option<Spanned<i64>>,
    pub maxlen: Option<Spanned<i64>>,
    pub version: Option<Spanned<i64>>,
    pub threshold: Option<Spanned<i64>>,
    pub period: Option<Spanned<i64>>,
    pub refresh_period: Option<Spanned<i64>>,
    pub retries: Option<Spanned<i64>>,
    pub persist_mode: Option<Spanned<bool>>,
    pub full_sync: Option<Spanned<bool>>,
}

/// `[[vrrp]]`: one VRRP instance, keys named as keepalived's
/// `vrrp_instance` where it has one. `advert_int` is seconds, integer or
/// float, like the health-check times.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct RawVrrp {
    pub name: Spanned<String>,
    pub port: Spanned<String>,
    pub vrid: Spanned<i64>,
    pub priority: Option<Spanned<i64>>,
    pub version: Option<Spanned<i64>>,
    pub advert_int: Option<Spanned<f64>>,
    pub preempt: Option<Spanned<bool>>,
    pub preempt_delay: Option<Spanned<i64>>,
    pub state: Option<Spanned<String>>,
    pub addresses: Spanned<Vec<Spanned<String>>>,
    pub unicast_peers: Option<Vec<Spanned<String>>>,
    pub auth_pass: Option<Spanned<String>>,
    pub garp_master_delay: Option<Spanned<i64>>,
    pub garp_master_repeat: Option<Spanned<i64>>,
    pub garp_master_refresh: Option<Spanned<i64>>,
    pub garp_master_refresh_repeat: Option<Spanned<i64>>,
    pub notify_master: Option<Spanned<String>>,
    pub notify_backup: Option<Spanned<String>>,
    pub notify_fault: Option<Spanned<String>>,
    pub notify: Option<Spanned<String>>,
    pub sync_daemon: Option<Spanned<bool>>,
    pub use_vmac: Option<Spanned<bool>>,
}
