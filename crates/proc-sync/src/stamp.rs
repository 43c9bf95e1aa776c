//! [`Stamp`]: words in the shared memory of each primitive of this crate that say which
//! primitive made it, and, for a [`Value`](crate::Value), [`Array`](crate::Array) or
//! [`Condition`](crate::Condition), the size and alignment of its element.
//!
//! A handle received from another process is only a descriptor and a few numbers, all of
//! which that process chose. The stamp is written once, by the process that made the
//! object and before anyone else can see it; a receiver reads it before it trusts anything
//! else in the memory, so that the memory of a `Lock` is never taken for an `RLock`'s, a
//! `Value<u64>`'s never for a `Value<u32>`'s, and a memory file that no primitive made
//! (zeros, garbage) is refused by name.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::error::{Error, Result};

/// "mps" (multiproc sync) and the layout's version, "1": what no file holds by chance at
/// that place, and what a build with another layout does not write.
const MAGIC: u32 = u32::from_le_bytes(*b"mps1");

/// The primitives of this crate, as their stamps and their handles' kinds name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Primitive {
    Lock = 1,
    RLock,
    Semaphore,
    BoundedSemaphore,
    Event,
    Condition,
    Barrier,
    Value,
    Array,
    RawValue,
    RawArray,
}

impl Primitive {
    const ALL: [Primitive; 11] = [
        Primitive::Lock,
        Primitive::RLock,
        Primitive::Semaphore,
        Primitive::BoundedSemaphore,
        Primitive::Event,
        Primitive::Condition,
        Primitive::Barrier,
        Primitive::Value,
        Primitive::Array,
        Primitive::RawValue,
        Primitive::RawArray,
    ];

    /// The type's name, as users know it: what its handle travels as
    /// (`proc_core::internal::handle_wire::HandleKind`) and what errors call it.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Primitive::Lock => "Lock",
            Primitive::RLock => "RLock",
            Primitive::Semaphore => "Semaphore",
            Primitive::BoundedSemaphore => "BoundedSemaphore",
            Primitive::Event => "Event",
            Primitive::Condition => "Condition",
            Primitive::Barrier => "Barrier",
            Primitive::Value => "Value",
            Primitive::Array => "Array",
            Primitive::RawValue => "RawValue",
            Primitive::RawArray => "RawArray",
        }
    }

    /// The name with its article: "a Lock", "an RLock" (said "ar-lock"), "an Event".
    pub(crate) fn a(self) -> String {
        let name = self.name();
        let article = match name.as_bytes() {
            [b'A' | b'E' | b'I' | b'O' | b'U', ..] => "an",
            [b'R', second, ..] if second.is_ascii_uppercase() => "an",
            _ => "a",
        };
        format!("{article} {name}")
    }

    fn from_code(code: u32) -> Option<Primitive> {
        Primitive::ALL.into_iter().find(|p| *p as u32 == code)
    }
}

/// The element a `Value`, `Array` or `Condition` holds: its size and alignment, which is
/// all a receiver can check of a `T` (a `Value<u32>` and a `Value<f32>` look alike). It
/// travels with their handles, as two numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Element {
    pub(crate) size: u64,
    pub(crate) align: u64,
}

impl Element {
    /// The element of the primitives that hold none.
    pub(crate) const NONE: Element = Element { size: 0, align: 0 };

    pub(crate) fn of<T>() -> Element {
        Element {
            size: size_of::<T>() as u64,
            align: align_of::<T>() as u64,
        }
    }

    /// Refuses a handle whose sender says it holds elements other than `T`: a
    /// `Value<u64>` received as a `Value<u32>` would be half a value.
    pub(crate) fn check_sent<T>(self, what: Primitive) -> Result<()> {
        let ours = Element::of::<T>();
        if self == ours {
            return Ok(());
        }
        Err(Error::Received {
            reason: format!("{} of {self} received as one of {ours}", what.a()),
        })
    }
}

impl std::fmt::Display for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-byte elements aligned to {}", self.size, self.align)
    }
}

/// What a primitive's shared memory says it is. All-zero (no stamp) is a valid value of it,
/// so that it may sit in a zero-filled header; every real one is written by [`write`] before
/// the memory is shared, and never changed.
///
/// [`write`]: Stamp::write
#[repr(C)]
pub(crate) struct Stamp {
    magic: AtomicU32,
    primitive: AtomicU32,
    element_size: AtomicU64,
    element_align: AtomicU64,
}

impl Stamp {
    /// Stamps a new primitive's memory, before any other process can see it.
    pub(crate) fn write(&self, primitive: Primitive, element: Element) {
        self.primitive.store(primitive as u32, Ordering::Relaxed);
        self.element_size.store(element.size, Ordering::Relaxed);
        self.element_align.store(element.align, Ordering::Relaxed);
        self.magic.store(MAGIC, Ordering::Release);
    }

    /// Whether received memory is a `primitive` holding `element`s: an error that says what
    /// it is instead.
    pub(crate) fn check(&self, primitive: Primitive, element: Element) -> Result<()> {
        let refuse = |reason: String| Err(Error::Received { reason });
        if self.magic.load(Ordering::Acquire) != MAGIC {
            return refuse(format!(
                "its memory file does not hold {} (nor any object of this version of \
                 proc-sync): it lacks the stamp every one carries",
                primitive.a()
            ));
        }
        let code = self.primitive.load(Ordering::Relaxed);
        match Primitive::from_code(code) {
            Some(found) if found == primitive => {}
            Some(found) => {
                return refuse(format!(
                    "its memory file holds the state of {}, not of {}",
                    found.a(),
                    primitive.a()
                ));
            }
            None => {
                return refuse(format!(
                    "its memory file is stamped with primitive number {code}, which does \
                     not exist"
                ));
            }
        }
        let found = Element {
            size: self.element_size.load(Ordering::Relaxed),
            align: self.element_align.load(Ordering::Relaxed),
        };
        if found != element {
            return refuse(format!(
                "its memory file holds {} of {found}, not of {element}",
                primitive.a()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeroed() -> Stamp {
        Stamp {
            magic: AtomicU32::new(0),
            primitive: AtomicU32::new(0),
            element_size: AtomicU64::new(0),
            element_align: AtomicU64::new(0),
        }
    }

    #[test]
    fn a_stamp_checks_as_what_it_was_written_as_and_nothing_else() {
        let stamp = zeroed();
        stamp.write(Primitive::Value, Element::of::<u64>());
        assert!(stamp.check(Primitive::Value, Element::of::<u64>()).is_ok());
        for (primitive, element) in [
            (Primitive::Value, Element::of::<u32>()),
            (Primitive::Array, Element::of::<u64>()),
            (Primitive::Lock, Element::NONE),
        ] {
            assert!(matches!(
                stamp.check(primitive, element),
                Err(Error::Received { .. })
            ));
        }
    }

    #[test]
    fn zeros_and_unknown_primitives_are_refused() {
        let stamp = zeroed();
        let err = stamp.check(Primitive::Lock, Element::NONE).unwrap_err();
        assert!(err.to_string().contains("lacks the stamp"), "{err}");
        stamp.write(Primitive::Lock, Element::NONE);
        stamp.primitive.store(77, Ordering::Relaxed);
        let err = stamp.check(Primitive::Lock, Element::NONE).unwrap_err();
        assert!(err.to_string().contains("number 77"), "{err}");
    }

    #[test]
    fn every_primitive_has_its_own_code_and_name() {
        for (i, p) in Primitive::ALL.into_iter().enumerate() {
            assert_eq!(Primitive::from_code(p as u32), Some(p));
            for q in &Primitive::ALL[i + 1..] {
                assert_ne!(p.name(), q.name());
            }
        }
    }
}
