//! The get path: frames are taken at `head` under the consumers' lock, and an item comes
//! out whole (copied out, and decoded once the lock is let go), streamed (decoded as its
//! chunks are copied out: the `stream` module) or handed over (the `handoff` module); a
//! closed queue is drained first, and a corrupt ring is reported and emptied.

use proc_core::internal::handle_wire;
use std::sync::atomic::Ordering;

use proc_core::codec;
use proc_sync::internal::Deadline;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handle::Queue;
use super::handoff::HandedOver;
use super::ring::{Held, Side};
use super::scratch::with_scratch;
use super::stream::{Chunk, StreamStop};
use super::wait::{PRODUCER_CHECK, Wait, await_change};
use crate::chunk::{self, Assembly, Outcome};
use crate::error::{Error, GetError};
use crate::frame::{FrameError, RingPayload};

impl<T: Serialize + DeserializeOwned> Queue<T> {
    pub(super) fn get_with(&self, wait: Wait) -> Result<T, GetError> {
        with_scratch(|buf| self.get_through(buf, wait))
    }

    /// `get_with`, copying a whole item out into `buf` (this thread's scratch buffer)
    /// under the lock and decoding it after the lock is released. A streamed item is
    /// decoded as its chunks are copied out of the ring (see `receive_streamed`).
    fn get_through(&self, buf: &mut Vec<u8>, mut wait: Wait) -> Result<T, GetError> {
        let shared = &*self.shared;
        let mut held = match Held::acquire(self, Side::Consumer, wait)? {
            Some(held) => held,
            None => return Err(GetError::Empty),
        };
        let mut assembly = Assembly::new(shared.item_limit);
        let mut closed_and_drained = false;
        loop {
            let found = match held.next_frame() {
                (Ok(Some(found)), _) => found,
                (Err(corrupt), _) => return Err(self.corrupted(held, corrupt)),
                (Ok(None), tail) => {
                    if self.is_closed() {
                        if closed_and_drained {
                            return Err(GetError::Closed);
                        }
                        // A producer may have seen the queue open just before `close` and be
                        // publishing now: its put will return Ok, so its item must not be
                        // stranded. Wait until the producers' lock is free (any producer
                        // after that sees `closed`), then look once more. Without blocking
                        // on that lock: its holder may be streaming an item and waiting for
                        // a consumer to take the chunks.
                        drop(held);
                        match Held::try_acquire(self, Side::Producer)? {
                            Some(producers) => {
                                drop(producers);
                                closed_and_drained = true;
                            }
                            None => {
                                let soon = Deadline::after(PRODUCER_CHECK);
                                let bell = &self.put_side().wait.0.bell;
                                await_change(
                                    &self.put_hot().tail,
                                    tail,
                                    bell,
                                    || false,
                                    Some(&soon),
                                );
                            }
                        }
                        held = match Held::acquire(self, Side::Consumer, Wait::Forever)? {
                            Some(held) => held,
                            None => return Err(GetError::Closed),
                        };
                        continue;
                    }
                    match held.wait_for_change(&mut wait)? {
                        Some(relocked) => held = relocked,
                        None => return Err(GetError::Empty),
                    }
                    continue;
                }
            };
            // The payload lies between head and tail, which this thread reads under the
            // consumers' lock (see RingPayload).
            let mut payload = RingPayload {
                ring: self.ring(),
                offset: found.payload_offset,
            };
            match assembly.accept(found.kind, found.payload_len, &mut payload) {
                Outcome::Consumed { ends_item } => held.advance(found.next, ends_item),
                // Not while no item is being received; looked at again if it were.
                Outcome::Abandoned => {}
                Outcome::Whole => {
                    buf.clear();
                    chunk::append_from(buf, found.payload_len, 0, &mut payload);
                    held.advance(found.next, true);
                    drop(held);
                    return codec::decode(buf, shared.item_limit)
                        .map_err(|e| GetError::Failed(e.into()));
                }
                Outcome::Spoiled(detail) => {
                    held.advance(found.next, true);
                    return Err(GetError::Failed(Error::CorruptQueue { detail }));
                }
                Outcome::Handoff => {
                    buf.clear();
                    chunk::append_from(buf, found.payload_len, 0, &mut payload);
                    let (message, carried) = match self.take_handoff(buf) {
                        // Taken by a consumer that died; gone with it. Next frame.
                        HandedOver::Gone => {
                            held.advance(found.next, true);
                            continue;
                        }
                        // Not taken: the item stays first in the queue, whole.
                        HandedOver::Left(error) => return Err(GetError::Failed(error)),
                        HandedOver::Taken(taken) => {
                            held.advance(found.next, true);
                            drop(held);
                            taken?
                        }
                    };
                    let decoded = handle_wire::decode(&message, shared.item_limit, carried);
                    return decoded.map_err(|e| GetError::Failed(e.into()));
                }
                Outcome::Bytes { from, len, last } => {
                    let first = Chunk {
                        payload_offset: found.payload_offset,
                        at: from,
                        end: from + len,
                        last,
                        next: found.next,
                    };
                    match self.receive_streamed(&held, &mut assembly, &wait, first) {
                        Ok(received) => return received,
                        // Its producer died half way: look at what came after it.
                        Err(StreamStop::Abandoned) => debug_assert!(!assembly.is_receiving()),
                        Err(StreamStop::GaveUp) => return Err(GetError::Empty),
                        Err(StreamStop::Spoiled(detail)) => {
                            return Err(GetError::Failed(Error::CorruptQueue { detail }));
                        }
                        Err(StreamStop::Corrupt(corrupt)) => {
                            return Err(self.corrupted(held, corrupt));
                        }
                    }
                }
            }
        }
    }

    /// Drops what a consumer knows of the ring after finding bytes that are not a frame,
    /// and empties the ring, so that the queue is usable again: what is in it cannot be read
    /// back. Someone wrote the ring without the lock.
    fn corrupted(&self, held: Held<'_, T>, corrupt: FrameError) -> GetError {
        self.get_hot().open_item.store(0, Ordering::Relaxed);
        drop(held);
        match self.reset_from_outside() {
            Ok(()) => GetError::Failed(Error::CorruptQueue {
                detail: corrupt.to_string(),
            }),
            Err(e) => GetError::Failed(e),
        }
    }
}
