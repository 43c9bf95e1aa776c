//! [`Item`]: one value of a shareable list, of the kinds Python's holds.

/// One item of a [`ShareableList`](super::ShareableList): the value kinds Python's `ShareableList` holds.
///
/// ```
/// use proc_shared::Item;
///
/// assert_eq!(Item::from(3), Item::Int(3));
/// assert_eq!(Item::from("小王"), Item::Str("小王".to_string()));
/// assert_eq!(Item::from(&b"raw"[..]), Item::Bytes(b"raw".to_vec()));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Python `int` (format `q`: a signed 64-bit integer).
    Int(i64),
    /// Python `float` (format `d`).
    Float(f64),
    /// Python `bool` (format `xxxxxxx?`).
    Bool(bool),
    /// Python `str` (UTF-8 in a slot of a multiple of 8 bytes). Python strips trailing NUL
    /// bytes as padding, so a value may not end with one.
    Str(String),
    /// Python `bytes` (in a slot of a multiple of 8 bytes; no trailing NUL, as for `Str`).
    Bytes(Vec<u8>),
    /// Python `None` (format `xxxxxx?x`).
    None,
}

impl From<i64> for Item {
    fn from(v: i64) -> Item {
        Item::Int(v)
    }
}

impl From<i32> for Item {
    fn from(v: i32) -> Item {
        Item::Int(v.into())
    }
}

impl From<f64> for Item {
    fn from(v: f64) -> Item {
        Item::Float(v)
    }
}

impl From<bool> for Item {
    fn from(v: bool) -> Item {
        Item::Bool(v)
    }
}

impl From<&str> for Item {
    fn from(v: &str) -> Item {
        Item::Str(v.to_string())
    }
}

impl From<String> for Item {
    fn from(v: String) -> Item {
        Item::Str(v)
    }
}

impl From<&[u8]> for Item {
    fn from(v: &[u8]) -> Item {
        Item::Bytes(v.to_vec())
    }
}

impl From<Vec<u8>> for Item {
    fn from(v: Vec<u8>) -> Item {
        Item::Bytes(v)
    }
}

impl<T: Into<Item>> From<Option<T>> for Item {
    fn from(v: Option<T>) -> Item {
        v.map_or(Item::None, Into::into)
    }
}
