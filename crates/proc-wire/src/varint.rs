//! The integer forms both halves share: Compact's marker bytes, and the zig-zag mapping
//! that makes small negative numbers small unsigned ones (0, -1, 1, -2, … become 0, 1, 2,
//! 3, …).

/// Compact's markers: the byte before a value that did not fit in one byte.
pub(crate) const U16_MARKER: u8 = 251;
pub(crate) const U32_MARKER: u8 = 252;
pub(crate) const U64_MARKER: u8 = 253;
pub(crate) const U128_MARKER: u8 = 254;

#[inline]
pub(crate) fn zigzag(v: i128) -> u128 {
    if v < 0 {
        !(v as u128) * 2 + 1
    } else {
        (v as u128) * 2
    }
}

#[inline]
pub(crate) fn zigzag64(v: i64) -> u64 {
    if v < 0 {
        !(v as u64) * 2 + 1
    } else {
        (v as u64) * 2
    }
}

#[inline]
pub(crate) fn unzigzag(n: u128) -> i128 {
    if n.is_multiple_of(2) {
        (n / 2) as i128
    } else {
        !(n / 2) as i128
    }
}

#[inline]
pub(crate) fn unzigzag64(n: u64) -> i64 {
    if n.is_multiple_of(2) {
        (n / 2) as i64
    } else {
        !(n / 2) as i64
    }
}
