//! `ShareableList`: Python's layout, Python's rules for replacing items, and nothing but
//! clear errors from a block whose bytes are not a list.

mod common;

use common::{run, unique_name};
use multiproc_test_support::rng::Rng;
use proc_shared::{Error, Item, ShareableList, SharedMemory};

fn every_kind() -> Vec<Item> {
    vec![
        Item::Int(-5),
        Item::Float(2.5),
        Item::Bool(true),
        Item::Bool(false),
        Item::Str("小王".into()),
        Item::Bytes(b"\x00\x01raw".to_vec()),
        Item::None,
        Item::Str(String::new()),
        Item::Int(i64::MIN),
    ]
}

#[test]
fn every_kind_reads_back_as_written() {
    let list = ShareableList::create(&every_kind()).unwrap();
    assert_eq!(list.len(), every_kind().len());
    assert_eq!(list.to_vec().unwrap(), every_kind());
    let again = ShareableList::open(list.name()).unwrap();
    assert_eq!(again.to_vec().unwrap(), every_kind());
    list.shm().unlink().unwrap();
}

#[test]
fn the_block_holds_pythons_layout_byte_for_byte() {
    // What Python 3.11 writes for ShareableList([7, "hi", True, None]):
    let list = ShareableList::create(&[7.into(), "hi".into(), true.into(), Item::None]).unwrap();
    let mut expected = Vec::new();
    for word in [4i64, 0, 8, 16, 24, 32] {
        expected.extend_from_slice(&word.to_ne_bytes());
    }
    expected.extend_from_slice(&7i64.to_ne_bytes());
    expected.extend_from_slice(b"hi\0\0\0\0\0\0");
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    expected.extend_from_slice(&[0; 8]);
    for format in [&b"q"[..], b"8s", b"xxxxxxx?", b"xxxxxx?x"] {
        let mut padded = format.to_vec();
        padded.resize(8, 0);
        expected.extend_from_slice(&padded);
    }
    expected.extend_from_slice(&[0, 1, 0, 3]);
    assert_eq!(list.shm().size(), expected.len());
    let mut block = vec![0u8; expected.len()];
    list.shm().read_bytes(0, &mut block).unwrap();
    assert_eq!(block, expected);
    list.shm().unlink().unwrap();
}

#[test]
fn items_take_any_kind_but_strs_and_bytes_must_fit_their_slot() {
    let list = ShareableList::create(&[Item::Str("1234567".into()), Item::Int(1)]).unwrap();
    list.set(0, Item::Str("12345678".into())).unwrap(); // 8 bytes fill the slot exactly
    assert_eq!(list.get(0).unwrap(), Item::Str("12345678".into()));
    list.set(0, Item::Str("short".into())).unwrap(); // the rest is padding again
    assert_eq!(list.get(0).unwrap(), Item::Str("short".into()));
    match list.set(0, Item::Bytes(vec![1; 9])) {
        Err(Error::ItemTooLong {
            index: 0,
            slot: 8,
            needed: 9,
        }) => {}
        other => panic!("expected ItemTooLong, got {other:?}"),
    }
    assert_eq!(
        list.get(0).unwrap(),
        Item::Str("short".into()),
        "a refused set writes nothing"
    );
    list.set(0, Item::Float(-0.25)).unwrap();
    assert_eq!(list.get(0).unwrap(), Item::Float(-0.25));
    list.set(1, Item::Str("in an int".into())).unwrap_err();
    list.set(1, Item::Str("int's 8".into())).unwrap();
    list.set(1, Item::None).unwrap();
    assert_eq!(list.to_vec().unwrap(), [Item::Float(-0.25), Item::None]);
    list.shm().unlink().unwrap();
}

#[test]
fn misuse_is_a_clear_error() {
    let list = ShareableList::create(&[Item::Int(1)]).unwrap();
    assert!(matches!(
        list.get(1),
        Err(Error::IndexOutOfRange { index: 1, len: 1 })
    ));
    assert!(matches!(
        list.set(5, Item::None),
        Err(Error::IndexOutOfRange { index: 5, len: 1 })
    ));
    list.shm().unlink().unwrap();
    // Trailing NULs would be lost (Python strips them as padding): refused, at creation too.
    assert!(matches!(
        ShareableList::create(&[Item::Bytes(b"a\0".to_vec())]),
        Err(Error::TrailingNul)
    ));
    let too_long = Item::Bytes(vec![1; 10_000_000]);
    assert!(matches!(
        ShareableList::create(&[too_long]),
        Err(Error::ValueTooLong { .. })
    ));
}

#[test]
fn an_empty_list_is_a_list() {
    let name = unique_name("empty_list");
    let list = ShareableList::create_named(&name, &[]).unwrap();
    assert_eq!(list.shm().size(), 16);
    assert!(ShareableList::open(&name).unwrap().is_empty());
    list.shm().unlink().unwrap();
}

/// A block holding `bytes` (at least one byte).
fn block_of(bytes: &[u8]) -> SharedMemory {
    let shm = SharedMemory::create(bytes.len().max(1)).unwrap();
    shm.write_bytes(0, bytes).unwrap();
    shm
}

fn words(words: &[i64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_ne_bytes()).collect()
}

#[test]
fn a_corrupt_header_is_refused_when_opened() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("too small for a header", vec![1, 2, 3]),
        ("negative length", words(&[-1, 0])),
        ("huge length", words(&[i64::MAX, 0])),
        ("offsets pass the end", words(&[2, 0, 8])),
        ("offsets of one item pass the end", words(&[1, 0])),
        (
            "billions of items in a few bytes",
            words(&[1 << 40, 0, 0, 0]),
        ),
        (
            "last offset points past the end",
            words(&[1, 0, 1 << 40, 0, 0]),
        ),
    ];
    for (what, bytes) in cases {
        let shm = block_of(&bytes);
        let name = shm.name().to_string();
        match ShareableList::from_shared_memory(shm) {
            Err(Error::CorruptList { name: n, .. }) => assert_eq!(n, name, "{what}"),
            other => panic!("{what}: expected CorruptList, got {other:?}"),
        }
        SharedMemory::open(&name).unwrap().unlink().unwrap();
    }
}

#[test]
fn a_corrupt_item_is_refused_when_read() {
    let list = ShareableList::create(&[Item::Str("abc".into()), Item::Int(1)]).unwrap();
    let shm = SharedMemory::open(list.name()).unwrap();
    // Layout: header 32 bytes, slots 0..8 and 8..16 at 32, formats at 48, codes at 64.
    let formats = 48;
    let codes = 64;

    shm.write_bytes(formats, b"i\0\0\0\0\0\0\0").unwrap();
    let err = list.get(0).unwrap_err();
    assert!(err.to_string().contains("packing format \"i\""), "{err}");

    shm.write_bytes(formats, b"99s\0\0\0\0\0").unwrap();
    let err = list.get(0).unwrap_err();
    assert!(
        err.to_string().contains("99 bytes into a slot of 8"),
        "{err}"
    );

    shm.write_bytes(formats, b"8s\0\0\0\0\0\0").unwrap();
    shm.write_bytes(32, b"\xff\xfe\0\0\0\0\0\0").unwrap();
    let err = list.get(0).unwrap_err();
    assert!(err.to_string().contains("not UTF-8"), "{err}");

    // Offsets are checked at each access: item 1's slot claimed to end before it starts.
    shm.write(24, &4i64).unwrap();
    let err = list.get(1).unwrap_err();
    assert!(err.to_string().contains("offsets go backwards"), "{err}");
    assert!(list.set(1, Item::Int(2)).is_err());
    shm.write(24, &16i64).unwrap();

    shm.write(codes + 1, &7i8).unwrap();
    let err = list.get(1).unwrap_err();
    assert!(err.to_string().contains("code 7"), "{err}");
    assert!(matches!(err, Error::CorruptList { .. }));
    list.shm().unlink().unwrap();
}

#[test]
fn random_bytes_never_panic_and_never_read_past_the_block() {
    let mut rng = Rng::from_env("PROC_SHARED_SEED");
    for round in 0..300 {
        // Small lengths and offsets, so that random headers often look plausible.
        let len = 16 + rng.below(200) as usize;
        let mut bytes = rng.bytes(len);
        let n = rng.below(6) as i64;
        bytes[..8].copy_from_slice(&n.to_ne_bytes());
        let mut offset = 0i64;
        for i in 0..=n as usize {
            if 8 * (i + 2) <= len {
                bytes[8 * (i + 1)..8 * (i + 2)].copy_from_slice(&offset.to_ne_bytes());
            }
            offset += 8 * rng.below(3) as i64;
        }
        let shm = block_of(&bytes);
        let name = shm.name().to_string();
        if let Ok(list) = ShareableList::from_shared_memory(shm) {
            for i in 0..list.len() + 1 {
                let _ = list.get(i);
                let _ = list.set(i, Item::Int(round));
            }
        }
        SharedMemory::open(&name).unwrap().unlink().unwrap();
    }
}

fn fill_in(list: ShareableList) {
    list.set(0, Item::Int(99)).unwrap();
    list.set(1, Item::Str("from child".into())).unwrap();
}

#[test]
fn a_list_passed_to_a_child_is_the_same_list() {
    let list = ShareableList::create(&[Item::Int(0), Item::Str("placeholder".into())]).unwrap();
    let copy = ShareableList::open(list.name()).unwrap();
    assert_eq!(run(fill_in, (copy,)), 0);
    assert_eq!(
        list.to_vec().unwrap(),
        [Item::Int(99), Item::Str("from child".into())]
    );
    list.shm().unlink().unwrap();
}
