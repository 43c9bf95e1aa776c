//! The wire codec: how values cross a process boundary.
//!
//! This module is the only place in multiproc that names bincode, so that the codec can be
//! replaced by changing one file. Everything a process receives from another is untrusted:
//! decoding always runs with a size limit, and a value that does not decode, or that leaves
//! bytes over, is an error and never a panic.
//!
//! ## What a decode may allocate
//! bincode reads a `String` or a byte buffer by allocating the length its prefix announces
//! and then filling it, so ten bytes that announce 4 GiB would allocate 4 GiB. bincode's own
//! guard against that, a limit on claimed bytes, is checked on every primitive it reads: with
//! it, a `Vec<u64>` of 200,000 elements took 1.06 ms to decode, without it 0.68 ms. So the
//! decoder runs without it, behind a guard of its own (the `guard` module): a thin layer
//! between bincode and the value being built that reads strings and byte buffers as slices
//! of the input (bincode checks their length against what is left of it before it hands
//! them out) and copies them from there, and that caps the length a sequence or map reports
//! to its visitor by the length of the input. What a decode sets aside before its elements
//! arrive is then bounded by the input's length (and serde's own cap of 1 MiB on
//! preallocation), whatever the bytes announce.

use serde::Serialize;
use serde::de::{DeserializeOwned, DeserializeSeed};

/// A byte buffer that the codec copies as one block. A `Vec<u8>` goes through serde as a
/// sequence, byte by byte: about 300 MiB/s to decode, where a `ByteBuf` (or a field marked
/// `#[serde(with = "serde_bytes")]`) is a `memcpy`. Use it for large binary payloads.
///
/// ```
/// use proc_core::codec::{self, ByteBuf};
///
/// let payload = ByteBuf::from(vec![7u8; 1 << 20]);
/// let bytes = codec::encode(&payload).unwrap();
/// let back: ByteBuf = codec::decode(&bytes, 2 << 20).unwrap();
/// assert_eq!(back.len(), 1 << 20);
/// ```
pub use serde_bytes::ByteBuf;

/// The largest encoded value decoded by default: 64 MiB.
pub const DEFAULT_LIMIT: usize = 64 << 20;

/// The compact layout: [`encode`], [`decode`] and every queue and connection use it.
fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// The fixed-width layout: [`Layout::Fixed`].
fn fixed() -> impl bincode::config::Config {
    bincode::config::standard().with_fixed_int_encoding()
}

/// How integers (and the lengths of strings, sequences and maps, and the tags of enums) are
/// laid out in an encoding.
///
/// [`Compact`](Layout::Compact), the layout of [`encode`] and [`decode`] and so of every
/// queue and connection, writes an integer in as few bytes as its value needs (a `u64`
/// below 251 in one byte, below 65,536 in three). [`Fixed`](Layout::Fixed) writes it at its
/// full width (a `u64` in eight bytes): more bytes for small values, no branch on each
/// value's size. A `Vec<u64>` of 200,000 elements encodes about 4× and decodes about 3×
/// faster fixed. A pool's chunks use it: their bulk is the tasks' numbers, encoded once and
/// decoded once on each side. Floats, `char`s, strings' bytes and `bool`s are the same in
/// both. A value must be decoded in the layout it was encoded in.
///
/// ```
/// use proc_core::codec::Layout;
///
/// let mut compact = Vec::new();
/// Layout::Compact.encode_into(&vec![1u64, 2, 3], &mut compact)?;
/// let mut fixed = Vec::new();
/// Layout::Fixed.encode_into(&vec![1u64, 2, 3], &mut fixed)?;
/// assert_eq!((compact.len(), fixed.len()), (4, 32));
/// assert_eq!(Layout::Fixed.decode::<Vec<u64>>(&fixed, 64)?, [1, 2, 3]);
/// # Ok::<(), proc_core::codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// Integers in as few bytes as their values need (bincode's variable-length integers).
    #[default]
    Compact,
    /// Integers at their full width, little-endian.
    Fixed,
}

impl Layout {
    /// As [`encode_into`](fn@encode_into), in this layout.
    pub fn encode_into<T: Serialize + ?Sized>(
        self,
        value: &T,
        buf: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        match self {
            Layout::Compact => encode_with(value, buf, config()),
            Layout::Fixed => encode_with(value, buf, fixed()),
        }
    }

    /// As [`decode`](fn@decode), in this layout.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8], limit: usize) -> Result<T, CodecError> {
        self.decode_seed(std::marker::PhantomData::<T>, bytes, limit)
    }

    /// As [`decode_seed`](fn@decode_seed), in this layout.
    pub fn decode_seed<'de, S: DeserializeSeed<'de>>(
        self,
        seed: S,
        bytes: &'de [u8],
        limit: usize,
    ) -> Result<S::Value, CodecError> {
        match self {
            Layout::Compact => decode_with(seed, bytes, limit, config()),
            Layout::Fixed => decode_with(seed, bytes, limit, fixed()),
        }
    }
}

/// A value that could not be encoded or decoded.
///
/// ```
/// use proc_core::codec::{self, CodecError};
///
/// let bytes = codec::encode(&"twelve bytes").unwrap();
/// let err = codec::decode::<String>(&bytes, 4).unwrap_err();
/// assert!(matches!(err, CodecError::TooLarge { len: 13, limit: 4 }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be encoded (for example a map with non-string keys that the
    /// serializer refuses, or a serializer error raised by a `Serialize` impl).
    #[error("encoding failed: {0}")]
    Encode(String),
    /// The bytes are not an encoding of the expected type.
    #[error("decoding failed: {0}")]
    Decode(String),
    /// The encoded value is larger than the limit.
    #[error("encoded value of {len} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The encoded length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The bytes held a complete value followed by bytes that belong to nothing.
    #[error("{extra} bytes left over after the decoded value")]
    TrailingBytes {
        /// How many bytes were left.
        extra: usize,
    },
}

/// Encodes `value` into a new buffer.
///
/// ```
/// let bytes = proc_core::codec::encode(&(7u64, "seven")).unwrap();
/// let back: (u64, String) = proc_core::codec::decode(&bytes, 1024).unwrap();
/// assert_eq!(back, (7, "seven".to_string()));
/// ```
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut buf = Vec::new();
    encode_into(value, &mut buf)?;
    Ok(buf)
}

/// Appends the encoding of `value` to `buf`, leaving what was there before in place (also
/// when encoding fails: then nothing is appended).
///
/// ```
/// let mut buf = vec![0xAA];
/// proc_core::codec::encode_into(&5u32, &mut buf).unwrap();
/// assert_eq!(buf[0], 0xAA);
/// assert_eq!(proc_core::codec::decode::<u32>(&buf[1..], 16).unwrap(), 5);
/// ```
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<(), CodecError> {
    encode_with(value, buf, config())
}

fn encode_with<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
    config: impl bincode::config::Config,
) -> Result<(), CodecError> {
    let start = buf.len();
    bincode::serde::encode_into_writer(value, VecWriter(buf), config).map_err(|e| {
        buf.truncate(start);
        CodecError::Encode(e.to_string())
    })
}

/// Appends to a `Vec<u8>`. Through bincode's `std::io::Write` adapter, encoding costs about
/// 40% more per primitive; bincode's own `Vec` writer is private.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// Decodes a `T` from exactly `bytes`, refusing input longer than `limit`.
///
/// The bytes are untrusted: a length prefix may announce far more than follows. Nothing is
/// set aside for announced lengths beyond what the input could hold (see the
/// [module docs](self)), so a few bytes can never make the decoder allocate gigabytes.
///
/// ```
/// use proc_core::codec::{decode, CodecError};
///
/// // A string whose length prefix claims far more bytes than there are.
/// let err = decode::<String>(&[0xFC, 0xFF, 0xFF, 0xFF, 0x7F, b'x'], 1024).unwrap_err();
/// assert!(matches!(err, CodecError::Decode(_)));
/// ```
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    decode_seed(std::marker::PhantomData::<T>, bytes, limit)
}

/// As [`decode`], with a [`DeserializeSeed`]: the value is built by `seed`, which may carry
/// state (for example a vector to append the decoded elements to, instead of a new one).
///
/// ```
/// use serde::de::{Deserializer, DeserializeSeed, SeqAccess, Visitor};
///
/// /// Appends the elements of an encoded `Vec<u32>` to a vector.
/// struct AppendTo<'a>(&'a mut Vec<u32>);
///
/// impl<'de> DeserializeSeed<'de> for AppendTo<'_> {
///     type Value = ();
///     fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
///         d.deserialize_seq(self)
///     }
/// }
///
/// impl<'de> Visitor<'de> for AppendTo<'_> {
///     type Value = ();
///     fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("a sequence of u32")
///     }
///     fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
///         while let Some(x) = seq.next_element()? {
///             self.0.push(x);
///         }
///         Ok(())
///     }
/// }
///
/// let mut all = vec![1];
/// let bytes = proc_core::codec::encode(&vec![2u32, 3])?;
/// proc_core::codec::decode_seed(AppendTo(&mut all), &bytes, 64)?;
/// assert_eq!(all, [1, 2, 3]);
/// # Ok::<(), proc_core::codec::CodecError>(())
/// ```
pub fn decode_seed<'de, S: DeserializeSeed<'de>>(
    seed: S,
    bytes: &'de [u8],
    limit: usize,
) -> Result<S::Value, CodecError> {
    decode_with(seed, bytes, limit, config())
}

fn decode_with<'de, S: DeserializeSeed<'de>>(
    seed: S,
    bytes: &'de [u8],
    limit: usize,
    config: impl bincode::config::Config,
) -> Result<S::Value, CodecError> {
    if bytes.len() > limit {
        return Err(CodecError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    let seed = guard::Seed::new(seed, bytes.len());
    let (value, used) = bincode::serde::seed_decode_from_slice(seed, bytes, config)
        .map_err(|e| CodecError::Decode(e.to_string()))?;
    if used != bytes.len() {
        return Err(CodecError::TrailingBytes {
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

/// The layer between bincode's decoder and the value being built (see the module docs):
/// every deserializer, visitor and access that bincode hands to the value goes through it, so
/// that no part of the value, however deeply nested, sees bincode's own string and byte
/// buffer reads or an uncapped length.
mod guard {
    use std::fmt;

    use serde::de::{
        DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
    };

    /// A seed whose deserializer is guarded; `cap` is the length of the input.
    pub(super) struct Seed<S> {
        inner: S,
        cap: usize,
    }

    impl<S> Seed<S> {
        pub(super) fn new(inner: S, cap: usize) -> Self {
            Seed { inner, cap }
        }
    }

    impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
        type Value = S::Value;

        #[inline]
        fn deserialize<D: Deserializer<'de>>(self, inner: D) -> Result<S::Value, D::Error> {
            self.inner.deserialize(Guarded {
                inner,
                cap: self.cap,
            })
        }
    }

    /// A guarded deserializer.
    struct Guarded<D> {
        inner: D,
        cap: usize,
    }

    impl<D> Guarded<D> {
        #[inline]
        fn visit<V>(&self, inner: V) -> Visit<V> {
            Visit {
                inner,
                cap: self.cap,
            }
        }
    }

    macro_rules! forward {
        ($($method:ident)*) => {$(
            #[inline]
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
                let visitor = self.visit(visitor);
                self.inner.$method(visitor)
            }
        )*};
    }

    impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guarded<D> {
        type Error = D::Error;

        forward! {
            deserialize_any deserialize_bool
            deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
            deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
            deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_bytes
            deserialize_option deserialize_unit deserialize_seq deserialize_map
            deserialize_identifier deserialize_ignored_any
        }

        /// Read as a slice of the input (bincode checks its length against what is left),
        /// then copied: never allocated for the announced length before the bytes are there.
        #[inline]
        fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.inner.deserialize_str(OwnedString(visitor))
        }

        /// As `deserialize_string`.
        #[inline]
        fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.inner.deserialize_bytes(OwnedBytes(visitor))
        }

        #[inline]
        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let visitor = self.visit(visitor);
            self.inner.deserialize_unit_struct(name, visitor)
        }

        #[inline]
        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let visitor = self.visit(visitor);
            self.inner.deserialize_newtype_struct(name, visitor)
        }

        #[inline]
        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            len: usize,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let visitor = self.visit(visitor);
            self.inner.deserialize_tuple(len, visitor)
        }

        #[inline]
        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            len: usize,
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let visitor = self.visit(visitor);
            self.inner.deserialize_tuple_struct(name, len, visitor)
        }

        #[inline]
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            name: &'static str,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let visitor = self.visit(visitor);
            self.inner.deserialize_struct(name, fields, visitor)
        }

        #[inline]
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            name: &'static str,
            variants: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            let visitor = self.visit(visitor);
            self.inner.deserialize_enum(name, variants, visitor)
        }

        fn is_human_readable(&self) -> bool {
            self.inner.is_human_readable()
        }
    }

    /// A visitor whose nested deserializers and accesses are guarded.
    struct Visit<V> {
        inner: V,
        cap: usize,
    }

    macro_rules! pass {
        ($($method:ident($ty:ty))*) => {$(
            #[inline]
            fn $method<E: serde::de::Error>(self, v: $ty) -> Result<V::Value, E> {
                self.inner.$method(v)
            }
        )*};
    }

    impl<'de, V: Visitor<'de>> Visitor<'de> for Visit<V> {
        type Value = V::Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.inner.expecting(f)
        }

        pass! {
            visit_bool(bool)
            visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64) visit_i128(i128)
            visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64) visit_u128(u128)
            visit_f32(f32) visit_f64(f64) visit_char(char)
            visit_str(&str) visit_borrowed_str(&'de str) visit_string(String)
            visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8]) visit_byte_buf(Vec<u8>)
        }

        #[inline]
        fn visit_none<E: serde::de::Error>(self) -> Result<V::Value, E> {
            self.inner.visit_none()
        }

        #[inline]
        fn visit_unit<E: serde::de::Error>(self) -> Result<V::Value, E> {
            self.inner.visit_unit()
        }

        #[inline]
        fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<V::Value, D::Error> {
            self.inner.visit_some(Guarded {
                inner,
                cap: self.cap,
            })
        }

        #[inline]
        fn visit_newtype_struct<D: Deserializer<'de>>(
            self,
            inner: D,
        ) -> Result<V::Value, D::Error> {
            self.inner.visit_newtype_struct(Guarded {
                inner,
                cap: self.cap,
            })
        }

        #[inline]
        fn visit_seq<A: SeqAccess<'de>>(self, inner: A) -> Result<V::Value, A::Error> {
            self.inner.visit_seq(Access {
                inner,
                cap: self.cap,
            })
        }

        #[inline]
        fn visit_map<A: MapAccess<'de>>(self, inner: A) -> Result<V::Value, A::Error> {
            self.inner.visit_map(Access {
                inner,
                cap: self.cap,
            })
        }

        #[inline]
        fn visit_enum<A: EnumAccess<'de>>(self, inner: A) -> Result<V::Value, A::Error> {
            self.inner.visit_enum(Access {
                inner,
                cap: self.cap,
            })
        }
    }

    /// Hands a borrowed string to a visitor that asked for an owned one, as an owned one.
    struct OwnedString<V>(V);

    impl<'de, V: Visitor<'de>> Visitor<'de> for OwnedString<V> {
        type Value = V::Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.expecting(f)
        }

        #[inline]
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<V::Value, E> {
            self.0.visit_string(v.to_owned())
        }

        #[inline]
        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<V::Value, E> {
            self.0.visit_string(v)
        }
    }

    /// Hands borrowed bytes to a visitor that asked for a byte buffer, as a byte buffer.
    struct OwnedBytes<V>(V);

    impl<'de, V: Visitor<'de>> Visitor<'de> for OwnedBytes<V> {
        type Value = V::Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.expecting(f)
        }

        #[inline]
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<V::Value, E> {
            self.0.visit_byte_buf(v.to_vec())
        }

        #[inline]
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<V::Value, E> {
            self.0.visit_byte_buf(v)
        }
    }

    /// A guarded sequence, map, enum or variant access.
    struct Access<A> {
        inner: A,
        cap: usize,
    }

    impl<A> Access<A> {
        #[inline]
        fn seed<S>(&self, inner: S) -> Seed<S> {
            Seed::new(inner, self.cap)
        }
    }

    impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Access<A> {
        type Error = A::Error;

        #[inline]
        fn next_element_seed<S: DeserializeSeed<'de>>(
            &mut self,
            seed: S,
        ) -> Result<Option<S::Value>, A::Error> {
            let seed = self.seed(seed);
            self.inner.next_element_seed(seed)
        }

        /// What the length prefix announced, but never more than the input is long.
        #[inline]
        fn size_hint(&self) -> Option<usize> {
            self.inner.size_hint().map(|len| len.min(self.cap))
        }
    }

    impl<'de, A: MapAccess<'de>> MapAccess<'de> for Access<A> {
        type Error = A::Error;

        #[inline]
        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, A::Error> {
            let seed = self.seed(seed);
            self.inner.next_key_seed(seed)
        }

        #[inline]
        fn next_value_seed<S: DeserializeSeed<'de>>(
            &mut self,
            seed: S,
        ) -> Result<S::Value, A::Error> {
            let seed = self.seed(seed);
            self.inner.next_value_seed(seed)
        }

        /// As for sequences.
        #[inline]
        fn size_hint(&self) -> Option<usize> {
            self.inner.size_hint().map(|len| len.min(self.cap))
        }
    }

    impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Access<A> {
        type Error = A::Error;
        type Variant = Access<A::Variant>;

        #[inline]
        fn variant_seed<S: DeserializeSeed<'de>>(
            self,
            seed: S,
        ) -> Result<(S::Value, Self::Variant), A::Error> {
            let seed = self.seed(seed);
            let (value, inner) = self.inner.variant_seed(seed)?;
            Ok((
                value,
                Access {
                    inner,
                    cap: self.cap,
                },
            ))
        }
    }

    impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Access<A> {
        type Error = A::Error;

        #[inline]
        fn unit_variant(self) -> Result<(), A::Error> {
            self.inner.unit_variant()
        }

        #[inline]
        fn newtype_variant_seed<S: DeserializeSeed<'de>>(
            self,
            seed: S,
        ) -> Result<S::Value, A::Error> {
            let seed = self.seed(seed);
            self.inner.newtype_variant_seed(seed)
        }

        #[inline]
        fn tuple_variant<V: Visitor<'de>>(
            self,
            len: usize,
            visitor: V,
        ) -> Result<V::Value, A::Error> {
            let visitor = Visit {
                inner: visitor,
                cap: self.cap,
            };
            self.inner.tuple_variant(len, visitor)
        }

        #[inline]
        fn struct_variant<V: Visitor<'de>>(
            self,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, A::Error> {
            let visitor = Visit {
                inner: visitor,
                cap: self.cap,
            };
            self.inner.struct_variant(fields, visitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_nested_values() {
        let value = (vec![1u8, 2, 3], Some("x".to_string()), -5i64);
        let bytes = encode(&value).unwrap();
        assert_eq!(
            decode::<(Vec<u8>, Option<String>, i64)>(&bytes, 1 << 10).unwrap(),
            value
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&1u32).unwrap();
        bytes.push(0);
        assert_eq!(
            decode::<u32>(&bytes, 64),
            Err(CodecError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn truncated_input_is_a_decode_error() {
        let bytes = encode(&"hello".to_string()).unwrap();
        assert!(matches!(
            decode::<String>(&bytes[..3], 64),
            Err(CodecError::Decode(_))
        ));
    }

    #[test]
    fn huge_declared_vec_length_does_not_allocate_it() {
        // varint tag 0xFD: a u64 follows; claim 2^40 elements with 1 byte of data.
        let mut bytes = vec![0xFD];
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        bytes.push(1);
        assert!(decode::<Vec<u64>>(&bytes, 1 << 10).is_err());
    }

    mod shapes {
        use std::collections::{BTreeMap, HashMap};

        use serde::{Deserialize, Serialize};

        use super::super::*;

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

        #[test]
        fn every_shape_of_the_serde_model_round_trips_and_reads_as_bincode_reads_it() {
            let value = everything();
            let bytes = encode(&value).unwrap();
            assert_eq!(decode::<Everything>(&bytes, bytes.len()).unwrap(), value);
            let (theirs, used): (Everything, usize) =
                bincode::serde::decode_from_slice(&bytes, config()).unwrap();
            assert_eq!((theirs, used), (everything(), bytes.len()));
            // Cut anywhere, it is an error, never a panic.
            for end in 0..bytes.len() {
                assert!(decode::<Everything>(&bytes[..end], bytes.len()).is_err());
            }
        }

        #[test]
        fn the_fixed_layout_round_trips_every_shape_and_is_bincodes_fixed_int_encoding() {
            let value = everything();
            let mut bytes = Vec::new();
            Layout::Fixed.encode_into(&value, &mut bytes).unwrap();
            assert_eq!(
                bytes,
                bincode::serde::encode_to_vec(&value, fixed()).unwrap()
            );
            assert_ne!(bytes, encode(&value).unwrap());
            assert_eq!(
                Layout::Fixed
                    .decode::<Everything>(&bytes, bytes.len())
                    .unwrap(),
                value
            );
            for end in 0..bytes.len() {
                assert!(
                    Layout::Fixed
                        .decode::<Everything>(&bytes[..end], bytes.len())
                        .is_err()
                );
            }
            // A length that claims far more than follows allocates nothing for it.
            let mut huge = (1u64 << 40).to_le_bytes().to_vec();
            huge.push(b'x');
            assert!(Layout::Fixed.decode::<String>(&huge, 64).is_err());
            assert!(Layout::Fixed.decode::<Vec<u64>>(&huge, 64).is_err());
        }

        /// Takes strings and byte buffers only as owned values.
        #[derive(Debug, PartialEq)]
        struct OnlyOwned(String, Vec<u8>);

        impl<'de> Deserialize<'de> for OnlyOwned {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::{Error, SeqAccess, Visitor};
                struct Owned<const BYTES: bool>;
                // The misuse is the point: bincode hands `deserialize_string` an owned
                // string, and so must the codec.
                #[allow(clippy::serde_api_misuse)]
                impl<'de> Visitor<'de> for Owned<false> {
                    type Value = String;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an owned string")
                    }
                    fn visit_string<E: Error>(self, v: String) -> Result<String, E> {
                        Ok(v)
                    }
                }
                impl<'de> Visitor<'de> for Owned<true> {
                    type Value = Vec<u8>;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an owned byte buffer")
                    }
                    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                        Ok(v)
                    }
                }
                struct Text(String);
                impl<'de> Deserialize<'de> for Text {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        d.deserialize_string(Owned::<false>).map(Text)
                    }
                }
                struct Bytes(Vec<u8>);
                impl<'de> Deserialize<'de> for Bytes {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        d.deserialize_byte_buf(Owned::<true>).map(Bytes)
                    }
                }
                struct Both;
                impl<'de> Visitor<'de> for Both {
                    type Value = OnlyOwned;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a string and a byte buffer")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<OnlyOwned, A::Error> {
                        let missing = || A::Error::custom("missing field");
                        let Text(text) = seq.next_element()?.ok_or_else(missing)?;
                        let Bytes(bytes) = seq.next_element()?.ok_or_else(missing)?;
                        Ok(OnlyOwned(text, bytes))
                    }
                }
                d.deserialize_tuple(2, Both)
            }
        }

        #[test]
        fn a_visitor_that_takes_only_owned_strings_and_byte_buffers_gets_them() {
            let bytes = encode(&("text", ByteBuf::from(vec![1, 2]))).unwrap();
            assert_eq!(
                decode::<OnlyOwned>(&bytes, 64).unwrap(),
                OnlyOwned("text".into(), vec![1, 2])
            );
        }

        /// Reports (as its error) the length its sequence announces, which a naive
        /// collection would preallocate.
        #[derive(Debug)]
        struct Announced;

        impl<'de> Deserialize<'de> for Announced {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Peek;
                impl<'de> serde::de::Visitor<'de> for Peek {
                    type Value = Announced;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a sequence")
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        seq: A,
                    ) -> Result<Announced, A::Error> {
                        Err(serde::de::Error::custom(format!(
                            "announced {:?}",
                            seq.size_hint()
                        )))
                    }
                }
                d.deserialize_seq(Peek)
            }
        }

        #[test]
        fn the_length_a_sequence_reports_is_never_more_than_the_input_is_long() {
            // Tag 0xFD: a u64 length follows, 2^40 elements announced in 10 bytes.
            let mut bytes = vec![0xFD];
            bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
            bytes.push(1);
            let err = decode::<Announced>(&bytes, 64).unwrap_err();
            assert!(err.to_string().contains("announced Some(10)"), "{err}");
        }
    }
}
