//! A consumer's take of an item handed over as a memory file (the side channel, its
//! datagrams and their ids are in the `side_channel` module): the datagram a hand-over frame
//! names, orphans of producers that died dropped on the way, and what came with it checked.

use std::os::fd::OwnedFd;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handle::Queue;
use crate::error::Error;
use crate::frame::Handoff;
use crate::side_channel::{Message, SideChannel};

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// The bytes of the item a hand-over frame names, and the descriptors of the handles it
    /// holds (see [`HandedOver`]). Runs under the lock.
    pub(super) fn take_handoff(&self, record: &[u8]) -> HandedOver {
        let side = &self.shared.side;
        let failed = |error| HandedOver::Taken(Err(error));
        let Some(record) = Handoff::from_bytes(record) else {
            return failed(Error::CorruptQueue {
                detail: "a hand-over frame does not hold a hand-over record".to_string(),
            });
        };
        let side_failed = |e| failed(Error::io("reading a queue's side channel", e));
        // With its memory file, the datagram carries the descriptors of the handles.
        let carried = usize::try_from(record.handles)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        loop {
            let peeked = match side.peek() {
                Err(e) => return side_failed(e),
                Ok(None) => return HandedOver::Gone,
                Ok(Some(peeked)) => peeked,
            };
            if peeked.id > record.id {
                return HandedOver::Gone;
            }
            // An orphan of a producer that died before publishing its frame.
            let orphan = peeked.id < record.id;
            if !orphan && peeked.cut_off {
                return HandedOver::Left(Error::DescriptorsExhausted {
                    carried,
                    received: peeked.fds.len(),
                    item_kept: true,
                });
            }
            // Taken: this process holds all of its descriptors (an orphan's close with
            // `peeked`).
            match side.discard() {
                Err(e) => return side_failed(e),
                Ok(taken) if taken != Some(peeked.id) => {
                    return failed(Error::CorruptQueue {
                        detail: "the queue's side channel was read without its lock".to_string(),
                    });
                }
                Ok(_) if orphan => continue,
                Ok(_) => return HandedOver::Taken(self.handed_over(record, carried, peeked.fds)),
            }
        }
    }

    /// The bytes and the handles' descriptors of the item `record` names, from the
    /// descriptors its datagram brought (`carried` of them, the memory file first).
    fn handed_over(
        &self,
        record: Handoff,
        carried: usize,
        mut fds: Vec<OwnedFd>,
    ) -> Result<(Message, Vec<OwnedFd>), Error> {
        if fds.len() != carried {
            return Err(Error::DescriptorMismatch {
                announced: carried,
                arrived: fds.len(),
            });
        }
        let file = fds.remove(0);
        let len = usize::try_from(record.len).unwrap_or(usize::MAX);
        let limit = self.shared.item_limit;
        if len > limit {
            return Err(Error::TooLarge { len, limit });
        }
        let message = SideChannel::read_file(file, len)
            .map_err(|e| Error::io("reading a large item's memory file", e))?;
        Ok((message, fds))
    }
}

/// What became of the item a hand-over frame names.
pub(super) enum HandedOver {
    /// Its memory file was taken by a consumer that died before moving past the frame: the
    /// item is gone with that consumer.
    Gone,
    /// It was taken from the side channel: its bytes and descriptors, or why they are not
    /// an item (an error for this item only).
    Taken(Result<(Message, Vec<OwnedFd>), Error>),
    /// It was left where it is, whole: this process could not open its descriptors.
    Left(Error),
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::error::GetError;
    use crate::queue::LargeItems;

    /// Takes the next datagram as a consumer does: its id and its descriptors.
    fn take(side: &SideChannel) -> (u64, Vec<OwnedFd>) {
        let peeked = side
            .peek()
            .unwrap()
            .expect("a datagram in the side channel");
        assert_eq!(side.discard().unwrap(), Some(peeked.id));
        (peeked.id, peeked.fds)
    }

    #[test]
    fn a_handoff_record_whose_file_was_taken_by_a_dead_consumer_is_skipped() {
        let q: Queue<Vec<u8>> = Queue::builder()
            .ring_bytes(1024)
            .large_items(LargeItems::HandedOver)
            .build()
            .unwrap();
        q.put(vec![1; 5000]).unwrap(); // handed over
        q.put(vec![2; 10]).unwrap(); // inline
        // A consumer takes the first item's file and dies before moving the ring's head.
        let (id, fds) = take(&q.shared.side);
        assert_eq!((id, fds.len()), (1, 1));
        drop(fds);
        assert_eq!(q.get().unwrap(), vec![2; 10]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_hand_over_whose_descriptors_are_not_the_count_its_record_says_is_an_error_for_it_only() {
        for extra in [0, 3] {
            let q: Queue<(u8, proc_sync::Event)> = Queue::new(0).unwrap();
            let event = proc_sync::Event::new().unwrap();
            q.put((1, event.clone())).unwrap();
            // A holder of the queue swaps the item's datagram for one with another count of
            // descriptors: its memory file, and `extra` instead of the event's one.
            let (id, fds) = take(&q.shared.side);
            let carried: Vec<OwnedFd> = (0..extra).map(|_| fds[1].try_clone().unwrap()).collect();
            q.shared.side.send(id, &fds[0], &carried).unwrap();
            q.put((2, event.clone())).unwrap();
            match q.try_get() {
                Err(GetError::Failed(Error::DescriptorMismatch {
                    announced: 2,
                    arrived,
                })) if arrived == 1 + extra => {}
                other => panic!("expected a descriptor mismatch, got {other:?}"),
            }
            assert_eq!(q.try_get().unwrap().0, 2, "the next item arrives");
        }
    }

    #[test]
    fn an_orphan_file_of_a_producer_that_died_before_publishing_is_dropped() {
        let q: Queue<Vec<u8>> = Queue::builder()
            .ring_bytes(1024)
            .large_items(LargeItems::HandedOver)
            .build()
            .unwrap();
        // A producer reserves id 1, sends its file, and dies before publishing the frame.
        let id = q.put_hot().next_handoff.fetch_add(1, Ordering::Relaxed) + 1;
        let orphan = SideChannel::file_with(&[9; 3000]).unwrap();
        q.shared.side.send(id, &orphan, &[]).unwrap();
        q.put(vec![3; 4000]).unwrap();
        assert_eq!(q.get().unwrap(), vec![3; 4000]);
        assert!(matches!(q.try_get(), Err(GetError::Empty)));
    }
}
