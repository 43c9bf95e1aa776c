//! ipc-channel: `ipc::channel` (a Unix `SOCK_SEQPACKET` socket per direction, messages in
//! postcard), connected between processes the way its documentation shows: a child makes a
//! channel and sends its sender through the parent's `IpcOneShotServer`; a child forked
//! after that inherits the sender (a file descriptor) as it inherits any.

use std::time::Duration;

use ipc_channel::IpcError;
use ipc_channel::ipc::{self, IpcBytesSender, IpcOneShotServer, IpcReceiver, IpcSender};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::shape::{self, MIB, Transfer, Workload};
use crate::sys::{Fallible, fork};

pub const WORKLOADS: &[(&str, Workload)] = &[
    ("queue_small_1to1", queue_small_1to1),
    ("queue_1mib_1to1", queue_1mib_1to1),
    ("queue_1mib_vec_u8", queue_1mib_vec_u8),
    ("pingpong_pipe", pingpong_pipe),
];

/// The next message, or `None` when every sender is gone (the end of the stream).
fn next<T>(got: Result<T, IpcError>) -> Fallible<Option<T>> {
    match got {
        Ok(item) => Ok(Some(item)),
        Err(IpcError::Disconnected) => Ok(None),
        Err(e) => Err(format!("recv: {e:?}").into()),
    }
}

/// Set-up of a 1→1 transfer of `T`: the consumer, forked first, makes the channel and
/// sends its sender back through a one-shot server; the producer, forked next, inherits
/// it. Main keeps no sender, so the consumer's `recv` ends when the producer exits.
fn transfer<T>(
    count: u64,
    put: impl Fn(&IpcSender<T>, u64) -> Fallible<()>,
    check: impl Fn(u64, &T) -> Fallible<()>,
) -> Fallible<Duration>
where
    T: Serialize + DeserializeOwned,
{
    let transfer = Transfer::new()?;
    let (server, name) = IpcOneShotServer::<IpcSender<T>>::new()?;
    let consumer = fork("consumer", || {
        let (tx, rx) = ipc::channel::<T>()?;
        IpcSender::connect(name)?.send(tx)?;
        transfer.consume(|| next(rx.recv()), &check)
    })?;
    let (_, tx) = server.accept().map_err(|e| format!("accept: {e:?}"))?;
    let producer = fork("producer", || transfer.produce(count, |i| put(&tx, i)))?;
    drop(tx);
    transfer.run(count, producer, consumer)
}

fn queue_small_1to1(count: u64) -> Fallible<Duration> {
    transfer::<(u64, String)>(
        count,
        |tx, i| Ok(tx.send(shape::small(i))?),
        shape::check_small,
    )
}

/// `send` takes the item by value: the one vector is cloned for each put (a copy that
/// multiproc's `put_ref` and ipmpsc's `send(&item)` do not make).
fn queue_1mib_vec_u8(count: u64) -> Fallible<Duration> {
    let item = vec![0u8; MIB];
    transfer::<Vec<u8>>(
        count,
        |tx, _| Ok(tx.send(item.clone())?),
        |_, got| shape::check_mib(got),
    )
}

/// Raw bytes: its `bytes_channel`, whose `send(&[u8])` borrows the buffer.
fn queue_1mib_1to1(count: u64) -> Fallible<Duration> {
    let item = vec![0u8; MIB];
    let transfer = Transfer::new()?;
    let (server, name) = IpcOneShotServer::<IpcBytesSender>::new()?;
    let consumer = fork("consumer", || {
        let (tx, rx) = ipc::bytes_channel()?;
        IpcSender::connect(name)?.send(tx)?;
        transfer.consume(|| next(rx.recv()), |_, got| shape::check_mib(got))
    })?;
    let (_, tx) = server.accept().map_err(|e| format!("accept: {e:?}"))?;
    let producer = fork("producer", || {
        transfer.produce(count, |_| Ok(tx.send(&item)?))
    })?;
    drop(tx);
    transfer.run(count, producer, consumer)
}

/// Two channels, one each way (an ipc-channel channel goes one way): the child makes both
/// and sends main its ends through a one-shot server.
fn pingpong_pipe(count: u64) -> Fallible<Duration> {
    type Ends = (IpcSender<u64>, IpcReceiver<u64>);
    let (server, name) = IpcOneShotServer::<Ends>::new()?;
    let echo = fork("echo", || {
        let (there_tx, there_rx) = ipc::channel::<u64>()?;
        let (back_tx, back_rx) = ipc::channel::<u64>()?;
        IpcSender::connect(name)?.send((there_tx, back_rx))?;
        for _ in 0..count {
            back_tx.send(there_rx.recv().map_err(|e| format!("recv: {e:?}"))?)?;
        }
        Ok(())
    })?;
    let (_, (there, back)) = server.accept().map_err(|e| format!("accept: {e:?}"))?;
    shape::pingpong(count, echo, |i| {
        there.send(i)?;
        back.recv().map_err(|e| format!("recv: {e:?}").into())
    })
}
