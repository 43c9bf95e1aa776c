//! Malformed input from another process, row by row of the README's bad-input table, for
//! the rows the other test files do not already cover: frames of the wrong length, random
//! byte streams, truncated encodings, a queue's ring scribbled over by a process that
//! ignores its locks (a frame cut short, a huge declared length, an unknown kind, random
//! bytes), and zero and maximal timeouts. Whatever arrives, the receiver gets a value or
//! an error of the documented kind, never a panic or a hang, and goes on working.

mod common;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use common::write_raw;
use multiproc_test_support::rng::Rng;
use proc_core::Process;
use proc_core::codec::{self, ByteBuf};
use proc_ipc::{Error, GetError, PutError, Queue, pipe};
use proc_sync::Event;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = (payload.len() as u64).to_le_bytes().to_vec();
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn a_header_announcing_fewer_bytes_than_follow_leaves_the_rest_to_be_read_as_the_next_frame() {
    let (a, b) = pipe().unwrap();
    // The header says 2; 10 bytes follow: 2, then 8 that read as a header announcing 5,
    // and the peer closes.
    let mut bytes = 2u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"ok");
    bytes.extend_from_slice(&5u64.to_le_bytes());
    write_raw(&a, &bytes);
    drop(a);
    assert_eq!(b.recv_bytes().unwrap(), b"ok");
    assert!(matches!(
        b.recv_bytes(),
        Err(Error::EofInMessage {
            received: 8,
            expected: 13
        })
    ));
    assert!(matches!(b.recv_bytes(), Err(Error::Eof)));
}

#[test]
fn a_whole_frame_holding_a_truncated_encoding_is_a_codec_error_and_the_next_message_arrives() {
    let (a, b) = pipe().unwrap();
    let whole = codec::encode(&("a string of some length".to_string(), 7u64)).unwrap();
    a.send_bytes(&whole[..whole.len() / 2]).unwrap();
    a.send(&("next".to_string(), 8u64)).unwrap();
    assert!(matches!(b.recv::<(String, u64)>(), Err(Error::Codec(_))));
    assert_eq!(b.recv::<(String, u64)>().unwrap(), ("next".to_string(), 8));
}

#[test]
fn random_payloads_in_whole_frames_decode_or_fail_for_that_message_only() {
    let mut rng = Rng::seeded(0x5eed_0001);
    let (a, b) = pipe().unwrap();
    for round in 0..2_000 {
        a.send_bytes(&rng.bytes_below(64)).unwrap();
        // Any outcome but a panic; every error concerns this message alone.
        match b.recv::<(u32, String, Vec<u16>, Option<i64>)>() {
            Ok(_) => {}
            Err(e) => assert!(matches!(e, Error::Codec(_)), "round {round}: {e:?}"),
        }
        // The connection is still in step: a sentinel comes through intact.
        a.send(&round).unwrap();
        assert_eq!(b.recv::<i32>().unwrap(), round);
    }
}

#[test]
fn random_byte_streams_from_a_peer_that_then_closes_end_in_errors_never_a_panic_or_a_hang() {
    let mut rng = Rng::seeded(0x5eed_0002);
    for round in 0..500 {
        let (a, b) = pipe().unwrap();
        let b = b.with_limit(64);
        // Random bytes, sometimes with a frame of a plausible length among them.
        let mut stream = Vec::new();
        for _ in 0..rng.below(4) {
            if rng.below(2) == 0 {
                stream.extend(frame(&rng.bytes_below(100)));
            } else {
                stream.extend(rng.bytes_below(40));
            }
        }
        write_raw(&a, &stream);
        drop(a);
        // Each receive takes at least a header's worth of bytes or ends the stream.
        for _ in 0..=stream.len() / 8 + 1 {
            match b.recv_bytes() {
                Ok(bytes) => assert!(bytes.len() <= 64, "round {round}: over the limit"),
                Err(Error::TooLarge { limit: 64, .. }) => {}
                Err(Error::EofInMessage { .. }) | Err(Error::Eof) => break,
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        assert!(
            matches!(b.recv_bytes(), Err(Error::Eof)),
            "round {round}: the stream did not end"
        );
    }
}

/// A queue's ring, reached the way another process holding its memory file could: through
/// the file, bypassing the queue's locks. Found by the marker bytes of an item in it.
struct Scribbler {
    file: File,
    /// Where the frame holding the marker starts: its 8-byte header.
    frame_at: u64,
}

impl Scribbler {
    fn find(marker: &[u8]) -> Scribbler {
        for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            let is_ring = std::fs::read_link(entry.path())
                .is_ok_and(|link| link.to_string_lossy() == "/memfd:multiproc-queue (deleted)");
            if !is_ring {
                continue;
            }
            let Ok(mut file) = File::options().read(true).write(true).open(entry.path()) else {
                continue;
            };
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).unwrap();
            if let Some(at) = bytes.windows(marker.len()).position(|w| w == marker) {
                // The marker is a ByteBuf of 16 bytes: one length byte before it, then the
                // frame's header.
                return Scribbler {
                    file,
                    frame_at: at as u64 - 1 - 8,
                };
            }
        }
        panic!("no queue ring holds the marker");
    }

    fn write(&mut self, offset: u64, bytes: &[u8]) {
        self.file
            .seek(SeekFrom::Start(self.frame_at + offset))
            .unwrap();
        self.file.write_all(bytes).unwrap();
    }
}

fn marker(seed: u64) -> Vec<u8> {
    let mut rng = Rng::seeded(seed);
    rng.bytes(16)
}

/// A queue holding one marked item: `(queue, scribbler over its frame)`.
fn queue_with_one_item(seed: u64) -> (Queue<ByteBuf>, Scribbler) {
    let q: Queue<ByteBuf> = Queue::new(0).unwrap();
    let marker = marker(seed);
    q.put(ByteBuf::from(marker.clone())).unwrap();
    let scribbler = Scribbler::find(&marker);
    (q, scribbler)
}

/// After whatever happened, the queue takes and gives items again.
fn still_works(q: &Queue<ByteBuf>) {
    assert!(matches!(q.try_get(), Err(GetError::Empty)));
    q.put(ByteBuf::from(vec![1, 2, 3])).unwrap();
    assert_eq!(q.try_get().unwrap().into_vec(), [1, 2, 3]);
}

#[test]
fn a_ring_frame_cut_short_is_reported_corrupt_and_the_queue_goes_on() {
    let (q, mut ring) = queue_with_one_item(1);
    // The frame's payload is 17 bytes; its header now says 22, more than the ring holds.
    ring.write(0, &22u32.to_le_bytes());
    assert!(matches!(
        q.try_get(),
        Err(GetError::Failed(Error::CorruptQueue { .. }))
    ));
    still_works(&q);
}

#[test]
fn a_ring_frame_declaring_a_huge_length_is_reported_corrupt_and_the_queue_goes_on() {
    let (q, mut ring) = queue_with_one_item(2);
    ring.write(0, &u32::MAX.to_le_bytes());
    assert!(matches!(
        q.try_get(),
        Err(GetError::Failed(Error::CorruptQueue { .. }))
    ));
    still_works(&q);
}

#[test]
fn a_ring_frame_of_an_unknown_kind_is_reported_corrupt_and_the_queue_goes_on() {
    let (q, mut ring) = queue_with_one_item(3);
    ring.write(4, &9u32.to_le_bytes());
    assert!(matches!(
        q.try_get(),
        Err(GetError::Failed(Error::CorruptQueue { .. }))
    ));
    still_works(&q);
}

#[test]
fn a_ring_payload_whose_encoding_announces_more_than_it_holds_is_a_codec_error_for_that_item() {
    let (q, mut ring) = queue_with_one_item(4);
    q.put(ByteBuf::from(vec![9; 4])).unwrap();
    // The first payload (17 bytes) now reads as a length prefix of 250 with 16 bytes after.
    ring.write(8, &[250]);
    assert!(matches!(
        q.try_get(),
        Err(GetError::Failed(Error::Codec(_)))
    ));
    assert_eq!(q.try_get().unwrap().into_vec(), [9; 4]);
    still_works(&q);
}

#[test]
fn random_bytes_over_ring_frames_give_items_or_errors_never_a_panic_and_the_queue_goes_on() {
    let mut rng = Rng::seeded(0x5eed_0003);
    for round in 0..300u64 {
        let (q, mut ring) = queue_with_one_item(1_000 + round);
        for i in 0..rng.below(4) {
            q.put(ByteBuf::from(vec![i as u8; rng.below(40) as usize]))
                .unwrap();
        }
        // Random bytes over the first frame and what follows it, up to 80 bytes.
        let offset = rng.below(30);
        let len = 1 + rng.below(50) as usize;
        ring.write(offset, &rng.bytes(len));
        // Every get gives an item or an error about it; the queue empties in a few.
        let mut outcomes = 0;
        loop {
            match q.try_get() {
                Ok(_) => {}
                Err(GetError::Empty) => break,
                Err(GetError::Failed(e)) => {
                    assert!(e.is_about_one_item(), "round {round}: {e:?}");
                }
                Err(e) => panic!("round {round}: {e:?}"),
            }
            outcomes += 1;
            assert!(outcomes <= 10, "round {round}: the queue never empties");
        }
        still_works(&q);
    }
}

#[test]
fn the_ring_decoder_takes_random_rings_and_positions_without_panicking() {
    let mut rng = Rng::seeded(0x5eed_0004);
    for round in 0..20_000 {
        let ring = rng.bytes_below(200);
        let (head, tail) = if rng.below(2) == 0 {
            let head = rng.below(1 << 40);
            (head, head + rng.below(ring.len() as u64 + 2))
        } else {
            (rng.next(), rng.next())
        };
        if let Ok(payloads) = proc_ipc::internal::fuzzing::decode_ring(&ring, head, tail, 1 << 20) {
            let total: u64 = payloads.iter().map(|p| p.len() as u64 + 8).sum();
            assert!(
                total <= tail - head,
                "round {round}: more read than published"
            );
        }
    }
}

#[test]
fn zero_timeouts_try_once_and_report_full_or_empty() {
    let q: Queue<u8> = Queue::new(1).unwrap();
    q.put_timeout(1, Duration::ZERO).unwrap();
    assert!(matches!(
        q.put_timeout(2, Duration::ZERO),
        Err(PutError::Full(2))
    ));
    assert_eq!(q.get_timeout(Duration::ZERO).unwrap(), 1);
    assert!(matches!(
        q.get_timeout(Duration::ZERO),
        Err(GetError::Empty)
    ));
}

/// After a pause takes the item it expects (1); once the test has taken the item it put
/// then (`got_2`), and after another pause, puts 3. (Without waiting for `got_2`, a test
/// that the machine's load kept off its core for the pause would find 3 where 2 was to
/// go, and wait for room forever.)
fn take_1_then_put_3(q: Queue<u8>, got_2: Event) {
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(q.get().unwrap(), 1);
    got_2.wait();
    std::thread::sleep(Duration::from_millis(50));
    q.put(3).unwrap();
}

#[test]
fn the_longest_timeouts_wait_without_overflowing_and_get_what_comes() {
    let q: Queue<u8> = Queue::new(1).unwrap();
    q.put(1).unwrap();
    let got_2 = Event::new().unwrap();
    let mut child = Process::target(take_1_then_put_3, (q.clone(), got_2.clone()));
    child.start().unwrap();
    // Full until the child takes its item; empty until it puts another.
    q.put_timeout(2, Duration::MAX).unwrap();
    assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 2);
    got_2.set();
    assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 3);
    assert_eq!(child.join().unwrap(), 0);
}
