//! The handshake of Python's `multiprocessing.connection`: each side proves that it holds
//! the same key, by an HMAC of random bytes the other side sends, before any payload is
//! read.
//!
//! One side *delivers* a challenge: `#CHALLENGE#` then `{sha256}` and 40 random bytes; the
//! other *answers* with `{sha256}` and the HMAC-SHA256 of everything after `#CHALLENGE#`
//! (the prefix included, so that it cannot be downgraded); the first replies `#WELCOME#` or
//! `#FAILURE#`. A listener delivers, then answers the client's challenge; a client answers,
//! then delivers. Python up to 3.11 speaks the legacy form: 20 random bytes without prefix,
//! and a bare 16-byte HMAC-MD5 as the answer. Both forms are accepted either way: a legacy
//! challenge (20 bytes) is answered in the legacy form, and a bare 16-byte answer is
//! checked as HMAC-MD5 over the challenge as sent.
//!
//! Every handshake message comes from a peer not yet trusted: it is read with a maximum
//! of 256 bytes (as Python does) and the whole handshake with a time limit, so that a peer
//! that sends too much or nothing at all is refused, not waited for.

use std::os::fd::AsFd;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;

use crate::connection::Connection;
use crate::error::{Error, Result};

/// How long a [`Listener`](crate::Listener)'s or [`Client`](crate::Client)'s handshake may
/// take unless told otherwise: a peer that has not completed it by then is refused with
/// [`Error::TimedOut`].
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

const CHALLENGE: &[u8] = b"#CHALLENGE#";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";

/// The random bytes of a challenge, in the current form and in the legacy one.
const MESSAGE_LENGTH: usize = 40;
const LEGACY_MESSAGE_LENGTH: usize = 20;
/// The length of a legacy (bare HMAC-MD5) answer.
const LEGACY_DIGEST_LENGTH: usize = 16;
/// The most a handshake message may hold, as Python reads them.
const MAX_MESSAGE: usize = 256;
/// The longest digest name between braces that Python allows (`sha3_384`).
const MAX_DIGEST_NAME: usize = 8;

/// An HMAC's hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Digest {
    Md5,
    Sha256,
    Sha384,
}

impl Digest {
    fn from_name(name: &[u8]) -> Option<Digest> {
        match name {
            b"md5" => Some(Digest::Md5),
            b"sha256" => Some(Digest::Sha256),
            b"sha384" => Some(Digest::Sha384),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Digest::Md5 => "md5",
            Digest::Sha256 => "sha256",
            Digest::Sha384 => "sha384",
        }
    }

    fn mac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        match self {
            Digest::Md5 => mac::<Hmac<md5::Md5>>(key, message),
            Digest::Sha256 => mac::<Hmac<sha2::Sha256>>(key, message),
            Digest::Sha384 => mac::<Hmac<sha2::Sha384>>(key, message),
        }
    }

    /// Whether `tag` is the HMAC of `message` under `key`, compared in constant time.
    fn verify(self, key: &[u8], message: &[u8], tag: &[u8]) -> bool {
        match self {
            Digest::Md5 => verify::<Hmac<md5::Md5>>(key, message, tag),
            Digest::Sha256 => verify::<Hmac<sha2::Sha256>>(key, message, tag),
            Digest::Sha384 => verify::<Hmac<sha2::Sha384>>(key, message, tag),
        }
    }
}

fn keyed<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> M {
    // An HMAC takes a key of any length.
    let mut mac = <M as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac
}

fn mac<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    keyed::<M>(key, message).finalize().into_bytes().to_vec()
}

fn verify<M: Mac + KeyInit>(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    keyed::<M>(key, message).verify_slice(tag).is_ok()
}

fn refused(reason: impl Into<String>) -> Error {
    Error::AuthenticationError {
        reason: reason.into(),
    }
}

/// The digest a challenge or an answer names, and what follows the name; `None` for the
/// legacy form (a 20-byte challenge or a 16-byte answer, without a name).
fn digest_and_payload(message: &[u8]) -> Result<(Option<Digest>, &[u8])> {
    if matches!(message.len(), LEGACY_MESSAGE_LENGTH | LEGACY_DIGEST_LENGTH) {
        return Ok((None, message));
    }
    let named = message.strip_prefix(b"{").and_then(|rest| {
        let close = rest
            .iter()
            .take(MAX_DIGEST_NAME + 1)
            .position(|&b| b == b'}')?;
        Some((Digest::from_name(&rest[..close]), &rest[close + 1..]))
    });
    match named {
        Some((Some(digest), payload)) => Ok((Some(digest), payload)),
        _ => Err(refused(format!(
            "the peer's handshake message of {} bytes has an unsupported length, no digest \
             name, or a digest other than md5, sha256 and sha384",
            message.len()
        ))),
    }
}

/// Our answer to the challenge `message` (what followed `#CHALLENGE#`).
fn answer_to(key: &[u8], message: &[u8]) -> Result<Vec<u8>> {
    Ok(match digest_and_payload(message)?.0 {
        None => Digest::Md5.mac(key, message),
        Some(digest) => {
            let mut answer = format!("{{{}}}", digest.name()).into_bytes();
            answer.extend_from_slice(&digest.mac(key, message));
            answer
        }
    })
}

/// Checks the peer's `answer` to our challenge `message`.
fn check_answer(key: &[u8], message: &[u8], answer: &[u8]) -> Result<()> {
    let (digest, tag) = digest_and_payload(answer)?;
    let digest = digest.unwrap_or(Digest::Md5);
    if digest.verify(key, message, tag) {
        Ok(())
    } else {
        Err(refused(
            "the peer's answer to our challenge is wrong: it does not hold the same key",
        ))
    }
}

/// Receives one handshake message: at most [`MAX_MESSAGE`] bytes, within the socket's
/// time limit (a receive that runs out of it fails with `EAGAIN`).
fn receive(conn: &Connection, timeout: Option<Duration>) -> Result<Vec<u8>> {
    conn.recv_bytes_max(MAX_MESSAGE).map_err(|e| match e {
        Error::TooLarge { len, .. } => refused(format!(
            "the peer sent a handshake message of {len} bytes, over the {MAX_MESSAGE} allowed"
        )),
        other => timed_out(other, timeout),
    })
}

fn send(conn: &Connection, message: &[u8], timeout: Option<Duration>) -> Result<()> {
    conn.send_bytes(message).map_err(|e| timed_out(e, timeout))
}

/// An error of a socket call cut short by its time limit, as [`Error::TimedOut`].
fn timed_out(error: Error, timeout: Option<Duration>) -> Error {
    match (&error, timeout) {
        (Error::Io { source, .. }, Some(after))
            if source.kind() == std::io::ErrorKind::WouldBlock =>
        {
            Error::TimedOut {
                operation: "the connection's handshake",
                after,
            }
        }
        _ => error,
    }
}

/// Sends a challenge and checks the peer's answer, telling it the outcome.
fn deliver(conn: &Connection, key: &[u8], timeout: Option<Duration>) -> Result<()> {
    let mut message = b"{sha256}".to_vec();
    message.extend_from_slice(&random_bytes::<MESSAGE_LENGTH>()?);
    let mut challenge = CHALLENGE.to_vec();
    challenge.extend_from_slice(&message);
    send(conn, &challenge, timeout)?;
    let answer = receive(conn, timeout)?;
    match check_answer(key, &message, &answer) {
        Ok(()) => send(conn, WELCOME, timeout),
        Err(e) => {
            // The peer learns it was refused; the error is ours to report either way.
            let _ = send(conn, FAILURE, timeout);
            Err(e)
        }
    }
}

/// Answers the peer's challenge and reads its verdict.
fn answer(conn: &Connection, key: &[u8], timeout: Option<Duration>) -> Result<()> {
    let challenge = receive(conn, timeout)?;
    let Some(message) = challenge.strip_prefix(CHALLENGE) else {
        return Err(refused(
            "the peer did not start with a challenge: it does not speak the handshake",
        ));
    };
    if message.len() < LEGACY_MESSAGE_LENGTH {
        return Err(refused(format!(
            "the peer's challenge is too short: {} bytes",
            message.len()
        )));
    }
    send(conn, &answer_to(key, message)?, timeout)?;
    if receive(conn, timeout)? != WELCOME {
        return Err(refused(
            "the peer rejected our answer: it does not hold the same key",
        ));
    }
    Ok(())
}

/// Which side of a connection this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Accepted by a listener: delivers first.
    Listener,
    /// Connected by a client: answers first.
    Client,
}

/// Both halves of the handshake, in `side`'s order, within `timeout` per socket call.
pub(crate) fn handshake(
    conn: &Connection,
    key: &[u8],
    side: Side,
    timeout: Option<Duration>,
) -> Result<()> {
    set_timeout(conn, timeout)?;
    let done = match side {
        Side::Listener => deliver(conn, key, timeout).and_then(|()| answer(conn, key, timeout)),
        Side::Client => answer(conn, key, timeout).and_then(|()| deliver(conn, key, timeout)),
    };
    done?;
    set_timeout(conn, None)
}

/// Sets the time limit of each receive and send on `conn`'s socket (`None`: without).
fn set_timeout(conn: &Connection, timeout: Option<Duration>) -> Result<()> {
    let limit = match timeout {
        None => TimeVal::from(libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        }),
        Some(t) => {
            // Zero would mean "no limit" to the kernel: the shortest one it has instead.
            let t = t.max(Duration::from_micros(1));
            TimeVal::from(libc::timeval {
                tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_usec: libc::suseconds_t::from(t.subsec_micros()),
            })
        }
    };
    let fd = conn.as_fd();
    setsockopt(&fd, sockopt::ReceiveTimeout, &limit)
        .and_then(|()| setsockopt(&fd, sockopt::SendTimeout, &limit))
        .map_err(|e| Error::io("setsockopt(SO_RCVTIMEO)", e))
}

/// `N` bytes from the kernel's random source.
fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    proc_core::internal::fill_random(&mut bytes).map_err(|e| Error::io("getrandom", e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_current_challenge_is_answered_with_the_named_digest_over_the_whole_message() {
        let message = b"{sha256}0123456789012345678901234567890123456789";
        let answer = answer_to(b"key", message).unwrap();
        assert!(answer.starts_with(b"{sha256}"));
        assert_eq!(answer.len(), 8 + 32);
        check_answer(b"key", message, &answer).unwrap();
        assert!(check_answer(b"other", message, &answer).is_err());
    }

    #[test]
    fn a_legacy_challenge_is_answered_with_a_bare_hmac_md5() {
        let message = [7u8; LEGACY_MESSAGE_LENGTH];
        let answer = answer_to(b"key", &message).unwrap();
        assert_eq!(answer.len(), LEGACY_DIGEST_LENGTH);
        check_answer(b"key", &message, &answer).unwrap();
    }

    #[test]
    fn a_bare_md5_answer_to_a_current_challenge_is_checked_as_md5() {
        // What Python 3.11 sends back to a `{sha256}` challenge.
        let message = b"{sha256}0123456789012345678901234567890123456789";
        let legacy = Digest::Md5.mac(b"key", message);
        check_answer(b"key", message, &legacy).unwrap();
        assert!(check_answer(b"key", b"{sha256}another challenge ....", &legacy).is_err());
    }

    #[test]
    fn hmacs_match_the_published_test_vectors() {
        // RFC 4231 case 2 and RFC 2104's second example.
        let sha = Digest::Sha256.mac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sha[..4],
            [0x5b, 0xdc, 0xc1, 0x46],
            "HMAC-SHA256 of RFC 4231 case 2"
        );
        let md5 = Digest::Md5.mac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(md5[..4], [0x75, 0x0c, 0x78, 0x3e], "HMAC-MD5 of RFC 2104");
    }

    #[test]
    fn unknown_or_missing_digest_names_are_refused() {
        for message in [
            &b"{sha1}0123456789012345678901234567890"[..],
            b"no prefix, not a legacy length at all",
            b"{sha256 never closed .............",
            b"{",
            b"",
        ] {
            assert!(matches!(
                digest_and_payload(message),
                Err(Error::AuthenticationError { .. })
            ));
        }
    }

    #[test]
    fn random_bytes_differ_between_calls() {
        assert_ne!(random_bytes::<40>().unwrap(), random_bytes::<40>().unwrap());
    }
}
