//! The codec's rows of the README's bad-input table: random bytes, and a zero limit.

use std::collections::BTreeMap;

use multiproc_test_support::rng::Rng;
use proc_wire::CodecError;

type Nested = (
    u8,
    String,
    Vec<u32>,
    Option<(i64, bool)>,
    BTreeMap<u16, Vec<u8>>,
);

#[test]
fn random_bytes_decode_as_a_value_or_an_error_never_a_panic() {
    let mut rng = Rng::seeded(0x5eed_c0de);
    for round in 0..50_000 {
        let len = (rng.next() % 48) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Whatever the bytes, each decode returns; errors are of the codec's kinds.
        for result in [
            proc_wire::decode::<Nested>(&bytes, 1 << 10).map(drop),
            proc_wire::decode::<String>(&bytes, 1 << 10).map(drop),
            proc_wire::decode::<Vec<u64>>(&bytes, 1 << 10).map(drop),
        ] {
            match result {
                Ok(()) => {}
                Err(CodecError::Decode(_) | CodecError::TrailingBytes { .. }) => {}
                Err(e) => panic!("round {round}: unexpected {e:?} for {bytes:?}"),
            }
        }
    }
}

#[test]
fn a_limit_of_zero_refuses_every_value_that_has_bytes() {
    let bytes = proc_wire::encode(&7u8).unwrap();
    assert_eq!(
        proc_wire::decode::<u8>(&bytes, 0),
        Err(CodecError::TooLarge { len: 1, limit: 0 })
    );
    // A value of no bytes at all fits a limit of zero.
    assert_eq!(proc_wire::decode::<()>(&[], 0), Ok(()));
}
