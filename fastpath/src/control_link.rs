//! Frames between the data plane and the control plane's protocols
//! (VRRP): the director's own protocol traffic enters and leaves through
//! the ports the workers own, so it goes where the data goes, through the
//! same MACs and links, and a control thread never touches a queue.
//!
//! Up: a worker that receives a frame the control plane speaks (IPv4
//! protocol 112, VRRP) copies it into a [`Frame`] and offers it on one
//! bounded channel shared by all workers. Down: the control plane queues
//! whole Ethernet frames (adverts, gratuitous ARPs) for worker 0, which
//! sends them between bursts. Both channels are preallocated arrays of
//! fixed-size frames: nothing is allocated or freed per frame, and a full
//! channel drops the frame and counts it, never blocks.

use crate::io::{Buf, Io};
use crate::output::egress::Egress;
use crate::stats::{DropReason, Event};
use crossbeam_channel::{bounded, Receiver, Sender};

/// The largest frame carried: a standard Ethernet frame without FCS.
pub const FRAME_MAX: usize = 1514;
/// Frames waiting in each direction: VRRP sends a few a second per
/// instance; the room is for bursts of gratuitous ARPs.
pub const QUEUE_LEN: usize = 256;
/// Frames worker 0 sends per pass, so a burst of announcements never
/// holds up the packets waiting in the NIC.
const PER_PASS: usize = 16;

/// One Ethernet frame and the port it came in on or is to leave by.
#[derive(Clone)]
pub struct Frame {
    pub port: u16,
    /// Going down: an IPv4 packet in a frame whose Ethernet header the
    /// worker fills in by route and neighbour (unicast adverts to a peer
    /// whose MAC only the data plane knows); `port` is then ignored.
    pub routed: bool,
    len: u16,
    bytes: [u8; FRAME_MAX],
}

impl Frame {
    /// A copy of `data` for `port`; `None` if longer than [`FRAME_MAX`].
    pub fn new(port: usize, data: &[u8]) -> Option<Frame> {
        if data.len() > FRAME_MAX || port > u16::MAX as usize {
            return None;
        }
        let mut f = Frame {
            port: port as u16,
            routed: false,
            len: data.len() as u16,
            bytes: [0; FRAME_MAX],
        };
        f.bytes[..data.len()].copy_from_slice(data);
        Some(f)
    }

    /// [`Frame::new`] for a packet the worker routes.
    pub fn routed(data: &[u8]) -> Option<Frame> {
        let mut f = Frame::new(0, data)?;
        f.routed = true;
        Some(f)
    }

    pub fn data(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl core::fmt::Debug for Frame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Frame(port {}, {} bytes)", self.port, self.len)
    }
}

/// The control plane's end.
pub struct ControlEnd {
    /// Frames the workers received for the control plane.
    pub rx: Receiver<Frame>,
    /// Frames for worker 0 to send.
    pub tx: Sender<Frame>,
}

/// A worker's end: every worker can pass frames up; worker 0 also sends
/// the control plane's.
#[derive(Clone)]
pub struct WorkerEnd {
    up: Sender<Frame>,
    down: Option<Receiver<Frame>>,
}

/// The channels for `workers` workers.
pub fn link(workers: usize) -> (ControlEnd, Vec<WorkerEnd>) {
    let (up_tx, up_rx) = bounded(QUEUE_LEN);
    let (down_tx, down_rx) = bounded(QUEUE_LEN);
    let ends = (0..workers.max(1))
        .map(|w| WorkerEnd {
            up: up_tx.clone(),
            down: (w == 0).then(|| down_rx.clone()),
        })
        .collect();
    (
        ControlEnd {
            rx: up_rx,
            tx: down_tx,
        },
        ends,
    )
}

impl WorkerEnd {
    /// Passes `pkt`, received on `port`, up to the control plane.
    pub fn pass_up<B: Buf>(&self, eg: &Egress<B>, port: usize, pkt: B) {
        let sent = Frame::new(port, pkt.data()).map(|f| self.up.try_send(f).is_ok());
        match sent {
            Some(true) => eg.stats.event(Event::ToControl),
            Some(false) => eg.stats.count_drop(DropReason::ControlQueueFull),
            None => eg.stats.count_drop(DropReason::Malformed),
        }
    }

    /// Sends what the control plane queued (worker 0 only), a few frames
    /// a pass.
    pub fn send_down<B: Buf, I: Io<Buf = B>>(&self, eg: &mut Egress<B>, io: &mut I, now: u64) {
        let Some(down) = &self.down else { return };
        for _ in 0..PER_PASS {
            let Ok(f) = down.try_recv() else { return };
            let port = f.port as usize;
            if port >= io.nports() {
                eg.stats.count_drop(DropReason::Malformed);
                continue;
            }
            let Some(mut b) = io.alloc() else {
                eg.stats.count_drop(DropReason::NoBuffer);
                continue;
            };
            let data = f.data();
            if !b.set_len(data.len()) {
                eg.stats.count_drop(DropReason::NoBuffer);
                continue;
            }
            b.data_mut().copy_from_slice(data);
            b.set_port(port);
            eg.stats.event(Event::FromControl);
            if f.routed {
                eg.send_ip(io, b, now);
            } else {
                io.tx(port, b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_keep_their_bytes_and_refuse_jumbo() {
        let f = Frame::new(1, &[1, 2, 3]).unwrap();
        assert_eq!((f.port, f.data()), (1, &[1u8, 2, 3][..]));
        assert!(Frame::new(0, &[0; FRAME_MAX]).is_some());
        assert!(Frame::new(0, &[0; FRAME_MAX + 1]).is_none());
    }

    #[test]
    fn only_worker_0_sends_down() {
        let (_c, ends) = link(3);
        assert!(ends[0].down.is_some());
        assert!(ends[1].down.is_none() && ends[2].down.is_none());
    }
}
