//! interprocess: its local sockets (a Unix stream socket, here in the abstract namespace),
//! a byte stream each way. Messages are framed as a user frames them: an 8-byte length,
//! then the item encoded with bincode 2 (serde, its standard configuration); raw bytes go
//! as they are after their length. Each message is one `write`; the receiver reads through
//! a `BufReader`, which only saves system calls (it holds back nothing that was sent).

use std::io::{self, BufReader, Read, Write};
use std::time::Duration;

use interprocess::local_socket::prelude::*;
use interprocess::local_socket::{GenericNamespaced, ListenerOptions, Name, Stream};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::shape::{self, MIB, Transfer, Workload};
use crate::sys::{Fallible, fork, unique_name};

pub const WORKLOADS: &[(&str, Workload)] = &[
    ("queue_small_1to1", queue_small_1to1),
    ("queue_1mib_1to1", queue_1mib_1to1),
    ("queue_1mib_vec_u8", queue_1mib_vec_u8),
    ("pingpong_pipe", pingpong_pipe),
];

const CONFIG: bincode::config::Configuration = bincode::config::standard();

/// Sends framed messages: one `write_all` of the length and the encoded item.
struct Framed<W> {
    out: W,
    frame: Vec<u8>,
}

impl<W: Write> Framed<W> {
    fn new(out: W) -> Self {
        Framed {
            out,
            frame: Vec::new(),
        }
    }

    fn send<T: Serialize + ?Sized>(&mut self, item: &T) -> Fallible<()> {
        self.frame.clear();
        self.frame.extend_from_slice(&[0; 8]);
        bincode::serde::encode_into_std_write(item, &mut self.frame, CONFIG)?;
        let len = (self.frame.len() - 8) as u64;
        self.frame[..8].copy_from_slice(&len.to_le_bytes());
        Ok(self.out.write_all(&self.frame)?)
    }

    /// Raw bytes, after their length: two writes, the bytes straight from `bytes`.
    fn send_bytes(&mut self, bytes: &[u8]) -> Fallible<()> {
        self.out.write_all(&(bytes.len() as u64).to_le_bytes())?;
        Ok(self.out.write_all(bytes)?)
    }
}

/// Receives framed messages; `None` at the end of the stream between two messages.
struct Unframed<R> {
    from: BufReader<R>,
    frame: Vec<u8>,
}

impl<R: Read> Unframed<R> {
    fn new(from: R) -> Self {
        Unframed {
            from: BufReader::with_capacity(64 << 10, from),
            frame: Vec::new(),
        }
    }

    /// The next frame's length, or `None` when the stream ended before it.
    fn len(&mut self) -> Fallible<Option<usize>> {
        let mut len = [0; 8];
        match self.from.read_exact(&mut len) {
            Ok(()) => Ok(Some(usize::try_from(u64::from_le_bytes(len))?)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn recv<T: DeserializeOwned>(&mut self) -> Fallible<Option<T>> {
        let Some(len) = self.len()? else {
            return Ok(None);
        };
        self.frame.resize(len, 0);
        self.from.read_exact(&mut self.frame)?;
        let (item, used) = bincode::serde::decode_from_slice(&self.frame, CONFIG)?;
        if used != len {
            return Err(format!("a frame of {len} bytes held {used}").into());
        }
        Ok(Some(item))
    }

    /// Raw bytes, read straight into a vector of their own.
    fn recv_bytes(&mut self) -> Fallible<Option<Vec<u8>>> {
        let Some(len) = self.len()? else {
            return Ok(None);
        };
        let mut bytes = vec![0; len];
        self.from.read_exact(&mut bytes)?;
        Ok(Some(bytes))
    }
}

fn socket_name() -> io::Result<Name<'static>> {
    format!("{}.sock", unique_name("interprocess")).to_ns_name::<GenericNamespaced>()
}

/// Set-up of a 1→1 transfer: main listens; the consumer, forked first, accepts; the
/// producer, forked next, connects. The stream ends when the producer exits.
fn transfer<T: DeserializeOwned>(
    count: u64,
    put: impl Fn(&mut Framed<Stream>, u64) -> Fallible<()>,
    get: impl Fn(&mut Unframed<Stream>) -> Fallible<Option<T>>,
    check: impl Fn(u64, &T) -> Fallible<()>,
) -> Fallible<Duration> {
    let transfer = Transfer::new()?;
    let name = socket_name()?;
    let listener = ListenerOptions::new().name(name.clone()).create_sync()?;
    let consumer = fork("consumer", || {
        let mut from = Unframed::new(listener.accept()?);
        transfer.consume(|| get(&mut from), &check)
    })?;
    let producer = fork("producer", || {
        let mut out = Framed::new(Stream::connect(name)?);
        transfer.produce(count, |i| put(&mut out, i))
    })?;
    drop(listener);
    transfer.run(count, producer, consumer)
}

fn queue_small_1to1(count: u64) -> Fallible<Duration> {
    transfer(
        count,
        |out, i| out.send(&shape::small(i)),
        Unframed::recv,
        shape::check_small,
    )
}

/// The vector is encoded from where it is (bincode borrows it).
fn queue_1mib_vec_u8(count: u64) -> Fallible<Duration> {
    let item = vec![0u8; MIB];
    transfer(
        count,
        |out, _| out.send(&item),
        Unframed::recv::<Vec<u8>>,
        |_, got| shape::check_mib(got),
    )
}

fn queue_1mib_1to1(count: u64) -> Fallible<Duration> {
    let item = vec![0u8; MIB];
    transfer(
        count,
        |out, _| out.send_bytes(&item),
        Unframed::recv_bytes,
        |_, got| shape::check_mib(got),
    )
}

/// One stream, both ways: the child accepts and echoes each u64 back.
fn pingpong_pipe(count: u64) -> Fallible<Duration> {
    let name = socket_name()?;
    let listener = ListenerOptions::new().name(name.clone()).create_sync()?;
    let echo = fork("echo", || {
        let stream = listener.accept()?;
        let (mut from, mut out) = (Unframed::new(&stream), Framed::new(&stream));
        for _ in 0..count {
            let v: u64 = from.recv()?.ok_or("the stream ended early")?;
            out.send(&v)?;
        }
        Ok(())
    })?;
    drop(listener);
    let stream = Stream::connect(name)?;
    let (mut from, mut out) = (Unframed::new(&stream), Framed::new(&stream));
    shape::pingpong(count, echo, |i| {
        out.send(&i)?;
        from.recv()?.ok_or_else(|| "the stream ended early".into())
    })
}
