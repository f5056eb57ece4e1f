//! The one error type of the safe layer.

use std::ffi::{c_int, CStr};
use std::fmt;

use crate::raw;

/// A DPDK call that failed: which call, and the negative errno it reported, so logs
/// name the operation and callers can still match on the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    /// The DPDK function that failed, e.g. `"rte_eth_dev_configure"`.
    pub op: &'static str,
    /// Negative errno (DPDK's convention), including DPDK's own codes above 1000.
    pub code: i32,
}

impl Error {
    /// Builds an error from an errno of either sign, since DPDK returns `-errno` but
    /// sets `rte_errno` positive.
    pub(crate) fn new(op: &'static str, errno: c_int) -> Error {
        Error {
            op,
            code: -errno.saturating_abs(),
        }
    }

    /// Builds an error from `rte_errno`, for the calls that return -1 or NULL.
    pub(crate) fn last(op: &'static str) -> Error {
        // SAFETY: reads this thread's `rte_errno`; no pointers involved.
        Error::new(op, unsafe { raw::ripvs_errno() })
    }

    /// Maps DPDK's "negative means error" return convention onto `Result`.
    pub(crate) fn check(op: &'static str, ret: c_int) -> Result<c_int, Error> {
        if ret < 0 {
            Err(Error::new(op, ret))
        } else {
            Ok(ret)
        }
    }

    /// The positive errno, for comparing with `libc`-style constants.
    pub fn errno(&self) -> i32 {
        -self.code
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: rte_strerror accepts any value and returns a NUL-terminated string,
        // either static or in a per-thread buffer that stays valid until this thread
        // calls it again; it is copied out before anything else runs on this thread.
        let text = unsafe { CStr::from_ptr(raw::rte_strerror(self.errno())) };
        write!(f, "{}: {} ({})", self.op, text.to_string_lossy(), self.code)
    }
}

impl std::error::Error for Error {}
