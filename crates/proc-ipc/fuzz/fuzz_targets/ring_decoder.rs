//! The queue's frame decoder and its reassembly of streamed items on arbitrary ring bytes
//! and positions, then the codec on every item it lets through: none may panic, loop,
//! read out of bounds or set aside memory for bytes that never came, whatever another
//! process left in shared memory.
//!
//! ```text
//! cargo +nightly fuzz run ring_decoder -- -max_total_time=300
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 14 {
        return;
    }
    let word = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().unwrap());
    let ring = &data[14..];
    // Positions as a consistent ring state would have them (tail - head <= capacity)…
    let head = u64::from(u32::from_le_bytes(data[..4].try_into().unwrap()));
    let used = u64::from(u16::from_le_bytes(data[4..6].try_into().unwrap()));
    check(ring, head, head + used);
    // …and as a scribbler might leave them.
    check(ring, word(0), word(6));
});

fn check(ring: &[u8], head: u64, tail: u64) {
    // A limit small enough that announced totals often pass it.
    if let Ok(items) = proc_ipc::fuzzing::decode_ring(ring, head, tail, 1 << 12) {
        for item in items {
            let _ = proc_core::codec::decode::<(u32, u64, Vec<u8>)>(&item, 1 << 20);
            let _ = proc_core::codec::decode::<(String, Option<Vec<u64>>)>(&item, 1 << 20);
        }
    }
}
