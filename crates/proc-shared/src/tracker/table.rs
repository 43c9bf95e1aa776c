//! The tracker's registered names: a multiset, one entry per registration, so that a name
//! two creators of the same tree registered (one of them refused by `O_EXCL`, which then
//! unregisters) stays registered for the other.
//!
//! It lives in the tracker process, a child forked from a process that may run threads: it
//! may call only async-signal-safe functions, so it never touches the allocator (another
//! thread may have held its lock at the fork) and never panics. Its memory is its own
//! anonymous mapping, grown with `mremap`; a name is a fixed slot (its length, then its
//! bytes).

use crate::name::MAX_NAME_LEN;

/// A slot: one length byte and up to [`MAX_NAME_LEN`] bytes of name.
const SLOT: usize = 1 + MAX_NAME_LEN;

/// Slots in the first mapping (16 KiB); each growth doubles it.
const FIRST_CAPACITY: usize = 64;

/// Registrations of names, in memory mapped by the table itself.
pub(super) struct Table {
    base: *mut u8,
    capacity: usize,
    len: usize,
}

impl Table {
    /// An empty table (no memory yet).
    pub(super) const fn new() -> Table {
        Table {
            base: std::ptr::null_mut(),
            capacity: 0,
            len: 0,
        }
    }

    /// Adds one registration of `name`. A name of bad length, or one that finds no memory,
    /// is dropped (the tracker cannot do more without allocating).
    pub(super) fn insert(&mut self, name: &[u8]) {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return;
        }
        if self.len == self.capacity && !self.grow() {
            return;
        }
        let slot = self.slot_mut(self.len);
        slot[0] = name.len() as u8;
        if let Some(bytes) = slot.get_mut(1..=name.len()) {
            bytes.copy_from_slice(name);
        }
        self.len += 1;
    }

    /// Removes one registration of `name`, if there is one (the last slot takes its place).
    pub(super) fn remove(&mut self, name: &[u8]) {
        let Some(index) = self.position(name) else {
            return;
        };
        let last = self.len - 1;
        if index != last {
            let mut moved = [0u8; SLOT];
            moved.copy_from_slice(self.slot_mut(last));
            self.slot_mut(index).copy_from_slice(&moved);
        }
        self.len = last;
    }

    /// The names in the table, in no particular order.
    pub(super) fn names(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len).map(|i| self.name(i))
    }

    fn position(&self, name: &[u8]) -> Option<usize> {
        (0..self.len).find(|&i| self.name(i) == name)
    }

    fn name(&self, index: usize) -> &[u8] {
        let slot = self.slot(index);
        slot.get(1..=slot[0] as usize).unwrap_or(&[])
    }

    fn slot(&self, index: usize) -> &[u8; SLOT] {
        // SAFETY: index < capacity, so the slot lies inside the mapping of `capacity`
        // slots that `base` points to (never null once capacity > 0); the table is the
        // mapping's only user, and `&self` excludes writes while the reference lives.
        unsafe { &*self.base.add(index * SLOT).cast::<[u8; SLOT]>() }
    }

    fn slot_mut(&mut self, index: usize) -> &mut [u8; SLOT] {
        // SAFETY: as in `slot`, and `&mut self` makes this the only reference.
        unsafe { &mut *self.base.add(index * SLOT).cast::<[u8; SLOT]>() }
    }

    /// Doubles the mapping (or makes the first one); false if the system refuses.
    fn grow(&mut self) -> bool {
        let capacity = if self.capacity == 0 {
            FIRST_CAPACITY
        } else {
            match self.capacity.checked_mul(2) {
                Some(c) => c,
                None => return false,
            }
        };
        let Some(bytes) = capacity.checked_mul(SLOT) else {
            return false;
        };
        let base = if self.base.is_null() {
            // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            }
        } else {
            // SAFETY: `base` is this table's mapping of `capacity * SLOT` bytes; no
            // reference into it lives across this call (we hold `&mut self`), and a moved
            // mapping is only reached through the new `base`.
            unsafe {
                libc::mremap(
                    self.base.cast(),
                    self.capacity * SLOT,
                    bytes,
                    libc::MREMAP_MAYMOVE,
                )
            }
        };
        if base == libc::MAP_FAILED {
            return false;
        }
        self.base = base.cast();
        self.capacity = capacity;
        true
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        if !self.base.is_null() {
            // SAFETY: `base` is this table's own mapping of `capacity` slots, and no
            // reference into it outlives `self`.
            unsafe { libc::munmap(self.base.cast(), self.capacity * SLOT) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_registration_counts_and_the_table_grows_past_its_first_mapping() {
        let mut table = Table::new();
        let names: Vec<String> = (0..200).map(|i| format!("psm_{i:08x}")).collect();
        for name in &names {
            table.insert(name.as_bytes());
            table.insert(name.as_bytes());
        }
        assert_eq!(table.names().count(), 400);
        // One removal leaves the other registration; two remove the name.
        for name in &names {
            table.remove(name.as_bytes());
        }
        assert_eq!(table.names().count(), 200);
        for name in names.iter().step_by(2) {
            table.remove(name.as_bytes());
        }
        table.remove(b"never registered");
        let mut left: Vec<&[u8]> = table.names().collect();
        left.sort();
        let mut expected: Vec<&[u8]> = names
            .iter()
            .skip(1)
            .step_by(2)
            .map(|n| n.as_bytes())
            .collect();
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn names_of_bad_length_are_not_kept() {
        let mut table = Table::new();
        table.insert(b"");
        table.insert(&[b'x'; MAX_NAME_LEN + 1]);
        table.insert(&[b'x'; MAX_NAME_LEN]);
        assert_eq!(
            table.names().map(<[u8]>::len).collect::<Vec<_>>(),
            [MAX_NAME_LEN]
        );
    }
}
