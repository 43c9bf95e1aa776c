//! A consumer's take of an item handed over as a memory file (the side channel, its
//! datagrams and their ids are in the `side_channel` module): the datagram a hand-over frame
//! names, orphans of producers that died dropped on the way, and what came with it checked.

use std::os::fd::OwnedFd;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::handle::Queue;
use crate::error::Error;
use crate::frame::Handoff;
use crate::side_channel::{Message, SideChannel, Taking};

impl<T: Serialize + DeserializeOwned> Queue<T> {
    /// The bytes of the item a hand-over frame names, and the descriptors of the handles it
    /// holds (see [`HandedOver`]). Runs under the lock.
    pub(super) fn take_handoff(&self, record: &[u8]) -> HandedOver {
        let shared = &*self.shared;
        let taken = |result| HandedOver::Taken(result);
        let Some(record) = Handoff::from_bytes(record) else {
            return taken(Err(Error::CorruptQueue {
                detail: "a hand-over frame does not hold a hand-over record".to_string(),
            }));
        };
        let side_failed = |e| taken(Err(Error::io("reading a queue's side channel", e)));
        loop {
            let id = match shared.side.peek_id() {
                Err(e) => return side_failed(e),
                Ok(None) => return HandedOver::Gone,
                Ok(Some(id)) if id > record.id => return HandedOver::Gone,
                Ok(Some(id)) => id,
            };
            if id < record.id {
                // An orphan of a producer that died before publishing its frame: dropped
                // without opening its descriptors.
                if let Err(e) = shared.side.discard() {
                    return side_failed(e);
                }
                continue;
            }
            // With its memory file, the datagram carries the descriptors of the handles.
            let carried = usize::try_from(record.handles)
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let mut fds = match shared.side.take() {
                Err(e) => return side_failed(e),
                Ok(Taking::Empty) => return HandedOver::Gone,
                Ok(Taking::Exhausted { opened }) => {
                    return HandedOver::Left(Error::DescriptorsExhausted {
                        carried,
                        received: opened,
                        item_kept: true,
                    });
                }
                Ok(Taking::Taken { id, fds }) if id == record.id => fds,
                Ok(Taking::Taken { .. }) => {
                    return taken(Err(Error::CorruptQueue {
                        detail: "a hand-over message is not the one its frame names".to_string(),
                    }));
                }
            };
            if fds.len() != carried {
                return taken(Err(Error::DescriptorMismatch {
                    announced: carried,
                    arrived: fds.len(),
                }));
            }
            let file = fds.remove(0);
            let len = usize::try_from(record.len).unwrap_or(usize::MAX);
            if len > shared.item_limit {
                return taken(Err(Error::TooLarge {
                    len,
                    limit: shared.item_limit,
                }));
            }
            return taken(
                SideChannel::read_file(file, len)
                    .map(|message| (message, fds))
                    .map_err(|e| Error::io("reading a large item's memory file", e)),
            );
        }
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
        let Ok(Taking::Taken { id, fds }) = q.shared.side.take() else {
            panic!("the first item's file is in the side channel");
        };
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
            let Ok(Taking::Taken { id, fds }) = q.shared.side.take() else {
                panic!("the item's datagram is in the side channel");
            };
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
