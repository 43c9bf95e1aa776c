//! [`ShareableList`]: a fixed-length list of ints, floats, bools, strs, bytes and Nones in
//! a named block, as Python's `multiprocessing.shared_memory.ShareableList`, in Python's
//! layout (`layout.rs`), so that either language opens the other's lists.

mod item;
mod layout;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::shared_memory::{SharedMemory, Tracking};

pub use item::Item;
use layout::Layout;

/// A list of [`Item`]s in a named shared memory block, as Python's
/// `multiprocessing.shared_memory.ShareableList`, byte for byte: Python's
/// `ShareableList(name=...)` opens a list made here, and [`ShareableList::open`] opens one
/// Python made.
///
/// The length is fixed. Each item may be replaced by a value of any kind, but a str or
/// bytes value must fit the slot its item got at creation (the item's first value's length
/// rounded up to the next multiple of 8 bytes), as in Python.
///
/// ```
/// use proc_shared::{Item, ShareableList};
///
/// let list = ShareableList::create(&[Item::Int(1), Item::Float(2.5), Item::Str("abc".into()), Item::None])?;
/// let other = ShareableList::open(list.name())?;   // in any process, Python's included
/// other.set(0, Item::Int(-7))?;
/// other.set(2, Item::Str("abcdefg".into()))?;      // 7 bytes fit the 8-byte slot of "abc"
/// assert!(other.set(2, Item::Str("abcdefghi".into())).is_err()); // 9 bytes do not
/// assert_eq!(list.get(0)?, Item::Int(-7));
/// assert_eq!(list.to_vec()?, [Item::Int(-7), Item::Float(2.5), Item::Str("abcdefg".into()), Item::None]);
/// list.shm().unlink()?;
/// # Ok::<(), proc_shared::Error>(())
/// ```
///
/// Every byte read from the block may have been written by another process: a header,
/// offset, packing format or value that is not what Python writes gives
/// [`Error::CorruptList`], never a panic or a read past the block.
#[derive(Debug)]
pub struct ShareableList {
    shm: SharedMemory,
    layout: Layout,
}

impl ShareableList {
    /// Creates a list holding `items` in a new block with a random name (`psm_…`).
    ///
    /// ```
    /// let list = proc_shared::ShareableList::create(&[true.into(), "x".into()])?;
    /// assert_eq!(list.len(), 2);
    /// # list.shm().unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::ValueTooLong`] or [`Error::TrailingNul`] for a value Python's layout cannot
    /// hold; the errors of [`SharedMemory::create`].
    pub fn create(items: &[Item]) -> Result<ShareableList> {
        ShareableList::create_tracked(items, Tracking::Tree)
    }

    /// As [`create`](ShareableList::create), its block registered as `tracking` says.
    pub(crate) fn create_tracked(items: &[Item], tracking: Tracking<'_>) -> Result<ShareableList> {
        let (layout, offsets, size) = Layout::for_items(items)?;
        let shm = SharedMemory::create_tracked(size, tracking)?;
        ShareableList::fill(shm, layout, &offsets, items)
    }

    /// Creates a list holding `items` in a new block named `name`.
    ///
    /// ```
    /// let name = format!("doc_list_{}", std::process::id());
    /// let list = proc_shared::ShareableList::create_named(&name, &[1.into()])?;
    /// assert_eq!(list.name(), name);
    /// # list.shm().unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`create`](ShareableList::create), and those of [`SharedMemory::create_named`].
    pub fn create_named(name: &str, items: &[Item]) -> Result<ShareableList> {
        let (layout, offsets, size) = Layout::for_items(items)?;
        let shm = SharedMemory::create_named(name, size)?;
        ShareableList::fill(shm, layout, &offsets, items)
    }

    fn fill(
        shm: SharedMemory,
        layout: Layout,
        offsets: &[usize],
        items: &[Item],
    ) -> Result<ShareableList> {
        if let Err(e) = layout.write_new(&shm, items, offsets) {
            let _ = shm.unlink();
            return Err(e);
        }
        Ok(ShareableList { shm, layout })
    }

    /// Opens the list in the block named `name` (made here or by Python).
    ///
    /// ```
    /// use proc_shared::{Error, SharedMemory, ShareableList};
    ///
    /// // A block that holds no list is refused, not misread.
    /// let shm = SharedMemory::create(16)?;
    /// shm.write(0, &1_000_000i64)?;
    /// assert!(matches!(ShareableList::open(shm.name()), Err(Error::CorruptList { .. })));
    /// # shm.unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`SharedMemory::open`]; [`Error::CorruptList`] if the block does not hold a
    /// list in Python's layout.
    pub fn open(name: &str) -> Result<ShareableList> {
        ShareableList::from_shared_memory(SharedMemory::open(name)?)
    }

    /// The list in a block already open here (received from another process, say).
    ///
    /// ```
    /// let list = proc_shared::ShareableList::create(&[7.into()])?;
    /// let shm = proc_shared::SharedMemory::open(list.name())?;
    /// let again = proc_shared::ShareableList::from_shared_memory(shm)?;
    /// assert_eq!(again.get(0)?, 7.into());
    /// # list.shm().unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::CorruptList`] if the block does not hold a list in Python's layout.
    pub fn from_shared_memory(shm: SharedMemory) -> Result<ShareableList> {
        let layout = Layout::read(&shm)?;
        Ok(ShareableList { shm, layout })
    }

    /// The number of items (fixed at creation).
    ///
    /// ```
    /// let list = proc_shared::ShareableList::create(&[])?;
    /// assert!(list.is_empty());
    /// # list.shm().unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.layout.len()
    }

    /// Whether the list has no items.
    ///
    /// ```
    /// let list = proc_shared::ShareableList::create(&[proc_shared::Item::None])?;
    /// assert!(!list.is_empty());
    /// # list.shm().unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name of the list's block (what `ShareableList(name=...)` takes in Python).
    ///
    /// ```
    /// let list = proc_shared::ShareableList::create(&[])?;
    /// assert_eq!(list.name(), list.shm().name());
    /// # list.shm().unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        self.shm.name()
    }

    /// The list's block, as Python's `ShareableList.shm`: to [`unlink`](SharedMemory::unlink) it.
    ///
    /// ```
    /// let list = proc_shared::ShareableList::create(&[1.into()])?;
    /// list.shm().unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    pub fn shm(&self) -> &SharedMemory {
        &self.shm
    }

    /// Item `index`.
    ///
    /// ```
    /// use proc_shared::{Error, Item, ShareableList};
    ///
    /// let list = ShareableList::create(&[Item::Bytes(b"\x01\x02".to_vec())])?;
    /// assert_eq!(list.get(0)?, Item::Bytes(vec![1, 2]));
    /// assert!(matches!(list.get(1), Err(Error::IndexOutOfRange { index: 1, len: 1 })));
    /// # list.shm().unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`]; [`Error::CorruptList`] if the item's bytes are not what
    /// Python writes.
    pub fn get(&self, index: usize) -> Result<Item> {
        self.check_index(index)?;
        self.layout.read_item(&self.shm, index)
    }

    /// Replaces item `index` with `item`, of any kind; a str or bytes value must fit the
    /// item's slot.
    ///
    /// ```
    /// use proc_shared::{Error, Item, ShareableList};
    ///
    /// let list = ShareableList::create(&[Item::Str("four".into())])?;
    /// list.set(0, Item::Float(0.5))?; // another kind is fine
    /// assert_eq!(list.get(0)?, Item::Float(0.5));
    /// let long = Item::Str("more than eight".into());
    /// assert!(matches!(list.set(0, long), Err(Error::ItemTooLong { slot: 8, needed: 15, .. })));
    /// # list.shm().unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`], [`Error::ItemTooLong`], [`Error::TrailingNul`].
    pub fn set(&self, index: usize, item: Item) -> Result<()> {
        self.check_index(index)?;
        self.layout.write_item(&self.shm, index, &item)
    }

    /// All items, in order.
    ///
    /// ```
    /// let list = proc_shared::ShareableList::create(&[1.into(), false.into()])?;
    /// assert_eq!(list.to_vec()?, [1.into(), false.into()]);
    /// # list.shm().unlink()?;
    /// # Ok::<(), proc_shared::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`get`](ShareableList::get).
    pub fn to_vec(&self) -> Result<Vec<Item>> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }

    fn check_index(&self, index: usize) -> Result<()> {
        if index >= self.len() {
            return Err(Error::IndexOutOfRange {
                index,
                len: self.len(),
            });
        }
        Ok(())
    }
}

/// A list travels as its block (see [`SharedMemory`]); the receiver checks the layout again.
impl Serialize for ShareableList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.shm.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ShareableList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let shm = SharedMemory::deserialize(deserializer)?;
        ShareableList::from_shared_memory(shm).map_err(serde::de::Error::custom)
    }
}
