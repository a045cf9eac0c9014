//! The dataplane lookup (load snapshot + longest-prefix match + next-hop choice) must not
//! allocate: counted with a wrapping global allocator, in its own test binary.

use gateway::routing::{Rib, RoutingTable, SelectionMode, TunnelId};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

#[test]
fn lookup_does_not_allocate() {
    let mut rib = Rib::new();
    rib.add_tunnel(TunnelId(0), SelectionMode::Ecmp);
    rib.add_tunnel(TunnelId(1), SelectionMode::Ecmp);
    rib.set_tunnel_up(TunnelId(0), true).unwrap();
    rib.set_tunnel_up(TunnelId(1), true).unwrap();
    for i in 0..=255u8 {
        rib.add_static(
            format!("10.{i}.0.0/16").parse().unwrap(),
            &[TunnelId(0), TunnelId(1)],
        )
        .unwrap();
        rib.bgp_announce(format!("2001:db8:{i:x}::/48").parse().unwrap(), TunnelId(1))
            .unwrap();
    }
    let table = RoutingTable::new();
    table.publish_rib(&rib);
    let mut pkt = [0u8; 40];
    pkt[0] = 0x45;
    pkt[9] = 17;
    pkt[16..20].copy_from_slice(&[10, 7, 1, 1]);
    // First use of a thread may set up arc-swap's per-thread slot.
    let _ = table.load().route_packet(&pkt);

    let before = allocs();
    assert!(before > 0, "the counter sees the setup allocations");
    let mut hits = 0u32;
    for i in 0..10_000u32 {
        pkt[17] = (i % 256) as u8;
        pkt[22] = (i % 7) as u8;
        let fib = table.load();
        hits += u32::from(fib.route_packet(&pkt).is_some());
        hits += u32::from(fib.lookup("2001:db8:a::1".parse().unwrap(), i).is_some());
    }
    let after = allocs();
    assert_eq!(hits, 20_000);
    assert_eq!(after - before, 0, "lookups allocated");
}
