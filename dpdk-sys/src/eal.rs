//! EAL start and teardown, lcores, and the TSC clock.
//!
//! EAL starts once per process ([`init`]) and the calling thread becomes the main
//! lcore. Control-path calls in this crate check that EAL is up and hold it up while
//! they run, so none of them can touch DPDK memory before [`init`] or after
//! [`Eal::cleanup`]; the fast-path calls rely instead on pools, rings and started
//! ports existing only while EAL is up.

use std::ffi::{c_int, c_void, CString};
use std::marker::PhantomData;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use crate::{ethdev, raw, Error};

/// `true` between a successful [`init`] and [`Eal::cleanup`]: readers are control-path
/// calls in flight, the writer is cleanup, so teardown never overlaps one of them.
static UP: RwLock<bool> = RwLock::new(false);

/// Pools and rings not yet freed: while any exists, mbufs may still point into EAL
/// memory and cleanup must not run.
pub(crate) static LIVE_OBJECTS: AtomicUsize = AtomicUsize::new(0);

/// Holds EAL up for one control-path call, or fails the way DPDK does without a config.
pub(crate) fn hold(op: &'static str) -> Result<RwLockReadGuard<'static, bool>, Error> {
    let up = UP.read().unwrap_or_else(PoisonError::into_inner);
    if *up {
        Ok(up)
    } else {
        Err(Error::new(op, raw::E_RTE_NO_CONFIG as c_int))
    }
}

/// Proof that EAL is up; [`Eal::cleanup`] consumes it. Not `Send`, because cleanup has
/// to run on the main lcore, the thread that called [`init`].
#[must_use = "dropping the guard leaves EAL running; call Eal::cleanup to tear it down"]
#[derive(Debug)]
pub struct Eal {
    _main_lcore_only: PhantomData<*const ()>,
}

/// Starts EAL with `args` (everything after argv[0], which this adds); the calling
/// thread becomes the main lcore, pinned to its first core.
pub fn init(args: &[String]) -> Result<Eal, Error> {
    let mut up = UP.write().unwrap_or_else(PoisonError::into_inner);
    let mut argv: Vec<*mut c_char> = Vec::with_capacity(args.len() + 2);
    for arg in std::iter::once("ripvs").chain(args.iter().map(String::as_str)) {
        let arg =
            CString::new(arg).map_err(|_| Error::new("rte_eal_init", raw::EINVAL as c_int))?;
        // EAL may keep pointers into argv for the life of the process, so the strings
        // are leaked on purpose (once per process, a few hundred bytes).
        argv.push(arg.into_raw());
    }
    let argc = argv.len() as c_int;
    argv.push(std::ptr::null_mut());
    // SAFETY: argv holds argc valid NUL-terminated strings and a terminating NULL, all
    // leaked so they outlive EAL; the vector itself is leaked below for the same reason.
    let ret = unsafe { raw::rte_eal_init(argc, argv.as_mut_ptr()) };
    std::mem::forget(argv);
    if ret < 0 {
        return Err(Error::last("rte_eal_init"));
    }
    *up = true;
    Ok(Eal {
        _main_lcore_only: PhantomData,
    })
}

impl Eal {
    /// Tears EAL down (rte_eal_cleanup) once workers have returned, closing any port
    /// still open; fails with EBUSY, leaving EAL up, while a pool or ring survives.
    pub fn cleanup(self) -> Result<(), Error> {
        // SAFETY: we are on the main lcore (Eal is not Send); this blocks until every
        // worker's function has returned, which is required before teardown.
        unsafe { raw::rte_eal_mp_wait_lcore() };
        let mut up = UP.write().unwrap_or_else(PoisonError::into_inner);
        ethdev::close_all();
        if LIVE_OBJECTS.load(Ordering::Acquire) != 0 {
            return Err(Error::new("rte_eal_cleanup", raw::EBUSY as c_int));
        }
        *up = false;
        // SAFETY: no control-path call can be in flight (we hold the write lock), every
        // port is closed, and no pool, ring or mbuf remains, so nothing refers to EAL
        // memory any more.
        Error::check("rte_eal_cleanup", unsafe { raw::rte_eal_cleanup() }).map(drop)
    }
}

/// The NUMA socket of `lcore`, or `SOCKET_ID_ANY` (-1) for an lcore id out of range;
/// sockets are `i32` throughout this crate so that -1 is expressible.
pub fn lcore_socket(lcore: u32) -> i32 {
    if lcore >= raw::RTE_MAX_LCORE {
        return raw::SOCKET_ID_ANY;
    }
    // SAFETY: lcore is within lcore_config[], a static array readable at any time.
    unsafe { raw::rte_lcore_to_socket_id(lcore) as i32 }
}

/// The NUMA socket of the calling thread, for allocating its pools and queues locally.
pub fn socket_id() -> i32 {
    // SAFETY: reads a thread-local; valid on any thread.
    unsafe { raw::rte_socket_id() as i32 }
}

/// The main lcore, i.e. the thread that called [`init`].
pub fn main_lcore() -> u32 {
    // SAFETY: reads the static EAL configuration; valid on any thread at any time.
    unsafe { raw::rte_get_main_lcore() }
}

/// The calling thread's lcore id, `LCORE_ID_ANY` (u32::MAX) on a non-EAL thread.
pub fn lcore_id() -> u32 {
    // SAFETY: reads a thread-local; valid on any thread.
    unsafe { raw::ripvs_lcore_id() }
}

/// The enabled lcores other than the main one, in id order: where to launch workers.
pub fn worker_lcores() -> Vec<u32> {
    let mut out = Vec::new();
    // SAFETY: rte_get_next_lcore only reads the static lcore table and returns an id
    // >= RTE_MAX_LCORE when done.
    let mut lcore = unsafe { raw::rte_get_next_lcore(u32::MAX, 1, 0) };
    while lcore < raw::RTE_MAX_LCORE {
        out.push(lcore);
        // SAFETY: as above.
        lcore = unsafe { raw::rte_get_next_lcore(lcore, 1, 0) };
    }
    out
}

/// Runs `f` on worker `lcore` (from the main lcore only, as DPDK requires); its
/// return value comes back through [`wait_lcore`]. A panic in `f` aborts the process,
/// since it cannot unwind through DPDK's C frames.
pub fn remote_launch<F>(lcore: u32, f: F) -> Result<(), Error>
where
    F: FnOnce() -> i32 + Send + 'static,
{
    const OP: &str = "rte_eal_remote_launch";
    let _up = hold(OP)?;
    if lcore_id() != main_lcore() {
        return Err(Error::new(OP, raw::EPERM as c_int));
    }
    // SAFETY: rte_lcore_is_enabled bounds-checks lcore itself.
    if lcore == main_lcore() || unsafe { raw::rte_lcore_is_enabled(lcore) } == 0 {
        return Err(Error::new(OP, raw::EINVAL as c_int));
    }
    let arg = Box::into_raw(Box::new(f)).cast::<c_void>();
    // SAFETY: trampoline::<F> takes back exactly the Box<F> passed as arg; lcore is an
    // enabled worker, so DPDK has a thread and pipe for it.
    let ret = unsafe { raw::rte_eal_remote_launch(Some(trampoline::<F>), arg, lcore) };
    if ret < 0 {
        // SAFETY: on failure (the lcore was busy) DPDK did not hand arg to the worker,
        // so this is still the only owner of the Box.
        drop(unsafe { Box::from_raw(arg.cast::<F>()) });
        return Err(Error::new(OP, ret));
    }
    Ok(())
}

/// Calls the boxed closure that [`remote_launch`] handed to DPDK.
///
/// # Safety
/// `arg` must come from `Box::<F>::into_raw` and be passed here exactly once.
unsafe extern "C" fn trampoline<F: FnOnce() -> i32>(arg: *mut c_void) -> c_int {
    // SAFETY: guaranteed by this function's contract; DPDK calls it once per launch.
    let f = unsafe { Box::from_raw(arg.cast::<F>()) };
    f()
}

/// Waits for the function launched on `lcore` and returns its result (0 if the lcore
/// was idle or does not exist).
pub fn wait_lcore(lcore: u32) -> i32 {
    if lcore >= raw::RTE_MAX_LCORE {
        return 0;
    }
    // SAFETY: lcore is within lcore_config[]; waiting on an idle lcore returns at once.
    unsafe { raw::rte_eal_wait_lcore(lcore) }
}

/// The time-stamp counter, for per-burst timekeeping; read inline on x86-64, where a
/// call into the C shim would cost more than the instruction.
#[inline]
pub fn tsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC is part of the x86-64 baseline and has no preconditions; it is
        // exactly what DPDK's rte_rdtsc() does on this architecture.
        unsafe { std::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: reads the cycle counter; no preconditions.
        unsafe { raw::ripvs_get_tsc_cycles() }
    }
}

/// TSC ticks per second as EAL measured them at init (0 before [`init`]).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a static set once during rte_eal_init.
    unsafe { raw::rte_get_tsc_hz() }
}

/// Creates the virtual device `name` with its `args` (e.g. `"net_tap0"`,
/// `"iface=rtap0"`) after init, for devices that depend on run-time configuration.
pub fn vdev_init(name: &str, args: &str) -> Result<(), Error> {
    const OP: &str = "rte_vdev_init";
    let _up = hold(OP)?;
    let name = CString::new(name).map_err(|_| Error::new(OP, raw::EINVAL as c_int))?;
    let args = CString::new(args).map_err(|_| Error::new(OP, raw::EINVAL as c_int))?;
    // SAFETY: both are valid C strings for the duration of the call; EAL is up.
    Error::check(OP, unsafe {
        raw::rte_vdev_init(name.as_ptr(), args.as_ptr())
    })
    .map(drop)
}

/// Removes the virtual device `name`, and with it its port (stop that port first).
pub fn vdev_uninit(name: &str) -> Result<(), Error> {
    const OP: &str = "rte_vdev_uninit";
    let _up = hold(OP)?;
    let name = CString::new(name).map_err(|_| Error::new(OP, raw::EINVAL as c_int))?;
    let mut port = u16::MAX;
    // SAFETY: valid C string and out-pointer for the call; EAL is up.
    let has_port = unsafe { raw::rte_eth_dev_get_port_by_name(name.as_ptr(), &mut port) } == 0;
    // SAFETY: valid C string for the duration of the call; EAL is up.
    Error::check(OP, unsafe { raw::rte_vdev_uninit(name.as_ptr()) })?;
    if has_port {
        ethdev::forget(port);
    }
    Ok(())
}
