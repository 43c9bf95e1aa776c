//! The queue's frame decoder and its reassembly of streamed items on arbitrary ring bytes
//! and positions, then the codec on every item it lets through, from a slice and from a
//! source that gives it in pieces (as a consumer decodes a streamed item): none may panic,
//! loop, read out of bounds or set aside memory for bytes that never came, whatever
//! another process left in shared memory, and the two decodes must agree.
//!
//! ```text
//! cargo xtask fuzz --only ring_decoder --seconds 300
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
    if let Ok(items) = proc_ipc::internal::fuzzing::decode_ring(ring, head, tail, 1 << 12) {
        for item in items {
            agree::<(u32, u64, Vec<u8>)>(&item);
            agree::<(String, Option<Vec<u64>>)>(&item);
            agree::<(proc_core::codec::ByteBuf, char, i128)>(&item);
        }
    }
}

/// Decodes `item` from a slice and from pieces of it: the same value, or both errors.
fn agree<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(item: &[u8]) {
    let whole = proc_core::codec::decode::<T>(item, 1 << 20);
    let piece = 1 + item.first().map_or(0, |&b| usize::from(b % 16));
    let streamed = proc_core::codec::decode_from::<T, _>(&mut Pieces(item, piece), 1 << 20);
    match (whole, streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("from a slice {a:?}, in pieces {b:?}"),
    }
}

/// Gives its bytes at most `.1` at a time, saying how many are left.
struct Pieces<'a>(&'a [u8], usize);

impl proc_core::codec::Source for Pieces<'_> {
    type Error = std::convert::Infallible;

    fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, Self::Error> {
        // The slice's own reader, in pieces of at most `self.1` bytes.
        proc_core::codec::Source::read(&mut self.0, buf, at_most.min(self.1))
    }

    fn left_at_most(&self) -> usize {
        self.0.len()
    }
}
