//! Names of shared memory blocks, as Python's `multiprocessing.shared_memory` spells them.
//!
//! A block is the file `/dev/shm/<name>`; `shm_open` takes it as `/<name>`. Python adds the
//! leading `/` to the name it is given and reports the name without it, and glibc skips any
//! leading `/`s: so `"psm_1a2b"` and `"/psm_1a2b"` name the same block in Python and here.
//! [`Name`] keeps the bare form; [`Name::with_slash`] is what `shm_open` gets.

use std::ffi::CString;

use crate::error::{Error, Result};

/// The longest name: a file name's limit (`NAME_MAX`).
pub(crate) const MAX_NAME_LEN: usize = 255;

/// What Python puts before a random name (without the slash).
const RANDOM_PREFIX: &str = "psm_";

/// Random bytes in a random name: 8 hex digits, as Python's `_make_filename`.
const RANDOM_BYTES: usize = 4;

/// A validated block name, without its leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name(String);

impl Name {
    /// Checks `name` (an optional leading `/`, then 1 to [`MAX_NAME_LEN`] bytes with no `/`
    /// and no NUL, not `.` or `..`).
    pub(crate) fn parse(name: &str) -> Result<Name> {
        let invalid = |reason| Error::InvalidName {
            name: name.to_string(),
            reason,
        };
        let bare = name.trim_start_matches('/');
        if bare.is_empty() {
            return Err(invalid("a name needs at least one character besides '/'"));
        }
        if bare.contains('/') {
            return Err(invalid(
                "a name may start with '/' but holds no other '/' (it names one file in /dev/shm)",
            ));
        }
        if bare.contains('\0') {
            return Err(invalid("a name cannot hold a NUL byte"));
        }
        if bare == "." || bare == ".." {
            return Err(invalid("'.' and '..' are not names of files"));
        }
        if bare.len() > MAX_NAME_LEN {
            return Err(invalid(
                "a name is at most 255 bytes long (a file name's limit)",
            ));
        }
        Ok(Name(bare.to_string()))
    }

    /// A fresh random name, `psm_` and 8 hex digits, as Python makes them.
    pub(crate) fn random() -> Result<Name> {
        let mut bytes = [0u8; RANDOM_BYTES];
        proc_core::internal::fill_random(&mut bytes)
            .map_err(|e| Error::io("getrandom for a block name", e))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Name(format!("{RANDOM_PREFIX}{hex}")))
    }

    /// The name without a leading `/`, as Python's `SharedMemory.name` reports it.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// `/<name>`, as `shm_open` and `shm_unlink` take it.
    pub(crate) fn with_slash(&self) -> CString {
        // A validated name holds no NUL, so this cannot fail; the fallback is never taken.
        CString::new(format!("/{}", self.0)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leading_slash_is_optional_as_in_python() {
        assert_eq!(Name::parse("/abc").unwrap(), Name::parse("abc").unwrap());
        assert_eq!(Name::parse("abc").unwrap().with_slash().as_bytes(), b"/abc");
    }

    #[test]
    fn names_that_are_not_one_file_are_refused() {
        for bad in ["", "/", "a/b", "/a/", ".", "..", "a\0b"] {
            assert!(
                matches!(Name::parse(bad), Err(Error::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert!(Name::parse(&"x".repeat(MAX_NAME_LEN)).is_ok());
        assert!(Name::parse(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn random_names_look_like_pythons() {
        let name = Name::random().unwrap();
        let hex = name.as_str().strip_prefix("psm_").unwrap();
        assert_eq!(hex.len(), 8);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(name, Name::random().unwrap());
    }
}
