//! Which receive path the packet tests drive. With `RIPVS_TEST_SCALAR=1`
//! every worker a test builds hands each frame to `Host::input`, the
//! general path, instead of the burst path `Worker::poll` normally takes
//! (`Worker::set_scalar`). The tests assert exact bytes and counters, so
//! running them both ways (tools/test does) checks that the two paths
//! agree on everything the tests look at. Read here, in test support,
//! and never in the library: the data plane takes no orders from its
//! environment.

use fastpath::{Buf, Worker};

/// `w`, on the path `RIPVS_TEST_SCALAR` asks for: unset, empty or `0` for
/// the burst path, `1` for the scalar one. Anything else is a typo that
/// would silently test the default path, so it fails the test instead.
pub fn as_env_says<B: Buf>(mut w: Worker<B>) -> Worker<B> {
    let on = match std::env::var("RIPVS_TEST_SCALAR") {
        Err(std::env::VarError::NotPresent) => false,
        Ok(v) if v.is_empty() || v == "0" => false,
        Ok(v) if v == "1" => true,
        other => panic!("RIPVS_TEST_SCALAR={other:?}: expected 0 or 1"),
    };
    w.set_scalar(on);
    w
}
