//! Runs of plain numbers in one copy: the encoding of a `Vec<u8>`, `Vec<f64>`, `[f32]`, …
//! written and read as one block of bytes instead of one serde call per element.
//!
//! serde hands a sequence to the codec element by element, so a 1 MiB `Vec<u8>` costs a
//! million calls each way. Yet for numbers of a fixed width the encoding of the whole
//! sequence is its length and then the elements' little-endian bytes back to back, which on
//! a little-endian machine are the bytes of the vector itself. So wherever the codec is
//! handed a value of a type it knows it can copy (at the top, and as a field, element,
//! map value, `Some` or newtype of anything), it recognises the type by its `TypeId`
//! ([`typeid::of`], which also takes types that are not `'static`) and copies the bytes
//! in one go. The bytes are exactly those of the element-by-element path: this is a faster
//! way to the same encoding, never another encoding.
//!
//! Which types: `Vec<E>`, `Box<[E]>` and `[E]` for an `E` whose encoding has a fixed width
//! in the layout at hand: `u8`, `i8`, `f32` and `f64` always; in the Fixed layout also
//! `u16`, `u32`, `u64`, `u128`, `i16`, `i32`, `i64` and `i128` (Compact writes those
//! variable-length, element by element). Decoding takes `Vec<E>` (serde's own seed for
//! it, as a derived struct's field or a top-level value has). Every other type, and every
//! type on a big-endian machine, goes the usual way.
//!
//! Decoding stays bounded: the length prefix is checked against what is left of the input
//! (as for a string) before anything is set aside, and any bit pattern is a valid number.

use std::marker::PhantomData;
use std::mem::{ManuallyDrop, size_of, size_of_val};

use serde::de::DeserializeSeed;

/// Whether `A` and `B` are the same type (lifetimes aside, and the types compared here
/// have none).
#[inline(always)]
fn same<A: ?Sized, B: ?Sized>() -> bool {
    typeid::of::<A>() == typeid::of::<B>()
}

/// A number whose encoding in the layout `FIXED` picks is its little-endian bytes, and
/// whose every bit pattern is a valid value.
///
/// # Safety
/// Implemented only for primitive integers and floats: no padding, no invalid values.
unsafe trait Plain: Copy + 'static {
    /// Whether Compact writes it at its full width too (a byte, or a float).
    const ALWAYS: bool;
}

macro_rules! plain {
    ($($number:ty: $always:expr),*) => {$(
        // SAFETY: a primitive number: no padding, and every bit pattern is a valid value.
        unsafe impl Plain for $number {
            const ALWAYS: bool = $always;
        }
    )*};
}

plain!(u8: true, i8: true, f32: true, f64: true);
plain!(u16: false, u32: false, u64: false, u128: false);
plain!(i16: false, i32: false, i64: false, i128: false);

/// Whether runs of `E` are copied in the layout `FIXED` picks.
#[inline(always)]
const fn copied<E: Plain, const FIXED: bool>() -> bool {
    cfg!(target_endian = "little") && (E::ALWAYS || FIXED)
}

/// `value` as a slice of `E`, if its type is `Vec<E>`, `Box<[E]>` or `[E]`.
#[inline(always)]
fn as_run<T: ?Sized, E: Plain>(value: &T) -> Option<&[E]> {
    if same::<T, Vec<E>>() {
        // SAFETY: `T` is `Vec<E>` (no lifetimes to differ), so the pointer is to one.
        return Some(unsafe { &*(value as *const T).cast::<Vec<E>>() }.as_slice());
    }
    if same::<T, Box<[E]>>() {
        // SAFETY: `T` is `Box<[E]>`.
        return Some(unsafe { &*(value as *const T).cast::<Box<[E]>>() });
    }
    if same::<T, [E]>() {
        let len = size_of_val(value) / size_of::<E>().max(1);
        // SAFETY: `T` is `[E]`: the data pointer is to `len` initialised elements, borrowed
        // for as long as `value` is.
        return Some(unsafe { std::slice::from_raw_parts((value as *const T).cast::<E>(), len) });
    }
    None
}

/// The bytes of `run`, which are its encoding's elements on a little-endian machine.
#[inline(always)]
fn bytes_of<E: Plain>(run: &[E]) -> &[u8] {
    // SAFETY: `E` is plain (no padding), so its `size_of_val(run)` bytes are initialised,
    // and `u8` has no alignment to keep.
    unsafe { std::slice::from_raw_parts(run.as_ptr().cast::<u8>(), size_of_val(run)) }
}

/// The element count and the encoding's bytes of `value`, if its type is a run this module
/// copies in the layout `FIXED` picks; `None` if it is not.
#[inline(always)]
pub(crate) fn as_bytes<T: ?Sized, const FIXED: bool>(value: &T) -> Option<(usize, &[u8])> {
    macro_rules! each {
        ($($e:ty),*) => {$(
            if copied::<$e, FIXED>() {
                if let Some(run) = as_run::<T, $e>(value) {
                    return Some((run.len(), bytes_of(run)));
                }
            }
        )*};
    }
    each!(u8, i8, f32, f64, u16, u32, u64, u128, i16, i32, i64, i128);
    None
}

/// How to read the value of `V` in one copy.
pub(crate) enum Reader<V> {
    /// From a byte vector as the input gives it (`V` is `Vec<u8>`).
    Bytes(fn(Vec<u8>) -> V),
    /// From its elements' bytes, `width` each: `start` makes an empty value with room for
    /// a number of elements, and `extend` appends the elements whose bytes it is given (a
    /// whole number of them).
    Run {
        width: usize,
        start: fn(usize) -> V,
        extend: fn(&mut V, &[u8]),
    },
}

/// How to read what `S` stands for in one copy, if `S` is serde's seed of a `Vec<E>` this
/// module copies in the layout `FIXED` picks; `None` if it is not.
#[inline(always)]
pub(crate) fn reader<'de, S: DeserializeSeed<'de>, const FIXED: bool>() -> Option<Reader<S::Value>>
{
    if cfg!(target_endian = "little") && same::<S, PhantomData<Vec<u8>>>() {
        // SAFETY: `S` is `PhantomData<Vec<u8>>`, whose `Value` is `Vec<u8>`.
        return Some(Reader::Bytes(|v| unsafe { cast::<Vec<u8>, S::Value>(v) }));
    }
    macro_rules! each {
        ($($e:ty),*) => {$(
            if copied::<$e, FIXED>() && same::<S, PhantomData<Vec<$e>>>() {
                return Some(Reader::Run {
                    width: size_of::<$e>(),
                    // SAFETY: `S` is `PhantomData<Vec<E>>`, whose `Value` is `Vec<E>`.
                    start: |room| unsafe { cast::<Vec<$e>, S::Value>(Vec::with_capacity(room)) },
                    extend: |value, bytes| {
                        // SAFETY: as above: the value is a `Vec<E>`.
                        let vec = unsafe { &mut *(value as *mut S::Value).cast::<Vec<$e>>() };
                        extend_from_bytes::<$e>(vec, bytes);
                    },
                });
            }
        )*};
    }
    each!(i8, f32, f64, u16, u32, u64, u128, i16, i32, i64, i128);
    None
}

/// Appends to `vec` the elements whose little-endian bytes `bytes` holds (a trailing part
/// of an element, which the callers never give, is left out).
fn extend_from_bytes<E: Plain>(vec: &mut Vec<E>, bytes: &[u8]) {
    let count = bytes.len() / size_of::<E>().max(1);
    vec.reserve(count);
    // SAFETY: the vector has room for `count` more elements, which `count * size_of::<E>()`
    // bytes of `bytes` fill; every bit pattern is a valid `E` (`Plain`), and on this
    // little-endian machine the encoding's bytes are its bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            vec.as_mut_ptr().add(vec.len()).cast::<u8>(),
            count * size_of::<E>(),
        );
        vec.set_len(vec.len() + count);
    }
}

/// `a` as a `B`.
///
/// # Safety
/// `A` and `B` must be the same type.
unsafe fn cast<A, B>(a: A) -> B {
    let a = ManuallyDrop::new(a);
    // SAFETY: by the contract `B` is `A`, and `a` is not dropped, so the value moves.
    unsafe { std::ptr::read((&raw const *a).cast::<B>()) }
}
