//! Tests of the queue that reach inside it across its files: items of the wrong type, a
//! corrupt ring, processes that die holding a lock or in the middle of a streamed item, and
//! items whose `Serialize` or `Deserialize` misbehave half way.

use proc_core::codec;

use super::ring::{Held, Side};
use super::wait::Wait;
use super::*;
use crate::frame::{self, FrameKind};

/// The same queue, seen with another item type: how a producer of the wrong type, or
/// a buggy one, would fill it.
fn as_queue_of<U, T>(q: &Queue<T>) -> Queue<U> {
    Queue {
        shared: std::sync::Arc::clone(&q.shared),
        _items: PhantomData,
    }
}

#[test]
fn bytes_that_do_not_decode_as_the_item_type_are_an_error_for_that_item_only() {
    let q: Queue<String> = Queue::new(0).unwrap();
    let wrong: Queue<Vec<u32>> = as_queue_of(&q);
    wrong.put(vec![u32::MAX; 3]).unwrap(); // not valid UTF-8 in any reading
    q.put("fine".to_string()).unwrap();
    assert!(matches!(q.get(), Err(GetError::Failed(Error::Codec(_)))));
    assert_eq!(q.get().unwrap(), "fine");
}

#[test]
fn iter_skips_an_item_that_does_not_decode() {
    let q: Queue<u8> = Queue::new(0).unwrap();
    as_queue_of::<u64, _>(&q).put(u64::MAX).unwrap();
    q.put(7).unwrap();
    q.close();
    assert_eq!(q.iter().collect::<Vec<_>>(), [7]);
}

#[test]
fn a_corrupt_ring_is_reported_dropped_and_the_queue_goes_on() {
    let q: Queue<u32> = Queue::new(0).unwrap();
    q.put(1).unwrap();
    // A writer that ignores the locks scribbles over the first frame's header.
    let data = q.shared.ring.data();
    // SAFETY: nobody else uses this queue now; the first 8 bytes are in the ring.
    unsafe { std::ptr::write_bytes(data.as_ptr().cast::<u8>(), 0xFF, 8) };
    assert!(matches!(
        q.get(),
        Err(GetError::Failed(Error::CorruptQueue { .. }))
    ));
    assert!(q.is_empty());
    q.put(2).unwrap();
    assert_eq!(q.get().unwrap(), 2);
}

#[test]
fn positions_that_cannot_be_are_reported_and_repaired() {
    let q: Queue<u32> = Queue::new(0).unwrap();
    q.put_hot().tail.store(u64::MAX, Ordering::Relaxed);
    assert!(matches!(
        q.get(),
        Err(GetError::Failed(Error::CorruptQueue { .. }))
    ));
    q.put(3).unwrap();
    assert_eq!(q.get().unwrap(), 3);
}

/// Runs `f` with `side`'s lock held, in a thread that then ends without releasing
/// it: as a process killed inside `f` leaves the lock to the next taker.
fn die_holding<T: Send + 'static>(
    q: &Queue<T>,
    side: Side,
    f: impl FnOnce(&Held<'_, T>) + Send + 'static,
) {
    let q = q.clone();
    std::thread::spawn(move || {
        let held = Held::acquire(&q, side, Wait::Forever).unwrap().unwrap();
        f(&held);
        std::mem::forget(held);
    })
    .join()
    .unwrap();
}

#[test]
fn a_count_left_behind_by_a_producer_killed_after_publishing_is_finished_by_the_next() {
    let q: Queue<u8> = Queue::new(0).unwrap();
    q.put(1).unwrap();
    // A producer that moved `tail` past its frame and died before counting it.
    die_holding(&q, Side::Producer, |held| {
        held.publish(FrameKind::Inline, &[&codec::encode(&2u8).unwrap()], true);
        held.queue.put_hot().puts.fetch_sub(1, Ordering::Relaxed);
    });
    assert_eq!(q.len(), 1);
    q.put(3).unwrap(); // takes the lock over and finishes the count
    assert_eq!(q.len(), 3);
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 2);
    assert_eq!(q.get().unwrap(), 3);
    assert!(q.is_empty());
}

#[test]
fn a_producer_killed_before_moving_tail_leaves_the_count_alone() {
    let q: Queue<u8> = Queue::new(0).unwrap();
    q.put(1).unwrap();
    die_holding(&q, Side::Producer, |held| {
        // Wrote down where it was going, then died.
        let hot = held.queue.put_hot();
        hot.intent_tail
            .store(hot.tail.load(Ordering::Relaxed) + 10, Ordering::Relaxed);
        hot.intent_puts.store(99, Ordering::Relaxed);
    });
    q.put(2).unwrap();
    assert_eq!(q.len(), 2);
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.get().unwrap(), 2);
    assert!(q.is_empty());
}

#[test]
fn a_count_left_behind_by_a_consumer_killed_after_taking_is_finished_by_the_next() {
    let q: Queue<u8> = Queue::new(1).unwrap();
    q.put(1).unwrap();
    // A consumer that moved `head` past the item and died before counting it: the
    // item is gone with it, and the queue must not look full for ever.
    die_holding(&q, Side::Consumer, |held| {
        let hot = held.queue.get_hot();
        let tail = held.queue.put_hot().tail.load(Ordering::Acquire);
        held.advance(tail, true);
        hot.gets.fetch_sub(1, Ordering::Relaxed);
    });
    assert!(q.is_full());
    assert!(matches!(q.try_get(), Err(GetError::Empty))); // takes over, finishes the count
    assert!(q.is_empty());
    q.put(2).unwrap();
    assert_eq!(q.get().unwrap(), 2);
}

#[test]
fn a_streamed_item_whose_producer_died_half_way_is_dropped_and_the_queue_goes_on() {
    let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(4096).build().unwrap();
    die_holding(&q, Side::Producer, |held| {
        held.queue.put_hot().open_item.store(1, Ordering::Relaxed);
        held.publish(
            FrameKind::ChunkFirst,
            &[&5000u64.to_le_bytes(), &[1; 500]],
            false,
        );
        held.publish(FrameKind::ChunkMore, &[&[1; 500]], false);
    });
    // The next producer ends the dead one's item with an Abort, then puts its own.
    q.put(vec![2; 3000]).unwrap();
    q.put(vec![3; 10]).unwrap();
    assert_eq!(q.get().unwrap(), vec![2; 3000]);
    assert_eq!(q.get().unwrap(), vec![3; 10]);
    assert!(q.is_empty());
}

#[test]
fn the_rest_of_a_streamed_item_whose_consumer_died_is_skipped_and_counted() {
    let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(4096).build().unwrap();
    q.put(vec![1; 3000]).unwrap(); // fits at once: streamed with no consumer there
    q.put(vec![2; 10]).unwrap();
    assert_eq!(q.len(), 2);
    // A consumer takes the first chunk of the first item and dies.
    die_holding(&q, Side::Consumer, |held| {
        let queue = held.queue;
        let head = queue.get_hot().head.load(Ordering::Relaxed);
        let tail = queue.put_hot().tail.load(Ordering::Acquire);
        // SAFETY: the consumers' lock is held; the frame lies between head and tail.
        let first = unsafe { frame::decode(queue.ring(), head, tail) }
            .unwrap()
            .unwrap();
        assert_eq!(first.kind, FrameKind::ChunkFirst);
        held.advance(first.next, false);
    });
    assert_eq!(q.get().unwrap(), vec![2; 10]);
    assert!(q.is_empty());
}

#[test]
fn a_put_that_gives_up_half_way_through_a_streamed_item_delivers_nothing_of_it() {
    let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(4096).build().unwrap();
    // A consumer is "there" (holds its lock) but takes nothing: the producer streams
    // what fits, waits, and gives up at its deadline.
    let consumers = &q.get_side().lock.0;
    consumers.lock("test").unwrap();
    let big = vec![5u8; 20_000];
    match q.put_timeout(big, Duration::from_millis(50)) {
        Err(PutError::Full(item)) => assert_eq!(item.len(), 20_000),
        other => panic!("expected Full, got {other:?}"),
    }
    consumers.unlock("test").unwrap();
    q.put(vec![6; 10]).unwrap();
    assert_eq!(q.get().unwrap(), vec![6; 10]);
    assert!(q.is_empty());
}

/// Serializes as a byte buffer of `len` bytes for its first `same_for` serializations,
/// then of `len + grow` bytes, or panics half way if `panics`: a `Serialize` that
/// writes something else each time. Decodes as any byte buffer.
struct Fickle {
    len: usize,
    grow: isize,
    same_for: usize,
    panics: bool,
    calls: std::cell::Cell<usize>,
}

impl Fickle {
    fn new(len: usize, grow: isize, panics: bool) -> Self {
        // A large item is encoded twice: measured (past the inline cap), then streamed.
        Fickle {
            len,
            grow,
            same_for: 1,
            panics,
            calls: std::cell::Cell::new(0),
        }
    }
}

impl Serialize for Fickle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let call = self.calls.get();
        self.calls.set(call + 1);
        if call < self.same_for {
            return (codec::ByteBuf::from(vec![7; self.len]), 0u8).serialize(s);
        }
        let mut tuple = s.serialize_tuple(2)?;
        let len = self.len.saturating_add_signed(self.grow);
        tuple.serialize_element(&codec::ByteBuf::from(vec![7; len]))?;
        assert!(
            !self.panics,
            "a Serialize that panics half way through an item"
        );
        tuple.serialize_element(&0u8)?;
        tuple.end()
    }
}

impl<'de> serde::Deserialize<'de> for Fickle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (bytes, _): (codec::ByteBuf, u8) = serde::Deserialize::deserialize(d)?;
        Ok(Fickle::new(bytes.len(), 0, false))
    }
}

#[test]
fn an_item_that_writes_other_bytes_than_it_measured_is_refused_and_nothing_of_it_delivered() {
    let q: Queue<Fickle> = Queue::builder().ring_bytes(4096).build().unwrap();
    for grow in [100, -100, -3000] {
        match q.put(Fickle::new(3000, grow, false)) {
            Err(PutError::Failed {
                item,
                error: Error::Codec(codec::CodecError::Encode(message)),
            }) => {
                assert_eq!(item.len, 3000);
                assert!(message.contains("measured 3004 bytes"), "{message}");
            }
            other => panic!("grow {grow}: expected an encode error, got {other:?}"),
        }
    }
    q.put(Fickle::new(10, 0, false)).unwrap();
    q.put(Fickle::new(2500, 0, false)).unwrap(); // streamed
    assert_eq!(q.get().unwrap().len, 10);
    assert_eq!(q.get().unwrap().len, 2500);
    assert!(q.is_empty());
}

#[test]
fn a_serialize_that_panics_half_way_through_a_streamed_item_leaves_nothing_of_it() {
    let q: Queue<Fickle> = Queue::builder().ring_bytes(4096).build().unwrap();
    let put = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        q.put(Fickle::new(3000, 0, true))
    }));
    assert!(put.is_err());
    // The lock is free, the chunks written are abandoned, the queue goes on.
    q.put(Fickle::new(2500, 0, false)).unwrap();
    q.put(Fickle::new(10, 0, false)).unwrap();
    assert_eq!(q.get().unwrap().len, 2500);
    assert_eq!(q.get().unwrap().len, 10);
    assert!(q.is_empty());
}

#[test]
fn a_large_item_streamed_for_a_consumer_that_is_gone_is_taken_back_and_handed_over() {
    let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(4096).build().unwrap();
    // As if a consumer had just taken an item streamed by this process: the next large
    // item is streamed without waiting to see one, fills the ring, finds nobody there.
    q.shared.consumer_seen.mark();
    q.put(vec![9; 20_000]).unwrap();
    // Its frames were taken back: the ring has room for small items again.
    for i in 0..3 {
        q.try_put(vec![i; 900]).unwrap();
    }
    assert_eq!(q.len(), 4);
    assert_eq!(q.get().unwrap(), vec![9; 20_000]);
    for i in 0..3 {
        assert_eq!(q.get().unwrap(), vec![i; 900]);
    }
    assert!(q.is_empty());
}

/// Encodes as a 3000-byte buffer the first time (past the inline limit of a 4 KiB ring),
/// then as nothing at all: a large item measured at 3003 bytes that streams none.
struct Vanishing(std::cell::Cell<usize>);

impl Serialize for Vanishing {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let call = self.0.get();
        self.0.set(call + 1);
        match call {
            0 => codec::ByteBuf::from(vec![1; 3000]).serialize(s),
            _ => s.serialize_unit(),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Vanishing {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        Ok(Vanishing(std::cell::Cell::new(0)))
    }
}

#[test]
fn a_large_item_that_streams_nothing_of_what_it_measured_is_refused_and_the_queue_goes_on() {
    let q: Queue<Vanishing> = Queue::builder().ring_bytes(4096).build().unwrap();
    match q.put(Vanishing(std::cell::Cell::new(0))) {
        Err(PutError::Failed {
            error: Error::Codec(codec::CodecError::Encode(message)),
            ..
        }) => assert!(message.contains("measured 3003 bytes"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(q.is_empty());
    q.put(Vanishing(std::cell::Cell::new(1))).unwrap();
    assert!(q.get_timeout(Duration::from_secs(10)).is_ok());
    assert!(q.is_empty());
}

/// A queue whose items of 20,000 bytes are streamed (past its inline limit) and fit
/// in its ring whole, so that one thread can put them and then get them.
fn streaming_queue<T>() -> Queue<T> {
    let q: Queue<T> = Queue::builder().ring_bytes(64 << 10).build().unwrap();
    assert!(q.shared.inline_limit < 20_000 && q.shared.chunk_bytes < 10_000);
    q
}

#[test]
fn a_streamed_item_that_does_not_decode_is_an_error_for_it_only_and_its_rest_is_skipped() {
    let bytes: Queue<codec::ByteBuf> = streaming_queue();
    let strings: Queue<String> = as_queue_of(&bytes);
    // A length, then bytes that are not UTF-8: the decoder fails in the first chunk.
    bytes.put(codec::ByteBuf::from(vec![0xFF; 20_000])).unwrap();
    strings.put("next".to_string()).unwrap();
    match strings.get() {
        Err(GetError::Failed(e)) => assert!(e.is_about_one_item(), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(strings.get().unwrap(), "next");
    assert!(strings.is_empty());
}

#[test]
fn a_streamed_item_with_bytes_after_its_value_is_an_error_and_the_next_one_arrives() {
    let pairs: Queue<(codec::ByteBuf, u64)> = streaming_queue();
    let bytes: Queue<codec::ByteBuf> = as_queue_of(&pairs);
    pairs
        .put((codec::ByteBuf::from(vec![1; 20_000]), 7))
        .unwrap();
    pairs.put((codec::ByteBuf::from(vec![2; 3]), 8)).unwrap();
    match bytes.get() {
        Err(GetError::Failed(e)) => assert!(e.to_string().contains("left over"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(pairs.get().unwrap(), (codec::ByteBuf::from(vec![2; 3]), 8));
    assert!(pairs.is_empty());
}

/// Reads the first of two byte buffers, then panics, half way through the item.
struct PanicsHalfWay;

impl Serialize for PanicsHalfWay {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> serde::Deserialize<'de> for PanicsHalfWay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Half;
        impl<'de> serde::de::Visitor<'de> for Half {
            type Value = PanicsHalfWay;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("two byte buffers")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<PanicsHalfWay, A::Error> {
                let _: Option<codec::ByteBuf> = seq.next_element()?;
                panic!("a Deserialize that panics half way through a streamed item");
            }
        }
        d.deserialize_tuple(2, Half)
    }
}

#[test]
fn a_deserialize_that_panics_half_way_through_a_streamed_item_leaves_the_queue_usable() {
    type Pair = (codec::ByteBuf, codec::ByteBuf);
    let pairs: Queue<Pair> = streaming_queue();
    let panicky: Queue<PanicsHalfWay> = as_queue_of(&pairs);
    let half = codec::ByteBuf::from(vec![3; 20_000]);
    pairs.put((half.clone(), half)).unwrap();
    let small = (codec::ByteBuf::from(vec![4]), codec::ByteBuf::from(vec![5]));
    pairs.put(small.clone()).unwrap();
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| panicky.get()));
    assert!(got.is_err());
    // Taken up to the panic: the rest of it is skipped, and counted, by the next get.
    assert_eq!(pairs.get_hot().open_item.load(Ordering::Relaxed), 0);
    assert_eq!(pairs.try_get().unwrap(), small);
    assert!(pairs.is_empty());
}

#[test]
fn put_ref_leaves_the_item_with_the_caller_and_says_why_it_did_not_put_it() {
    let q: Queue<String> = Queue::new(1).unwrap();
    let item = "kept".to_string();
    q.put_ref(&item).unwrap();
    assert!(matches!(q.try_put_ref(&item), Err(PutError::Full(()))));
    q.close();
    match q.put_ref(&item) {
        Err(PutError::Closed(())) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(q.get().unwrap(), item);
}

#[test]
fn a_streamed_item_whose_chunks_bring_more_than_announced_is_spoiled_and_the_next_arrives() {
    let q: Queue<Vec<u8>> = Queue::builder().ring_bytes(4096).build().unwrap();
    {
        let held = Held::acquire(&q, Side::Producer, Wait::Forever)
            .unwrap()
            .unwrap();
        held.publish(
            FrameKind::ChunkFirst,
            &[&10u64.to_le_bytes(), &[1; 4]],
            false,
        );
        held.publish(FrameKind::ChunkMore, &[&[1; 10]], false);
        held.publish(FrameKind::ChunkLast, &[], true);
    }
    q.put(vec![2; 10]).unwrap();
    match q.get() {
        Err(GetError::Failed(Error::CorruptQueue { detail })) => {
            assert!(detail.contains("more bytes than it announced"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(q.get().unwrap(), vec![2; 10]);
    assert!(q.is_empty());
}

#[test]
fn a_get_whose_deadline_passes_in_a_dead_producers_streamed_item_is_empty_and_the_queue_goes_on() {
    let q: Queue<codec::ByteBuf> = Queue::builder().ring_bytes(4096).build().unwrap();
    let mut start = 5000u64.to_le_bytes().to_vec();
    start.extend(codec::encode(&codec::ByteBuf::from(vec![1; 4990])).unwrap());
    die_holding(&q, Side::Producer, move |held| {
        held.queue.put_hot().open_item.store(1, Ordering::Relaxed);
        held.publish(FrameKind::ChunkFirst, &[&start[..508]], false);
    });
    assert!(matches!(
        q.get_timeout(Duration::from_millis(20)),
        Err(GetError::Empty)
    ));
    assert_eq!(q.get_hot().open_item.load(Ordering::Relaxed), 0);
    // The next producer ends the dead one's item, then puts its own.
    q.put(codec::ByteBuf::from(vec![2; 10])).unwrap();
    assert_eq!(q.get().unwrap(), codec::ByteBuf::from(vec![2; 10]));
    assert!(q.is_empty());
}
