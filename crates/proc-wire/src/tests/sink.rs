//! Encoding into a [`Sink`] piece by piece, and into a buffer up to a cap.

use serde::Serialize;

use super::*;
use crate::{CodecError, Sink, StreamError, encode, encode_into_at_most, encode_to};

/// Collects what a [`Sink`] is given, piece by piece; refuses the piece after
/// `refuse_after` pieces, if set.
#[derive(Default)]
struct Pieces {
    got: Vec<Vec<u8>>,
    refuse_after: Option<usize>,
}

impl Sink for Pieces {
    type Error = &'static str;

    fn write(&mut self, bytes: &[u8]) -> Result<(), Self::Error> {
        if self.refuse_after == Some(self.got.len()) {
            return Err("full");
        }
        self.got.push(bytes.to_vec());
        Ok(())
    }
}

#[test]
fn a_streamed_encoding_is_the_encoding_in_pieces_with_long_runs_passed_on_whole() {
    for value in [everything(), everything_large()] {
        let whole = encode(&value).unwrap();
        let mut pieces = Pieces::default();
        encode_to(&value, &mut pieces).unwrap();
        assert_eq!(pieces.got.concat(), whole);
    }
    let mut pieces = Pieces::default();
    encode_to(&everything_large(), &mut pieces).unwrap();
    // The byte buffer and the text come as pieces of their own; no other piece is
    // more than the stage and one part over it.
    assert!(pieces.got.iter().any(|piece| piece == &vec![0xAB; 100_000]));
    assert!(
        pieces
            .got
            .iter()
            .any(|piece| piece == "王".repeat(5_000).as_bytes())
    );
    let staged = pieces
        .got
        .iter()
        .filter(|piece| piece.len() < 15_000)
        .count();
    assert!(staged > 3, "{staged} staged pieces");
    assert!(
        pieces
            .got
            .iter()
            .all(|piece| piece.len() < 10 << 10 || piece.len() >= 15_000)
    );
}

#[test]
fn a_sink_that_refuses_or_a_value_that_fails_ends_a_streamed_encoding() {
    let mut pieces = Pieces {
        refuse_after: Some(2),
        ..Pieces::default()
    };
    let err = encode_to(&everything_large(), &mut pieces).unwrap_err();
    assert_eq!(err, StreamError::Stopped("full"));
    assert_eq!(pieces.got.len(), 2);
    // A map whose length is unknown does not encode, sink or no sink.
    struct Unsized;
    impl Serialize for Unsized {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            s.serialize_map(None)?.end()
        }
    }
    assert!(matches!(
        encode_to(&Unsized, &mut Pieces::default()),
        Err(StreamError::Codec(CodecError::Encode(_)))
    ));
}

#[test]
fn an_encoding_with_a_cap_fits_up_to_the_cap_and_is_only_measured_past_it() {
    for value in [everything(), everything_large()] {
        let whole = encode(&value).unwrap();
        for cap in [0, 1, 100, whole.len() - 1, whole.len(), whole.len() + 1] {
            let mut buf = vec![1, 2, 3];
            let len = encode_into_at_most(&value, &mut buf, cap).unwrap();
            assert_eq!(len, whole.len(), "cap {cap}");
            if cap >= whole.len() {
                assert_eq!(buf[3..], whole[..]);
            } else {
                assert_eq!(buf, [1, 2, 3]);
            }
        }
    }
}
