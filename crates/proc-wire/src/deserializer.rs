//! The decoding half: [`Decoder`], serde's `Deserializer` for the wire format, reading
//! untrusted bytes from an [`Input`] (a slice, or a source's stage).
//!
//! Nothing in the bytes can make it panic, overflow the stack or allocate past its input:
//! a value nests at most [`MAX_DEPTH`] levels deep, a string's or byte buffer's length is
//! checked by the input before anything is set aside, and a sequence or map tells its
//! visitor at most as many elements as there are bytes left ([`Elements`]).

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};

use crate::bulk::Reader;
use crate::error::{Result, WireError};
use crate::input::{Input, Run, too_long};
use crate::limits::MAX_DEPTH;
use crate::varint::{U16_MARKER, U32_MARKER, U64_MARKER, U128_MARKER, unzigzag, unzigzag64};

/// Reads values from untrusted bytes, from an [`Input`]; `FIXED` picks the layout of
/// integers.
pub(crate) struct Decoder<'de, I: Input<'de>, const FIXED: bool> {
    input: I,
    /// How many sequences, maps, structs, tuples, options, newtypes and enums the value
    /// being read is inside of, at this point.
    depth: u32,
    _de: std::marker::PhantomData<&'de [u8]>,
}

impl<'de, I: Input<'de>, const FIXED: bool> Decoder<'de, I, FIXED> {
    pub(crate) fn new(input: I) -> Self {
        Decoder {
            input,
            depth: 0,
            _de: std::marker::PhantomData,
        }
    }

    /// The input, with what is left of it.
    pub(crate) fn into_input(self) -> I {
        self.input
    }

    /// Runs `f` one level deeper in the value; an error past [`MAX_DEPTH`].
    #[inline]
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.depth >= MAX_DEPTH {
            return Err(WireError(format!(
                "the value is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    /// At most how many bytes are left unread (exactly, for a slice).
    pub(crate) fn left(&self) -> usize {
        self.input.left()
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.input.array()
    }

    #[inline]
    fn byte(&mut self) -> Result<u8> {
        self.input.byte()
    }

    /// Compact's variable-length form of an unsigned value of at most 64 bits, at most
    /// `widest` wide (the marker of the type being read).
    #[inline]
    fn varint(&mut self, widest: u8) -> Result<u64> {
        let first = self.byte()?;
        if first < U16_MARKER {
            return Ok(first.into());
        }
        self.wide_varint(first, widest)
    }

    /// The part of `varint` after a marker byte.
    #[inline(never)]
    fn wide_varint(&mut self, marker: u8, widest: u8) -> Result<u64> {
        match marker {
            U16_MARKER => Ok(u16::from_le_bytes(self.array()?).into()),
            U32_MARKER if widest >= U32_MARKER => Ok(u32::from_le_bytes(self.array()?).into()),
            U64_MARKER if widest >= U64_MARKER => Ok(u64::from_le_bytes(self.array()?)),
            _ => Err(Self::not_an_integer(marker)),
        }
    }

    /// As `varint`, for 128-bit values.
    fn varint128(&mut self) -> Result<u128> {
        let first = self.byte()?;
        if first == U128_MARKER {
            return Ok(u128::from_le_bytes(self.array()?));
        }
        if first < U16_MARKER {
            return Ok(first.into());
        }
        self.wide_varint(first, U64_MARKER).map(u128::from)
    }

    #[cold]
    fn not_an_integer(marker: u8) -> WireError {
        WireError(format!(
            "byte {marker} does not begin an integer of this width"
        ))
    }

    #[inline]
    fn u16(&mut self) -> Result<u16> {
        if FIXED {
            return Ok(u16::from_le_bytes(self.array()?));
        }
        Ok(self.varint(U16_MARKER)? as u16)
    }

    #[inline]
    fn u32(&mut self) -> Result<u32> {
        if FIXED {
            return Ok(u32::from_le_bytes(self.array()?));
        }
        Ok(self.varint(U32_MARKER)? as u32)
    }

    #[inline]
    fn u64(&mut self) -> Result<u64> {
        if FIXED {
            return Ok(u64::from_le_bytes(self.array()?));
        }
        self.varint(U64_MARKER)
    }

    #[inline]
    fn u128(&mut self) -> Result<u128> {
        if FIXED {
            return Ok(u128::from_le_bytes(self.array()?));
        }
        self.varint128()
    }

    #[inline]
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    #[inline]
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A signed value of at most 64 bits that Compact writes zig-zagged, at most `widest`
    /// wide.
    #[inline]
    fn signed(&mut self, widest: u8) -> Result<i64> {
        self.varint(widest).map(unzigzag64)
    }

    #[inline]
    fn len(&mut self) -> Result<usize> {
        let len = self.u64()?;
        usize::try_from(len).map_err(|_| WireError(format!("a length of {len} is too large")))
    }

    /// A string's or byte buffer's bytes: borrowed from a slice, copied from a stream.
    #[inline]
    fn bytes(&mut self) -> Result<Run<'de, '_>> {
        let len = self.len()?;
        self.input.run(len)
    }

    /// A string's or byte buffer's bytes, in a vector of their own.
    #[inline]
    fn owned(&mut self) -> Result<Vec<u8>> {
        let len = self.len()?;
        self.input.owned(len)
    }

    /// Reads the value `seed` stands for: in one copy if it is a run of plain numbers (see
    /// `bulk`), else through the seed. Every value the decoder is asked for goes through
    /// here.
    #[inline]
    pub(crate) fn seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        match crate::bulk::reader::<S, FIXED>() {
            Some(Reader::Bytes(wrap)) => self.owned().map(wrap),
            Some(Reader::Run {
                width,
                start,
                extend,
            }) => {
                // The length is checked against what is left before anything is set aside.
                let len = self.len()?;
                let mut left = len
                    .checked_mul(width)
                    .filter(|&bytes| bytes <= self.input.left())
                    .ok_or_else(|| too_long(len.saturating_mul(width), self.input.left()))?;
                let mut value = start(self.input.room_for(left) / width);
                // In pieces the input hands over without copying them aside first.
                let piece = (self.input.piece() / width).max(1) * width;
                while left > 0 {
                    let (Run::Borrowed(run) | Run::Copied(run)) =
                        self.input.run(left.min(piece))?;
                    extend(&mut value, run);
                    left -= run.len();
                }
                Ok(value)
            }
            None => seed.deserialize(self),
        }
    }

    /// `len` elements (or map entries) in a row, reporting no more than there are bytes
    /// left to their visitor.
    #[inline]
    fn elements(&mut self, len: usize) -> Elements<'_, 'de, I, FIXED> {
        Elements {
            de: self,
            left: len,
        }
    }
}

#[cold]
fn not_utf8(e: std::str::Utf8Error) -> WireError {
    WireError(format!("a string is not UTF-8: {e}"))
}

macro_rules! signed {
    ($($method:ident $visit:ident $ty:ty, $marker:expr;)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            if FIXED {
                return visitor.$visit(<$ty>::from_le_bytes(self.array()?));
            }
            // At most as wide as the type's unsigned twin, so the value fits the type.
            visitor.$visit(self.signed($marker)? as $ty)
        }
    )*};
}

/// Values read by one of the decoder's own methods.
macro_rules! unsigned {
    ($($method:ident $visit:ident $read:ident;)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            visitor.$visit(self.$read()?)
        }
    )*};
}

impl<'de, I: Input<'de>, const FIXED: bool> de::Deserializer<'de> for &mut Decoder<'de, I, FIXED> {
    type Error = WireError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(WireError(
            "the encoding does not say what type a value is: deserialize_any cannot be used".into(),
        ))
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.byte()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            other => Err(WireError(format!("byte {other} is not a bool"))),
        }
    }

    #[inline]
    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_i8(self.byte()? as i8)
    }

    signed! {
        deserialize_i16 visit_i16 i16, U16_MARKER;
        deserialize_i32 visit_i32 i32, U32_MARKER;
        deserialize_i64 visit_i64 i64, U64_MARKER;
    }

    unsigned! {
        deserialize_u8 visit_u8 byte;
        deserialize_u16 visit_u16 u16;
        deserialize_u32 visit_u32 u32;
        deserialize_u64 visit_u64 u64;
        deserialize_u128 visit_u128 u128;
        deserialize_f32 visit_f32 f32;
        deserialize_f64 visit_f64 f64;
    }

    #[inline]
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if FIXED {
            return visitor.visit_i128(i128::from_le_bytes(self.array()?));
        }
        visitor.visit_i128(unzigzag(self.varint128()?))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let first = self.byte()?;
        let bad = || WireError(format!("byte {first} does not begin a char"));
        // The first byte says how many follow; a char cut short is not a char.
        let mut utf8 = [first, 0, 0, 0];
        let width = match first {
            0x00..=0x7F => 1,
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return Err(bad()),
        };
        for byte in &mut utf8[1..width] {
            *byte = self.byte().map_err(|_| bad())?;
        }
        let c = std::str::from_utf8(&utf8[..width])
            .ok()
            .and_then(|s| s.chars().next())
            .ok_or_else(bad)?;
        visitor.visit_char(c)
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.bytes()? {
            Run::Borrowed(bytes) => {
                visitor.visit_borrowed_str(std::str::from_utf8(bytes).map_err(not_utf8)?)
            }
            Run::Copied(bytes) => visitor.visit_str(std::str::from_utf8(bytes).map_err(not_utf8)?),
        }
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let text = String::from_utf8(self.owned()?).map_err(|e| not_utf8(e.utf8_error()))?;
        visitor.visit_string(text)
    }

    #[inline]
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.bytes()? {
            Run::Borrowed(bytes) => visitor.visit_borrowed_bytes(bytes),
            Run::Copied(bytes) => visitor.visit_bytes(bytes),
        }
    }

    #[inline]
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_byte_buf(self.owned()?)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.byte()? {
            0 => visitor.visit_none(),
            1 => self.nested(|de| visitor.visit_some(de)),
            other => Err(WireError(format!("byte {other} is not an Option's tag"))),
        }
    }

    #[inline]
    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_unit()
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.nested(|de| visitor.visit_newtype_struct(de))
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.len()?;
        self.nested(|de| visitor.visit_seq(de.elements(len)))
    }

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        self.nested(|de| visitor.visit_seq(de.elements(len)))
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.nested(|de| visitor.visit_seq(de.elements(len)))
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let len = self.len()?;
        self.nested(|de| visitor.visit_map(de.elements(len)))
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.nested(|de| visitor.visit_seq(de.elements(fields.len())))
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.nested(|de| visitor.visit_enum(de))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(WireError(
            "the encoding holds no field or variant names: deserialize_identifier cannot be used"
                .into(),
        ))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value> {
        Err(WireError(
            "the encoding does not say how long a value is: deserialize_ignored_any cannot be used"
                .into(),
        ))
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of a sequence, tuple or struct, or the entries of a map.
struct Elements<'a, 'de, I: Input<'de>, const FIXED: bool> {
    de: &'a mut Decoder<'de, I, FIXED>,
    left: usize,
}

impl<'de, I: Input<'de>, const FIXED: bool> Elements<'_, 'de, I, FIXED> {
    /// The next element (or key), `None` once all are read.
    #[inline]
    fn next<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.de.seed(seed).map(Some)
    }

    /// No more than there are bytes left: a visitor that sets room aside by this (serde's
    /// `Vec` does, up to 1 MiB) cannot be made to set aside more than the input could fill.
    #[inline]
    fn hint(&self) -> Option<usize> {
        Some(self.left.min(self.de.left()))
    }
}

impl<'de, I: Input<'de>, const FIXED: bool> SeqAccess<'de> for Elements<'_, 'de, I, FIXED> {
    type Error = WireError;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        self.next(seed)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.hint()
    }
}

impl<'de, I: Input<'de>, const FIXED: bool> MapAccess<'de> for Elements<'_, 'de, I, FIXED> {
    type Error = WireError;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        self.next(seed)
    }

    #[inline]
    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value> {
        self.de.seed(seed)
    }

    #[inline]
    fn size_hint(&self) -> Option<usize> {
        self.hint()
    }
}

impl<'de, I: Input<'de>, const FIXED: bool> EnumAccess<'de> for &mut Decoder<'de, I, FIXED> {
    type Error = WireError;
    type Variant = Self;

    #[inline]
    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self)> {
        let index = self.u32()?;
        let value = seed.deserialize(IntoDeserializer::<WireError>::into_deserializer(index))?;
        Ok((value, self))
    }
}

impl<'de, I: Input<'de>, const FIXED: bool> VariantAccess<'de> for &mut Decoder<'de, I, FIXED> {
    type Error = WireError;

    #[inline]
    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value> {
        self.seed(seed)
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value> {
        visitor.visit_seq(self.elements(len))
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_seq(self.elements(fields.len()))
    }
}
