//! How [`proc_core::wait`] waits for a [`Connection`]: ready when a `recv` would not block,
//! that is when a message (or part of one) has arrived, in its socket or in the bytes the
//! connection has already read from it, or when the peer is gone.

use std::os::fd::AsFd;
use std::time::Duration;

use proc_core::{WaitSource, Waitable};

use crate::connection::Connection;

impl Waitable for Connection {
    /// Ready when a message is there to receive or the peer is gone (a `recv` then reports
    /// end of file). An error for the writing end of a one-way pair, which receives
    /// nothing.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// use proc_core::{Waitable, wait};
    ///
    /// let (a, b) = proc_ipc::pipe()?;
    /// let (c, d) = proc_ipc::pipe()?;
    /// assert!(wait(&[&a as &dyn Waitable, &c], Some(Duration::from_millis(1)))?.is_empty());
    /// b.send(&1u8)?;
    /// drop(d);
    /// assert_eq!(wait(&[&a as &dyn Waitable, &c], None)?, [0, 1]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn wait_source(&self) -> proc_core::Result<WaitSource<'_>> {
        // A look without waiting: it sees what the connection holds already, which its
        // socket no longer shows, and refuses an end that cannot receive.
        let ready = self
            .poll(Some(Duration::ZERO))
            .map_err(|e| proc_core::Error::NotWaitable {
                object: "a connection",
                source: Box::new(e),
            })?;
        Ok(match ready {
            true => WaitSource::Ready,
            false => WaitSource::Readable(self.as_fd()),
        })
    }
}
