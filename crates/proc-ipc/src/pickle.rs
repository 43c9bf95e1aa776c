//! [`Connection::send_pickle`] and [`Connection::recv_pickle`] (feature `python`): values
//! pickled as Python's `Connection.send` and `recv` exchange them.
//!
//! Pickles are written in protocol 3 and read in any protocol from 0 to 5 (Python's
//! `send` uses its default: 4 up to 3.13, 5 from 3.14), by `serde-pickle`: dicts, lists,
//! tuples, sets, numbers (big integers too), strings, bytes, booleans and None. A pickle
//! that names a class or function (`GLOBAL`, `REDUCE`) is refused; nothing a peer sends is
//! ever executed.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_pickle::{DeOptions, SerOptions};

use crate::connection::Connection;
use crate::error::Result;

impl Connection {
    /// Sends `value` pickled, as Python's `Connection.send(obj)`: a Python peer receives it
    /// with `conn.recv()`. A struct or map becomes a dict, a sequence a list, a unit or
    /// `None` becomes None; bytes go as Python `bytes` when the field says so
    /// (`serde_bytes`). Handles (a `Lock`, a `Queue`, …) cannot be pickled.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    ///
    /// let (a, b) = proc_ipc::pipe()?;
    /// a.send_pickle(&BTreeMap::from([("answer", 42)]))?;
    /// let got: BTreeMap<String, i64> = b.recv_pickle()?;
    /// assert_eq!(got["answer"], 42);
    /// # Ok::<(), proc_ipc::Error>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "python")))]
    pub fn send_pickle<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let bytes = serde_pickle::to_vec(&value, SerOptions::new())?;
        self.send_bytes(&bytes)
    }

    /// Receives a value that a Python peer sent with `conn.send(obj)` (or that
    /// [`send_pickle`](Self::send_pickle) sent). A message that is not a pickle of a `T`
    /// is an [`Error::Pickle`](crate::Error::Pickle) for that message; the connection
    /// stays usable.
    ///
    /// The message is at most the connection's limit, but a hostile pickle can expand
    /// while it is read (its memo lets one object be referenced many times): receive
    /// pickles only from peers that authenticated (a [`Listener`](crate::Listener) or
    /// [`Client`](crate::Client) with a key), as Python's own documentation advises.
    #[cfg_attr(docsrs, doc(cfg(feature = "python")))]
    pub fn recv_pickle<T: DeserializeOwned>(&self) -> Result<T> {
        let bytes = self.recv_bytes()?;
        Ok(serde_pickle::from_slice(&bytes, DeOptions::new())?)
    }
}
