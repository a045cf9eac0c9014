//! End-to-end tests of vpngw. The harness itself (namespaces, owned processes, strongSwan,
//! BIRD, iperf3, ping and vpngw drivers) is the `netlab` crate, which `vpngw lab` uses too;
//! it is re-exported here whole, so tests and benches keep writing `e2e::Netns` etc.
//!
//! Tests need root. Start each with [`skip_unless_root`]; tools that are missing make
//! the harness fail with a hint to run `scripts/install-test-deps`.

use std::io::Write as _;

pub use netlab::*;

/// For the top of every end-to-end test: returns `true` (and says so on stderr, so a
/// skipped test is never mistaken for a pass) when not root; the test should then
/// return at once.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    // Written to the stderr handle directly: libtest captures eprintln! of passing
    // tests, and a skip must be visible in the normal output.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: end-to-end tests need root (network namespaces, veth, TUN); \
         run `sudo -E cargo test -p e2e` or scripts/test as root"
    );
    true
}
