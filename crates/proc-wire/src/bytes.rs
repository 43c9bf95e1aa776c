//! [`ByteBuf`]: the type to carry a large binary payload in.

/// A byte buffer that the codec copies as one block. A `Vec<u8>` goes through serde as a
/// sequence, byte by byte: about 300 MiB/s to decode, where a `ByteBuf` (or a field marked
/// `#[serde(with = "serde_bytes")]`) is a `memcpy`. Use it for large binary payloads.
///
/// ```
/// use proc_wire::ByteBuf;
///
/// let payload = ByteBuf::from(vec![7u8; 1 << 20]);
/// let bytes = proc_wire::encode(&payload).unwrap();
/// let back: ByteBuf = proc_wire::decode(&bytes, 2 << 20).unwrap();
/// assert_eq!(back.len(), 1 << 20);
/// ```
pub use serde_bytes::ByteBuf;
