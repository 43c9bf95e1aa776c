//! The encoding half: [`Encoder`], serde's `Serializer` for the wire format, writing
//! straight into an [`Out`] (a buffer, a capped buffer, or a sink's stage). Each method is
//! a few instructions for a `Vec`, and inlines away: between a value and its bytes there is
//! nothing else.

use serde::ser::{self, Serialize};

use crate::error::{Result, WireError};
use crate::output::Out;
use crate::varint::{U16_MARKER, U32_MARKER, U64_MARKER, U128_MARKER, zigzag, zigzag64};

/// Writes values into an [`Out`]; `FIXED` picks the layout of integers.
pub(crate) struct Encoder<'a, const FIXED: bool, O: Out + ?Sized = Vec<u8>> {
    out: &'a mut O,
}

impl<'a, const FIXED: bool, O: Out + ?Sized> Encoder<'a, FIXED, O> {
    pub(crate) fn new(out: &'a mut O) -> Self {
        Encoder { out }
    }

    #[inline]
    fn push(&mut self, byte: u8) {
        self.out.staged().push(byte);
    }

    #[inline]
    fn extend(&mut self, bytes: &[u8]) {
        self.out.staged().extend_from_slice(bytes);
    }

    /// Compact's variable-length form of an unsigned value.
    #[inline]
    fn varint(&mut self, v: u64) {
        if v < u64::from(U16_MARKER) {
            self.push(v as u8);
        } else {
            self.wide_varint(v);
        }
    }

    /// `varint` of a value that takes a marker byte.
    #[inline(never)]
    fn wide_varint(&mut self, v: u64) {
        if let Ok(v) = u16::try_from(v) {
            self.push(U16_MARKER);
            self.extend(&v.to_le_bytes());
        } else if let Ok(v) = u32::try_from(v) {
            self.push(U32_MARKER);
            self.extend(&v.to_le_bytes());
        } else {
            self.push(U64_MARKER);
            self.extend(&v.to_le_bytes());
        }
    }

    /// As `varint`, for 128-bit values.
    fn varint128(&mut self, v: u128) {
        match u64::try_from(v) {
            Ok(v) => self.varint(v),
            Err(_) => {
                self.push(U128_MARKER);
                self.extend(&v.to_le_bytes());
            }
        }
    }

    /// An integer: its little-endian bytes in Fixed; in Compact, `compact` (its value, or
    /// its zig-zagged value if it is signed) in variable length.
    #[inline]
    fn int<const N: usize>(&mut self, le: [u8; N], compact: impl FnOnce() -> u64) {
        if FIXED {
            self.extend(&le);
        } else {
            self.varint(compact());
        }
    }

    #[inline]
    fn u32(&mut self, v: u32) {
        self.int(v.to_le_bytes(), || v.into());
    }

    #[inline]
    fn u64(&mut self, v: u64) {
        self.int(v.to_le_bytes(), || v);
    }

    #[inline]
    fn len(&mut self, len: usize) {
        self.u64(len as u64);
    }

    /// Writes `value`: in one copy if it is a run of plain numbers (see `bulk`), else
    /// through its `Serialize`. Every value the encoder is handed goes through here.
    #[inline]
    pub(crate) fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        match crate::bulk::as_bytes::<T, FIXED>(value) {
            Some((len, bytes)) => {
                self.len(len);
                self.out.run(bytes)
            }
            None => value.serialize(self),
        }
    }
}

impl<'a, 'b, const FIXED: bool, O: Out + ?Sized> ser::Serializer for &'b mut Encoder<'a, FIXED, O> {
    type Ok = ();
    type Error = WireError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.push(u8::from(v));
        Ok(())
    }

    #[inline]
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.push(v as u8);
        Ok(())
    }

    #[inline]
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.int(v.to_le_bytes(), || zigzag64(v.into()));
        Ok(())
    }

    #[inline]
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.int(v.to_le_bytes(), || zigzag64(v.into()));
        Ok(())
    }

    #[inline]
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.int(v.to_le_bytes(), || zigzag64(v));
        Ok(())
    }

    #[inline]
    fn serialize_i128(self, v: i128) -> Result<()> {
        if FIXED {
            self.extend(&v.to_le_bytes());
        } else {
            self.varint128(zigzag(v));
        }
        Ok(())
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.push(v);
        Ok(())
    }

    #[inline]
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.int(v.to_le_bytes(), || v.into());
        Ok(())
    }

    #[inline]
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.u32(v);
        Ok(())
    }

    #[inline]
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.u64(v);
        Ok(())
    }

    #[inline]
    fn serialize_u128(self, v: u128) -> Result<()> {
        if FIXED {
            self.extend(&v.to_le_bytes());
        } else {
            self.varint128(v);
        }
        Ok(())
    }

    #[inline]
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.extend(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.extend(&v.to_le_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_char(self, v: char) -> Result<()> {
        self.extend(v.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<()> {
        self.serialize_bytes(v.as_bytes())
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.len(v.len());
        self.out.run(v)
    }

    #[inline]
    fn serialize_none(self) -> Result<()> {
        self.push(0);
        Ok(())
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        self.push(1);
        self.value(value)
    }

    #[inline]
    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(self, _: &'static str, index: u32, _: &'static str) -> Result<()> {
        self.u32(index);
        Ok(())
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        self.value(value)
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        self.u32(index);
        self.value(value)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self> {
        let len = len.ok_or_else(|| WireError("a sequence must know its length".into()))?;
        self.len(len);
        Ok(self)
    }

    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _len: usize,
    ) -> Result<Self> {
        self.u32(index);
        Ok(self)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self> {
        let len = len.ok_or_else(|| WireError("a map must know its length".into()))?;
        self.len(len);
        Ok(self)
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self> {
        Ok(self)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _: &'static str,
        index: u32,
        _: &'static str,
        _len: usize,
    ) -> Result<Self> {
        self.u32(index);
        Ok(self)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The parts of a sequence, tuple, map or struct are their values in order.
macro_rules! compound {
    ($($trait:ident $method:ident $(($key:ident))?;)*) => {$(
        impl<'a, 'b, const FIXED: bool, O: Out + ?Sized> ser::$trait for &'b mut Encoder<'a, FIXED, O> {
            type Ok = ();
            type Error = WireError;

            #[inline]
            fn $method<T: Serialize + ?Sized>(
                &mut self,
                $($key: &'static str,)?
                value: &T,
            ) -> Result<()> {
                $(let _ = $key;)?
                self.value(value)?;
                self.out.checkpoint()
            }

            #[inline]
            fn end(self) -> Result<()> {
                Ok(())
            }
        }
    )*};
}

compound! {
    SerializeSeq serialize_element;
    SerializeTuple serialize_element;
    SerializeTupleStruct serialize_field;
    SerializeTupleVariant serialize_field;
    SerializeStruct serialize_field(key);
    SerializeStructVariant serialize_field(key);
}

impl<'a, 'b, const FIXED: bool, O: Out + ?Sized> ser::SerializeMap
    for &'b mut Encoder<'a, FIXED, O>
{
    type Ok = ();
    type Error = WireError;

    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.value(key)
    }

    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.value(value)?;
        self.out.checkpoint()
    }

    #[inline]
    fn end(self) -> Result<()> {
        Ok(())
    }
}
