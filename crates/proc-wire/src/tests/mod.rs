//! The codec's unit tests, by concern. Here: a value of every shape in serde's data model,
//! which they all encode, decode, cut, change and stream.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{ByteBuf, Layout};

mod bincode_compat;
mod bulk;
mod sink;
mod source;
mod untrusted;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Newtype(String);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Pair(i8, u128);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Nothing,
    Wrapped(Box<Shape>),
    Point(f32, f64),
    Named { label: String, bytes: ByteBuf },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Everything {
    flag: bool,
    small: (i16, i32, i64, i128, u8, u16, u32, u64),
    letter: char,
    text: String,
    bytes: ByteBuf,
    maybe: Option<Option<Newtype>>,
    unit: (),
    unit_struct: Unit,
    pair: Pair,
    shapes: Vec<Shape>,
    ordered: BTreeMap<String, Vec<u16>>,
    hashed: HashMap<u8, Option<String>>,
    array: [u64; 3],
}

fn everything() -> Everything {
    Everything {
        flag: true,
        small: (
            -300,
            -70_000,
            i64::MIN,
            i128::MAX,
            255,
            300,
            70_000,
            u64::MAX,
        ),
        letter: '小',
        text: "王".repeat(100),
        bytes: ByteBuf::from(vec![0xFF; 300]),
        maybe: Some(Some(Newtype("inner".into()))),
        unit: (),
        unit_struct: Unit,
        pair: Pair(-1, u128::MAX - 1),
        shapes: vec![
            Shape::Nothing,
            Shape::Wrapped(Box::new(Shape::Point(1.5, -2.25))),
            Shape::Named {
                label: String::new(),
                bytes: ByteBuf::new(),
            },
        ],
        ordered: [("a".to_string(), vec![1, 2]), ("b".into(), vec![])].into(),
        hashed: [(1, None), (2, Some("two".into()))].into(),
        array: [1, 1 << 20, 1 << 40],
    }
}

/// `everything()`, with long runs (passed on from the value) and many small parts
/// (gathered a few KiB at a time).
fn everything_large() -> Everything {
    let mut value = everything();
    value.bytes = ByteBuf::from(vec![0xAB; 100_000]);
    value.text = "王".repeat(5_000);
    value.shapes = (0..3_000)
        .map(|i| Shape::Point(i as f32, -f64::from(i)))
        .collect();
    value
}

/// `value` encoded by the codec in `layout`.
fn ours<T: Serialize>(value: &T, layout: Layout) -> Vec<u8> {
    let mut bytes = Vec::new();
    layout.encode_into(value, &mut bytes).unwrap();
    bytes
}
