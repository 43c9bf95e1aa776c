//! [`Spares`]: message buffers that go round between the caller's thread, which encodes
//! chunks into them, the driver, which sends and receives through them, and the decoding of
//! results, which gives them back.

use parking_lot::Mutex;

use super::message::KEEP_BUFFER;

/// Message buffers already sent, kept for the next chunks: the caller's thread encodes a
/// chunk into one, the driver gives it back once the worker has it. A map then uses the
/// same few buffers over and over instead of a fresh one per chunk, whose pages would be
/// faulted in again.
#[derive(Default)]
pub(crate) struct Spares(Mutex<Vec<Vec<u8>>>);

impl Spares {
    /// How many buffers are kept: about what a map has out at once.
    const KEPT: usize = 8;

    /// An empty buffer, with room when one was kept.
    pub(crate) fn take(&self) -> Vec<u8> {
        self.0.lock().pop().unwrap_or_default()
    }

    /// Keeps `buffer` for a later message, unless enough are kept or it is too large.
    pub(crate) fn give(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() == 0 || buffer.capacity() > KEEP_BUFFER {
            return;
        }
        buffer.clear();
        let mut kept = self.0.lock();
        if kept.len() < Self::KEPT {
            kept.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spares_keep_buffers_with_room_only() {
        let spares = Spares::default();
        spares.give(Vec::new());
        spares.give(Vec::with_capacity(KEEP_BUFFER + 1));
        assert_eq!(spares.take().capacity(), 0, "neither was kept");
        spares.give(Vec::with_capacity(4096));
        assert!(spares.take().capacity() >= 4096);
    }
}
