//! The records a creator sends its tracker over their socket: one datagram each, a kind
//! byte and then, to register or unregister a block, its name.

use crate::name::MAX_NAME_LEN;

/// The first byte of a record: register, unregister (then a name), and shut down (a
/// manager's tracker, alone; the tracker answers with the same byte once done).
pub(super) const REGISTER: u8 = b'R';
pub(super) const UNREGISTER: u8 = b'U';
pub(super) const SHUT_DOWN: u8 = b'S';

/// The longest record: the kind and a name of [`MAX_NAME_LEN`] bytes.
pub(super) const MAX_RECORD: usize = 1 + MAX_NAME_LEN;
