//! The codec (proc-wire) on arbitrary bytes, as every receiver runs it on what another
//! process sent: from a slice and from a source that gives it in pieces (as a consumer
//! decodes a streamed item). Neither may panic, loop, or set aside memory for bytes that
//! never came, and the two must agree.
//!
//! ```text
//! cargo xtask fuzz --only codec --seconds 300
//! ```

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use proc_wire::{ByteBuf, Source};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
enum Shape {
    Unit,
    Tuple(u8, i64, f32),
    Struct {
        name: String,
        tags: Vec<Option<char>>,
    },
    Nested(Box<Option<Shape>>),
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let piece = 1 + usize::from(selector >> 4);
    match selector % 6 {
        0 => agree::<(u32, u64, Vec<u8>)>(bytes, piece),
        1 => agree::<(String, Option<Vec<u64>>)>(bytes, piece),
        2 => agree::<(ByteBuf, char, i128)>(bytes, piece),
        3 => agree::<Vec<Shape>>(bytes, piece),
        4 => agree::<BTreeMap<String, (bool, u16)>>(bytes, piece),
        _ => agree::<(f64, Vec<String>, [u8; 3])>(bytes, piece),
    }
});

/// Decodes `item` from a slice and from pieces of it: the same value, or both errors.
fn agree<T>(item: &[u8], piece: usize)
where
    T: DeserializeOwned + Serialize + std::fmt::Debug,
{
    let whole = proc_wire::decode::<T>(item, 1 << 16);
    let streamed = proc_wire::decode_from::<T, _>(&mut Pieces(item, piece), 1 << 16);
    match (whole, streamed) {
        // Compared by their encodings: a NaN is not equal to itself.
        (Ok(a), Ok(b)) => assert_eq!(
            proc_wire::encode(&a).unwrap(),
            proc_wire::encode(&b).unwrap()
        ),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("from a slice {a:?}, in pieces {b:?}"),
    }
}

/// Gives its bytes at most `.1` at a time, saying how many are left.
struct Pieces<'a>(&'a [u8], usize);

impl Source for Pieces<'_> {
    type Error = std::convert::Infallible;

    fn read(&mut self, buf: &mut Vec<u8>, at_most: usize) -> Result<usize, Self::Error> {
        Source::read(&mut self.0, buf, at_most.min(self.1))
    }

    fn left_at_most(&self) -> usize {
        self.0.len()
    }
}
