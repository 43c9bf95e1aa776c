//! The wire codec: how values cross a process boundary. It is [`proc_wire`]'s, re-exported
//! here so that `proc_core::codec::…` keeps working; its docs (untrusted input, bounded
//! allocation, bincode 2's encoding byte for byte, streaming) are there.
//!
//! ```
//! use proc_core::codec::{self, ByteBuf};
//!
//! let bytes = codec::encode(&(7u32, ByteBuf::from(vec![1u8; 16])))?;
//! let back: (u32, ByteBuf) = codec::decode(&bytes, codec::DEFAULT_LIMIT)?;
//! assert_eq!(back.0, 7);
//! # Ok::<(), proc_core::codec::CodecError>(())
//! ```

pub use proc_wire::*;
