//! Bytes from another process cannot make the decoder allocate much more than they are
//! long. A counting allocator records the largest single allocation while malicious inputs
//! are decoded. This binary holds only this test: the allocator counts the whole process.
//! (The test's two parts, from a slice and from a source, run one after the other in it.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use proc_wire::{ByteBuf, CodecError, Source, StreamError};

struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a size is noted.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as in `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// A varint announcing `len`: tag 0xFC, then a little-endian u32.
fn announce(len: u32) -> Vec<u8> {
    let mut bytes = vec![0xFC];
    bytes.extend_from_slice(&len.to_le_bytes());
    bytes
}

#[test]
fn announced_lengths_do_not_turn_into_allocations() {
    let mut inputs = vec![
        announce(u32::MAX - 16),
        announce(1 << 31),
        announce(1 << 28),
    ];
    // Followed by a few bytes, as if the rest were on its way.
    for input in &mut inputs.clone() {
        input.extend_from_slice(b"abc");
        inputs.push(input.clone());
    }
    LARGEST.store(0, Ordering::Relaxed);
    for input in &inputs {
        assert!(matches!(
            proc_wire::decode::<String>(input, usize::MAX),
            Err(CodecError::Decode(_))
        ));
        assert!(proc_wire::decode::<Vec<u8>>(input, usize::MAX).is_err());
        assert!(proc_wire::decode::<Vec<u64>>(input, usize::MAX).is_err());
        assert!(proc_wire::decode::<Vec<String>>(input, usize::MAX).is_err());
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= 16 << 20,
        "decoding 5 to 8 bytes allocated {largest} bytes at once"
    );

    // From a source that does not say how many bytes are left: a string or byte buffer
    // gets room as its bytes come, at most twice what came (or 64 KiB).
    for behind in [3, 1000, 300_000] {
        let mut input = announce(u32::MAX - 16);
        input.extend(std::iter::repeat_n(b'a', behind));
        LARGEST.store(0, Ordering::Relaxed);
        assert!(matches!(
            proc_wire::decode_from::<String, _>(&mut Unknown(&input), usize::MAX),
            Err(StreamError::Codec(CodecError::Decode(_)))
        ));
        assert!(proc_wire::decode_from::<ByteBuf, _>(&mut Unknown(&input), usize::MAX).is_err());
        // A sequence sets room aside for no more elements than bytes may be left: here the
        // limit of 1 KiB.
        assert!(proc_wire::decode_from::<Vec<u64>, _>(&mut Unknown(&input), 1024).is_err());
        assert!(proc_wire::decode_from::<Vec<String>, _>(&mut Unknown(&input), 1024).is_err());
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(
            largest <= (2 * behind).max(64 << 10),
            "decoding {behind} bytes from a source allocated {largest} bytes at once"
        );
    }

    // A value whose memory is many times its encoding still decodes.
    let many_nones = vec![None::<[u64; 4]>; 100_000];
    let bytes = proc_wire::encode(&many_nones).unwrap();
    assert_eq!(
        proc_wire::decode::<Vec<Option<[u64; 4]>>>(&bytes, usize::MAX).unwrap(),
        many_nones
    );
}

/// Gives its bytes 1000 at a time, and does not say how many are left: the decoder can
/// only trust what has come.
struct Unknown<'a>(&'a [u8]);

impl Source for Unknown<'_> {
    type Error = std::convert::Infallible;

    fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, Self::Error> {
        // The slice's own reader, in pieces of at most 1000 bytes.
        Source::read(&mut self.0, buf, at_most.min(1000))
    }

    fn left_at_most(&self) -> usize {
        usize::MAX
    }
}
