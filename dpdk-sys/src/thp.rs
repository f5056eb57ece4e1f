//! Transparent huge pages for large, long-lived tables outside DPDK's own
//! memory (the connection tables): DPDK's hugepages serve its pools, while
//! ripvs's tables come from the Rust heap, on 4 KiB pages by default. A
//! table of millions of 64-byte entries then costs a TLB miss on nearly
//! every lookup; on 2 MiB pages its translations fit the TLB. It lives here
//! because `madvise` is `unsafe` to call and this crate is where ripvs's
//! `unsafe` is allowed.

/// Bytes in an x86-64 (and default aarch64) transparent huge page.
pub const HUGE_PAGE: usize = 2 << 20;

/// The whole huge pages inside `[start, start + len)`: (first, bytes).
fn interior(start: usize, len: usize) -> Option<(usize, usize)> {
    let first = start.checked_next_multiple_of(HUGE_PAGE)?;
    let end = start.checked_add(len)? / HUGE_PAGE * HUGE_PAGE;
    (end > first).then(|| (first, end - first))
}

/// Asks the kernel to back the 2 MiB-aligned interior of the range with
/// transparent huge pages (`madvise(MADV_HUGEPAGE)`), effective for pages
/// not yet touched, so call it on memory allocated but not yet written.
/// Returns whether the advice was taken: false when the range holds no
/// whole huge page or the kernel refused (no THP support, not mapped).
/// Either way nothing changes but page sizes, so callers may ignore it.
///
/// With THP set to `madvise` (Debian's default) this is what makes the
/// kernel use huge pages at all; with `always` it was going to; with
/// `never` the call succeeds and changes nothing.
pub fn advise_hugepage(start: *const u8, len: usize) -> bool {
    let Some((first, bytes)) = interior(start as usize, len) else {
        return false;
    };
    // SAFETY: MADV_HUGEPAGE only sets a flag on the mappings covering the
    // page-aligned range (the kernel checks it and fails with ENOMEM where
    // nothing is mapped); it neither moves nor changes memory contents, so
    // no Rust object can be affected whatever the address.
    let ret = unsafe { libc::madvise(first as *mut libc::c_void, bytes, libc::MADV_HUGEPAGE) };
    ret == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_huge_pages_are_advised() {
        const H: usize = HUGE_PAGE;
        assert_eq!(interior(0, H), Some((0, H)));
        assert_eq!(interior(1, 2 * H), Some((H, H)));
        assert_eq!(interior(1, 2 * H - 2), None, "ends just short of 2H");
        assert_eq!(interior(H - 1, H), None);
        assert_eq!(interior(H - 1, H + 1), Some((H, H)));
        assert_eq!(interior(H + 5, 4 * H), Some((2 * H, 3 * H)));
        assert_eq!(interior(usize::MAX - 3, 8), None, "overflow is no page");
    }

    /// The advice makes a fresh anonymous mapping fault in huge pages
    /// where THP is not `never` (the mode is machine-wide: reported and
    /// skipped, not silently passed, where it is).
    #[test]
    fn advised_memory_gets_huge_pages() {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        let len = 16 * HUGE_PAGE;
        let mut v: Vec<u8> = Vec::with_capacity(len);
        let p = v.as_ptr();
        assert!(advise_hugepage(p, len), "madvise refused (THP: {mode:?})");
        assert!(!advise_hugepage(p, HUGE_PAGE / 2), "no whole page in it");
        if mode.contains("[never]") || mode.is_empty() {
            eprintln!("SKIPPED: transparent huge pages are `never` here ({mode:?})");
            return;
        }
        v.resize(len, 1);
        // The advised part is a mapping of its own now: look there.
        let (first, _) = interior(p as usize, len).expect("16 huge pages hold 15 whole");
        let huge = anon_huge_kb(first);
        assert!(huge > 0, "no AnonHugePages in the advised mapping");
        assert!(v.iter().all(|&b| b == 1));
    }

    /// AnonHugePages (kB) of the mapping of this process holding `addr`.
    fn anon_huge_kb(addr: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(a), Ok(b)) =
                        (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                    {
                        inside = (a..b).contains(&addr);
                        continue;
                    }
                }
            }
            if let (true, Some(v)) = (inside, line.strip_prefix("AnonHugePages:")) {
                return v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            }
        }
        0
    }
}
