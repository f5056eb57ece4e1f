//! IPv4 options (RFC 791 3.1), checked as Linux's receive path checks
//! them (`ip_options_compile` with an skb, then `ip_rcv_options`): a
//! datagram Linux would drop there is one the director must not forward
//! or answer.
//!
//! Only the structure is checked; nothing is recorded. Linux fills in
//! record-route and timestamp slots as it forwards, ripvs passes options
//! on as they came, as a router that does not support them would (RFC
//! 1812 4.2.2.1 allows that for RR and TS).

use super::{Error, Result};

const EOL: u8 = 0;
const NOP: u8 = 1;
const RR: u8 = 7;
const TS: u8 = 68;
const LSRR: u8 = 131;
const CIPSO: u8 = 134;
const SSRR: u8 = 137;
const RA: u8 = 148;

const TS_TSONLY: u8 = 0;
const TS_TSANDADDR: u8 = 1;
const TS_PRESPEC: u8 = 3;

/// Checks the options area `opts` (the header past its first 20 bytes).
/// Errors for what `ip_options_compile` rejects (a length below 2 or past
/// the header, a pointer below its minimum, a slot that does not fit, a
/// repeated RR, TS or source route, a full overflow counter), for CIPSO,
/// which it rejects unless a CIPSO domain is configured (ripvs has none),
/// and for source routes, which `ip_rcv_options` drops unless
/// `accept_source_route` is on (off by default).
pub fn check(opts: &[u8]) -> Result<()> {
    let (mut rr, mut ts) = (false, false);
    let mut i = 0;
    while let Some(&kind) = opts.get(i) {
        match kind {
            // The rest is padding, whatever it holds (Linux zeroes it).
            EOL => return Ok(()),
            NOP => {
                i += 1;
                continue;
            }
            _ => {}
        }
        let o = &opts[i..];
        let len = *o.get(1).ok_or(Error::Malformed)? as usize;
        if len < 2 || len > o.len() {
            return Err(Error::Malformed);
        }
        let o = &o[..len];
        // The pointer byte, where an option has one (checked below
        // against the option's own minimum length first).
        let ptr = o.get(2).map_or(0, |&p| p as usize);
        match kind {
            // A source route: well-formed or not, Linux drops it.
            LSRR | SSRR => return Err(Error::Malformed),
            RR => {
                if rr || len < 3 || ptr < 4 || (ptr <= len && ptr + 3 > len) {
                    return Err(Error::Malformed);
                }
                rr = true;
            }
            TS => {
                if ts || len < 4 || ptr < 5 {
                    return Err(Error::Malformed);
                }
                let flags = o[3] & 0x0f;
                if ptr <= len {
                    let slot = match flags {
                        TS_TSONLY => 4,
                        TS_TSANDADDR | TS_PRESPEC => 8,
                        // An unknown flag is accepted on receive.
                        _ => 4,
                    };
                    if ptr + slot - 1 > len {
                        return Err(Error::Malformed);
                    }
                } else if flags != TS_PRESPEC && o[3] >> 4 == 15 {
                    // Full, and the overflow count cannot go up.
                    return Err(Error::Malformed);
                }
                ts = true;
            }
            RA if len < 4 => return Err(Error::Malformed),
            CIPSO => return Err(Error::Malformed),
            // Security, stream id, router alert and unknown options: taken
            // as they are.
            _ => {}
        }
        i += len;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(o: &[u8]) -> bool {
        check(o).is_ok()
    }

    #[test]
    fn padding_nop_and_end() {
        assert!(ok(&[]));
        assert!(ok(&[NOP, NOP, NOP, EOL]));
        // Past the end-of-list byte nothing is read.
        assert!(ok(&[EOL, 0xff, 0, 0]));
        assert!(ok(&[NOP, EOL, 7, 0]));
    }

    #[test]
    fn lengths() {
        // Length 0, length 1, and a length running past the header.
        assert!(!ok(&[0x88, 0, 0, 0]));
        assert!(!ok(&[0x88, 1, 0, 0]));
        assert!(!ok(&[0x88, 6, 0, 0]));
        // A type byte with no room for its length.
        assert!(!ok(&[NOP, NOP, NOP, 0x88]));
        // Stream id, 4 bytes, exactly fits.
        assert!(ok(&[0x88, 4, 0x12, 0x34]));
    }

    #[test]
    fn record_route() {
        // 3 slots (len 15), pointer at the first: what `ping -R` sends.
        let mut rr = [0u8; 16];
        rr[..3].copy_from_slice(&[RR, 15, 4]);
        assert!(ok(&rr));
        // Full: the pointer is past the option.
        rr[2] = 16;
        assert!(ok(&rr));
        // Pointer below 4, or a slot that does not fit.
        rr[2] = 3;
        assert!(!ok(&rr));
        rr[2] = 13;
        assert!(!ok(&rr));
        assert!(!ok(&[RR, 2, NOP, EOL]));
        // Twice.
        assert!(!ok(&[RR, 3, 4, RR, 3, 4, EOL, EOL]));
    }

    #[test]
    fn timestamps() {
        let ts = |ptr, flags, len: u8| {
            let mut o = vec![0u8; 40];
            o[..4].copy_from_slice(&[TS, len, ptr, flags]);
            check(&o)
        };
        assert!(ts(5, TS_TSONLY, 40).is_ok());
        assert!(ts(5, TS_TSANDADDR, 36).is_ok());
        assert!(ts(4, TS_TSONLY, 40).is_err(), "pointer below 5");
        assert!(ts(5, TS_TSONLY, 3).is_err(), "shorter than 4");
        assert!(ts(37, TS_TSONLY, 40).is_ok());
        assert!(ts(38, TS_TSONLY, 40).is_err(), "slot past the end");
        assert!(ts(33, TS_PRESPEC, 40).is_ok());
        assert!(ts(34, TS_PRESPEC, 40).is_err());
        // Full, the overflow counter at 14 may still count; at 15 not.
        assert!(ts(41, 0xe0 | TS_TSONLY, 40).is_ok());
        assert!(ts(41, 0xf0 | TS_TSONLY, 40).is_err());
        assert!(ts(41, 0xf0 | TS_PRESPEC, 40).is_ok());
    }

    #[test]
    fn refused_kinds() {
        assert!(!ok(&[LSRR, 7, 4, 10, 0, 0, 1, EOL]));
        assert!(!ok(&[SSRR, 7, 4, 10, 0, 0, 1, EOL]));
        assert!(!ok(&[CIPSO, 8, 0, 0, 0, 1, 0, 0]));
        assert!(ok(&[RA, 4, 0, 0]));
        assert!(!ok(&[RA, 2, NOP, NOP]));
    }
}
