//! The TCP options the SYN proxy reads and writes (RFC 9293, 7323, 2018):
//! MSS, window scale, SACK-permitted, SACK blocks and timestamps.
//!
//! Reading never fails: a malformed option list ends the scan where it
//! stops making sense, with what was found before (as Linux's
//! `tcp_parse_options` does), so a bad option costs the options, never a
//! panic or a wrong offset.

pub const EOL: u8 = 0;
pub const NOP: u8 = 1;
pub const MSS: u8 = 2;
pub const WSCALE: u8 = 3;
pub const SACK_PERM: u8 = 4;
pub const SACK: u8 = 5;
pub const TS: u8 = 8;

/// The longest option list [`write_syn`] writes.
pub const MAX_SYN_OPTS: usize = 20;

/// Where a segment's options are, as offsets into the option bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_perm: bool,
    /// The timestamp option's TSval (TSecr follows it).
    pub ts: Option<usize>,
    /// The first SACK block and how many there are.
    pub sack: Option<(usize, usize)>,
}

impl Layout {
    /// The timestamp values, if the option is there.
    pub fn ts_values(&self, opts: &[u8]) -> Option<(u32, u32)> {
        let at = self.ts?;
        Some((be32(opts, at)?, be32(opts, at + 4)?))
    }
}

pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// Scans an option list (the bytes between the fixed header and the data).
pub fn scan(opts: &[u8]) -> Layout {
    let mut l = Layout::default();
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        match kind {
            EOL => break,
            NOP => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let Some(&len) = opts.get(i + 1) else { break };
        let len = len as usize;
        if len < 2 || i + len > opts.len() {
            break;
        }
        let body = &opts[i + 2..i + len];
        match (kind, len) {
            (MSS, 4) => l.mss = Some(u16::from_be_bytes([body[0], body[1]])),
            (WSCALE, 3) => l.wscale = Some(body[0]),
            (SACK_PERM, 2) => l.sack_perm = true,
            (TS, 10) => l.ts = Some(i + 2),
            (SACK, _) if (len - 2).is_multiple_of(8) && len > 2 => {
                l.sack = Some((i + 2, (len - 2) / 8))
            }
            _ => {}
        }
        i += len;
    }
    l
}

/// Writes a SYN or SYN-ACK's options in Linux's order and padding (MSS,
/// SACK-permitted and timestamps, window scale) into `out`, returning
/// their length, a multiple of 4 and at most [`MAX_SYN_OPTS`].
pub fn write_syn(
    out: &mut [u8; MAX_SYN_OPTS],
    mss: u16,
    sack: bool,
    ts: Option<(u32, u32)>,
    wscale: Option<u8>,
) -> usize {
    let mut n = 0;
    let mut put = |b: &[u8]| {
        out[n..n + b.len()].copy_from_slice(b);
        n += b.len();
    };
    let m = mss.to_be_bytes();
    put(&[MSS, 4, m[0], m[1]]);
    match (ts, sack) {
        (Some((v, e)), _) => {
            put(if sack { &[SACK_PERM, 2] } else { &[NOP, NOP] });
            put(&[TS, 10]);
            put(&v.to_be_bytes());
            put(&e.to_be_bytes());
        }
        (None, true) => put(&[NOP, NOP, SACK_PERM, 2]),
        (None, false) => {}
    }
    if let Some(w) = wscale {
        put(&[NOP, WSCALE, 3, w]);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linux_syn_scans() {
        // Linux's SYN: MSS 1460, SACK_PERM, TS 0x01020304/0, NOP, WS 7.
        let o = [
            2, 4, 5, 180, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        let l = scan(&o);
        assert_eq!(
            l,
            Layout {
                mss: Some(1460),
                wscale: Some(7),
                sack_perm: true,
                ts: Some(8),
                sack: None,
            }
        );
        assert_eq!(l.ts_values(&o), Some((0x0102_0304, 0)));
    }

    #[test]
    fn sack_blocks_and_bad_lists() {
        // NOP NOP TS, NOP NOP SACK with two blocks.
        let mut o = vec![1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 8, 1, 1, 5, 18];
        o.extend_from_slice(&[0; 16]);
        let l = scan(&o);
        assert_eq!((l.ts, l.sack), (Some(4), Some((16, 2))));
        // A length running past the end, a zero length, a short SACK:
        // the scan stops or skips, keeping what came before.
        assert_eq!(scan(&[2, 4, 5, 180, 8, 10, 0]).mss, Some(1460));
        assert_eq!(scan(&[2, 4, 5, 180, 8, 10, 0]).ts, None);
        assert_eq!(scan(&[3, 0, 3, 3, 7]), Layout::default());
        assert_eq!(scan(&[5, 6, 0, 0, 0, 0]).sack, None);
        assert_eq!(scan(&[2, 3, 5, 180]).mss, None);
        assert_eq!(scan(&[0, 2, 4, 5, 180]).mss, None);
    }

    #[test]
    fn syn_options_are_written_as_linux_writes_them() {
        let mut o = [0u8; MAX_SYN_OPTS];
        let n = write_syn(&mut o, 1460, true, Some((5, 6)), Some(7));
        assert_eq!(
            o[..n],
            [2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6, 1, 3, 3, 7]
        );
        let n = write_syn(&mut o, 536, false, Some((5, 6)), None);
        assert_eq!(o[..n], [2, 4, 2, 24, 1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6]);
        let n = write_syn(&mut o, 1300, true, None, Some(0));
        assert_eq!(o[..n], [2, 4, 5, 20, 1, 1, 4, 2, 1, 3, 3, 0]);
        let n = write_syn(&mut o, 1440, false, None, None);
        assert_eq!(o[..n], [2, 4, 5, 160]);
        // What is written scans back.
        let n = write_syn(&mut o, 1460, false, Some((1, 2)), Some(14));
        let l = scan(&o[..n]);
        assert_eq!(
            (l.mss, l.wscale, l.sack_perm, l.ts_values(&o[..n])),
            (Some(1460), Some(14), false, Some((1, 2)))
        );
    }
}
