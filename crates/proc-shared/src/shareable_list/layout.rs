//! Python's memory layout of a `ShareableList` (`Lib/multiprocessing/shared_memory.py`,
//! 3.9 and later), byte for byte, with native byte order as Python's `struct` uses:
//!
//! ```text
//! 0                 n: i64, the number of items
//! 8                 n + 1 offsets: i64, where each item's slot starts (and where the
//!                   last ends) from the start of the data area; offsets[0] = 0
//! (n + 2) * 8       the data area: each item in its slot, a multiple of 8 bytes
//!   + offsets[n]    n packing formats: 8 bytes each, a `struct` format padded with NULs
//!   + 8 * n         n back-transform codes: i8 each (0 number or bool, 1 str, 2 bytes,
//!                   3 None)
//! ```
//!
//! The formats: `q` an int (i64), `d` a float (f64), `xxxxxxx?` a bool (its byte last),
//! `xxxxxx?x` None, `<N>s` a str (UTF-8) or bytes value in N bytes padded with NULs, whose
//! slot is `8 * (len / 8 + 1)` bytes at creation. Every number read here came from another
//! process: each is checked before it is used, and all reads go through the block's
//! bounds-checked accessors.

use crate::error::{Error, Result};
use crate::shared_memory::SharedMemory;

use super::item::Item;

/// Every slot, and every packing format, is 8 bytes or a multiple of it.
pub(super) const ALIGNMENT: usize = 8;

/// The longest str or bytes value: its slot's format (`<slot>s`) must fit in 8 bytes, so
/// the slot is at most 9_999_992 bytes (the largest multiple of 8 below 10^7).
pub(super) const MAX_VALUE_LEN: usize = 9_999_991;

const INT: &[u8] = b"q";
const FLOAT: &[u8] = b"d";
const BOOL: &[u8] = b"xxxxxxx?";
const NONE: &[u8] = b"xxxxxx?x";

/// Back-transform codes.
const CODE_PLAIN: i8 = 0;
const CODE_STR: i8 = 1;
const CODE_BYTES: i8 = 2;
const CODE_NONE: i8 = 3;

/// Where the parts of a list lie, read once from its header and checked against the block.
///
/// The offsets of the items' slots are read (and checked) at each access rather than kept:
/// a block whose header claims billions of items costs nothing until they are used.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    len: usize,
    /// The last offset: where the data area ends, from its start.
    data_end: usize,
    data_start: usize,
    formats_start: usize,
    codes_start: usize,
}

/// What an item's packing format says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Int,
    Float,
    Bool,
    None,
    /// `<N>s`: N bytes.
    Bytes(usize),
}

impl Format {
    fn parse(raw: &[u8]) -> Option<Format> {
        let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let text = &raw[..end];
        Some(match text {
            INT => Format::Int,
            FLOAT => Format::Float,
            BOOL => Format::Bool,
            NONE => Format::None,
            [digits @ .., b's'] if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
                Format::Bytes(std::str::from_utf8(digits).ok()?.parse().ok()?)
            }
            _ => return None,
        })
    }

    /// The bytes the format packs.
    fn size(self) -> usize {
        match self {
            Format::Bytes(n) => n,
            _ => ALIGNMENT,
        }
    }

    /// The format's text, NUL-padded to 8 bytes.
    fn encode(self) -> [u8; 8] {
        let mut out = [0u8; 8];
        let text = match self {
            Format::Int => INT.to_vec(),
            Format::Float => FLOAT.to_vec(),
            Format::Bool => BOOL.to_vec(),
            Format::None => NONE.to_vec(),
            Format::Bytes(n) => format!("{n}s").into_bytes(),
        };
        // Slots are limited so that the text fits (MAX_VALUE_LEN).
        let len = text.len().min(8);
        out[..len].copy_from_slice(&text[..len]);
        out
    }
}

/// The format, back-transform code and packed bytes of `item` in a slot of `slot` bytes.
fn pack(item: &Item, slot: usize) -> (Format, i8, Vec<u8>) {
    match item {
        Item::Int(v) => (Format::Int, CODE_PLAIN, v.to_ne_bytes().to_vec()),
        Item::Float(v) => (Format::Float, CODE_PLAIN, v.to_ne_bytes().to_vec()),
        Item::Bool(v) => {
            let mut bytes = vec![0u8; ALIGNMENT];
            bytes[7] = u8::from(*v);
            (Format::Bool, CODE_PLAIN, bytes)
        }
        // struct packs None as False under `?`: all eight bytes zero.
        Item::None => (Format::None, CODE_NONE, vec![0u8; ALIGNMENT]),
        Item::Str(s) => (Format::Bytes(slot), CODE_STR, padded(s.as_bytes(), slot)),
        Item::Bytes(b) => (Format::Bytes(slot), CODE_BYTES, padded(b, slot)),
    }
}

fn padded(value: &[u8], slot: usize) -> Vec<u8> {
    let mut bytes = value.to_vec();
    bytes.resize(slot.max(value.len()), 0);
    bytes
}

/// The value bytes of a str or bytes item, or `None` for the other kinds.
fn text_bytes(item: &Item) -> Option<&[u8]> {
    match item {
        Item::Str(s) => Some(s.as_bytes()),
        Item::Bytes(b) => Some(b),
        _ => None,
    }
}

/// Refuses a str or bytes value that Python's layout cannot hold as it is.
pub(super) fn check_value(item: &Item) -> Result<()> {
    if let Some(bytes) = text_bytes(item) {
        if bytes.len() > MAX_VALUE_LEN {
            return Err(Error::ValueTooLong {
                len: bytes.len(),
                max: MAX_VALUE_LEN,
            });
        }
        if bytes.last() == Some(&0) {
            return Err(Error::TrailingNul);
        }
    }
    Ok(())
}

/// The slot Python gives `item` at creation.
fn slot_at_creation(item: &Item) -> usize {
    match text_bytes(item) {
        Some(bytes) => ALIGNMENT * (bytes.len() / ALIGNMENT + 1),
        None => ALIGNMENT,
    }
}

impl Layout {
    /// The layout of a new list of `items`, its offsets, and the bytes of the block it
    /// needs.
    pub(super) fn for_items(items: &[Item]) -> Result<(Layout, Vec<usize>, usize)> {
        for item in items {
            check_value(item)?;
        }
        let n = items.len();
        let mut offsets = Vec::with_capacity(n + 1);
        offsets.push(0usize);
        let mut end = 0usize;
        for item in items {
            end += slot_at_creation(item);
            offsets.push(end);
        }
        let data_start = (n + 2) * ALIGNMENT;
        let formats_start = data_start + end;
        let codes_start = formats_start + n * ALIGNMENT;
        let layout = Layout {
            len: n,
            data_end: end,
            data_start,
            formats_start,
            codes_start,
        };
        Ok((layout, offsets, codes_start + n))
    }

    /// Writes the header (`offsets` from [`for_items`](Layout::for_items)), every item,
    /// the formats and the codes of a new list.
    pub(super) fn write_new(
        &self,
        shm: &SharedMemory,
        items: &[Item],
        offsets: &[usize],
    ) -> Result<()> {
        shm.write(0, &(items.len() as i64))?;
        for (i, offset) in offsets.iter().enumerate() {
            shm.write(ALIGNMENT * (i + 1), &(*offset as i64))?;
        }
        for (index, item) in items.iter().enumerate() {
            self.write_item(shm, index, item)?;
        }
        Ok(())
    }

    /// Reads and checks the layout of the list in `shm`.
    pub(super) fn read(shm: &SharedMemory) -> Result<Layout> {
        let corrupt = |reason: String| Error::CorruptList {
            name: shm.name().to_string(),
            reason,
        };
        let size = shm.size();
        let n = shm
            .read::<i64>(0)
            .map_err(|_| corrupt(format!("{size} bytes cannot hold a list's header")))?;
        // Each item needs at least its offset, format and code: 17 bytes.
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= size / (2 * ALIGNMENT + 1))
            .ok_or_else(|| corrupt(format!("its header claims {n} items in {size} bytes")))?;
        let data_start = (n + 2) * ALIGNMENT;
        let raw = shm
            .read::<i64>(ALIGNMENT * (n + 1))
            .map_err(|_| corrupt(format!("its offsets of {n} items pass the block's end")))?;
        let fits = |data_end: usize| {
            data_start
                .checked_add(data_end)
                .and_then(|formats| formats.checked_add(n * (ALIGNMENT + 1)))
                .is_some_and(|end| end <= size)
        };
        let data_end = usize::try_from(raw)
            .ok()
            .filter(|&end| fits(end))
            .ok_or_else(|| {
                corrupt(format!(
                    "its last offset, {raw}, puts its items past the block's {size} bytes"
                ))
            })?;
        let formats_start = data_start + data_end;
        Ok(Layout {
            len: n,
            data_end,
            data_start,
            formats_start,
            codes_start: formats_start + n * ALIGNMENT,
        })
    }

    /// The number of items.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Where item `index`'s slot starts (from the start of the block) and its length, from
    /// offsets `index` and `index + 1`, checked (index < len).
    fn slot(&self, shm: &SharedMemory, index: usize) -> Result<(usize, usize)> {
        let corrupt = |reason: String| Error::CorruptList {
            name: shm.name().to_string(),
            reason: format!("item {index}: {reason}"),
        };
        let offset = |i: usize| -> Result<usize> {
            let raw = shm.read::<i64>(ALIGNMENT * (i + 1))?;
            usize::try_from(raw)
                .ok()
                .filter(|&offset| offset <= self.data_end)
                .ok_or_else(|| corrupt(format!("offset {i} is {raw}, outside the data area")))
        };
        let (start, end) = (offset(index)?, offset(index + 1)?);
        if end < start {
            return Err(corrupt(format!(
                "its offsets go backwards ({start}, then {end})"
            )));
        }
        Ok((self.data_start + start, end - start))
    }

    /// Reads item `index` (index < len), checking its format, code and bytes.
    pub(super) fn read_item(&self, shm: &SharedMemory, index: usize) -> Result<Item> {
        let corrupt = |reason: String| Error::CorruptList {
            name: shm.name().to_string(),
            reason: format!("item {index}: {reason}"),
        };
        let mut raw_format = [0u8; 8];
        shm.read_bytes(self.formats_start + index * ALIGNMENT, &mut raw_format)?;
        let format = Format::parse(&raw_format).ok_or_else(|| {
            corrupt(format!(
                "its packing format {:?} is none that a ShareableList uses",
                String::from_utf8_lossy(&raw_format).trim_end_matches('\0')
            ))
        })?;
        let code = shm.read::<i8>(self.codes_start + index)?;
        let (at, slot) = self.slot(shm, index)?;
        if format.size() > slot {
            return Err(corrupt(format!(
                "its format packs {} bytes into a slot of {slot}",
                format.size()
            )));
        }
        let mut bytes = vec![0u8; format.size()];
        shm.read_bytes(at, &mut bytes)?;
        let eight = |bytes: &[u8]| -> [u8; 8] {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[..8]);
            word
        };
        Ok(match (code, format) {
            // Python returns None for code 3 whatever the format says.
            (CODE_NONE, _) => Item::None,
            (CODE_PLAIN, Format::Int) => Item::Int(i64::from_ne_bytes(eight(&bytes))),
            (CODE_PLAIN, Format::Float) => Item::Float(f64::from_ne_bytes(eight(&bytes))),
            (CODE_PLAIN, Format::Bool) => Item::Bool(bytes[7] != 0),
            (CODE_STR, Format::Bytes(_)) => {
                let text = strip_nuls(&bytes);
                Item::Str(
                    String::from_utf8(text.to_vec())
                        .map_err(|_| corrupt("its str value is not UTF-8".to_string()))?,
                )
            }
            (CODE_BYTES, Format::Bytes(_)) => Item::Bytes(strip_nuls(&bytes).to_vec()),
            (code, format) => {
                return Err(corrupt(format!(
                    "back-transform code {code} does not go with the format {format:?}"
                )));
            }
        })
    }

    /// Writes `item` as item `index` (index < len): its format, its code, its bytes, as
    /// Python's `__setitem__` does. A str or bytes value must fit the slot.
    pub(super) fn write_item(&self, shm: &SharedMemory, index: usize, item: &Item) -> Result<()> {
        check_value(item)?;
        let (at, slot) = self.slot(shm, index)?;
        let needed = text_bytes(item).map_or(ALIGNMENT, <[u8]>::len);
        if needed > slot {
            return Err(match text_bytes(item) {
                Some(_) => Error::ItemTooLong {
                    index,
                    slot,
                    needed,
                },
                None => Error::CorruptList {
                    name: shm.name().to_string(),
                    reason: format!("item {index}'s slot of {slot} bytes cannot hold a number"),
                },
            });
        }
        if slot > MAX_VALUE_LEN + 1 {
            return Err(Error::CorruptList {
                name: shm.name().to_string(),
                reason: format!("item {index}'s slot of {slot} bytes is longer than Python makes"),
            });
        }
        let (format, code, bytes) = pack(item, slot);
        shm.write_bytes(self.formats_start + index * ALIGNMENT, &format.encode())?;
        shm.write(self.codes_start + index, &code)?;
        shm.write_bytes(at, &bytes)
    }
}

/// `value` without its trailing NUL bytes (Python's `rstrip(b'\x00')`).
fn strip_nuls(value: &[u8]) -> &[u8] {
    let end = value.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    &value[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_read_back_as_written() {
        for format in [
            Format::Int,
            Format::Float,
            Format::Bool,
            Format::None,
            Format::Bytes(8),
            Format::Bytes(9_999_992),
        ] {
            assert_eq!(Format::parse(&format.encode()), Some(format));
        }
        for bad in [&b"i"[..], b"s", b"-8s", b"8", b"xxxxxxxx", b"q\0d"] {
            assert_eq!(Format::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn slots_are_rounded_up_to_the_next_multiple_of_8_as_in_python() {
        assert_eq!(slot_at_creation(&Item::Str(String::new())), 8);
        assert_eq!(slot_at_creation(&Item::Str("1234567".into())), 8);
        assert_eq!(slot_at_creation(&Item::Str("12345678".into())), 16);
        assert_eq!(slot_at_creation(&Item::Bytes(vec![1; 17])), 24);
        assert_eq!(slot_at_creation(&Item::Int(1)), 8);
    }

    #[test]
    fn a_new_list_needs_what_python_asks_for() {
        // Python: struct.calcsize("q" + "q" * 3 + "q" + "16s" + "8s" * 2 + "b" * 2) == 74.
        let (_, _, size) =
            Layout::for_items(&[Item::Int(1), Item::Str("hello world".into())]).unwrap();
        assert_eq!(size, 8 + 24 + 8 + 16 + 16 + 2);
    }
}
