//! The task of a spawned or served child: what the parent sends it, and how it runs it.
//!
//! A child that is not a copy of its parent knows nothing of it: who it is (name, identity,
//! daemon flag, parent), what to run, and with which arguments all arrive as one message on
//! a private Unix socket the parent made for it. The function is named by its offset in the
//! executable ([`CodeAddress`]): not the user's function itself, but
//! [`call_encoded`](super::target_call) instantiated for it, the one function that knows
//! the target's type and its arguments' type. The arguments are encoded with
//! [`handle_wire`](crate::handle_wire), so that handles among them (locks, queues,
//! connections) arrive as their file descriptors, attached to the message.
//!
//! ```text
//! parent -> child   u32 length (little-endian), then the encoded Header; SCM_RIGHTS: the
//!                   lifeline's read end (daemons only), a pidfd of the parent (its
//!                   sentinel), then the arguments' descriptors
//! child -> parent   "+" once its arguments decoded, just before the function runs; or
//!                   "-" and a reason when it cannot run the task (then it exits with
//!                   TASK_ERROR_EXIT_CODE)
//! ```
//!
//! The parent reads the child's answer once the child has ended: a "-" makes `join` an
//! error that carries the reason, and a child that exited normally without any answer never
//! took its task (a program that multiproc could not take over before `main`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, send, socketpair};
use serde::{Deserialize, Serialize};

use crate::child::{Child, Ending};
use crate::code_address::CodeAddress;
use crate::codec::{self, ByteBuf};
use crate::error::{Error, Result, panic_message};
use crate::fd_passing;
use crate::global_state::{self, Me};
use crate::lifeline;
use crate::method_choice;
use crate::pidfd::{Pidfd, is_pidfd};
use crate::process_info::ProcessInfo;
use crate::start_method::StartMethod;

use super::finish::{finish, flush_stdio, redirect_stdin_to_null};
use super::spec::Spec;
use super::target_call::{Entry, EntryFn, TASK_LIMIT};

/// The exit code of a spawned or served child that could not run its task: its task
/// message was malformed or truncated, or its arguments did not decode. The child prints
/// why on its stderr and tells its parent, whose `join` returns
/// [`Error::TaskFailed`](crate::Error::TaskFailed) with the reason.
pub const TASK_ERROR_EXIT_CODE: i32 = 125;

/// Everything a spawned or served child needs to know, apart from the descriptors.
#[derive(Serialize, Deserialize)]
struct Header {
    name: String,
    identity: Vec<u64>,
    daemon: bool,
    parent: ProcessInfo,
    /// The method that started the child, which becomes its default (as Python's context).
    start_method: StartMethod,
    entry: CodeAddress,
    args: ByteBuf,
}

/// How a start method makes a new process that reads its task from a socket: returns our
/// end of that socket and the process.
pub(crate) type Launch = fn() -> Result<(OwnedFd, Launched)>;

/// A socket pair for one task: our end, and the end the new process reads from.
pub(crate) fn task_socket() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::io("socketpair for the task", e.into()))
}

/// A new process, about to read its task.
pub(crate) struct Launched {
    pub(crate) pid: u32,
    pub(crate) pidfd: Pidfd,
    pub(crate) ending: Ending,
}

/// Starts a child with `launch` (Spawn's or ForkServer's) and sends it `entry` as its task.
pub(crate) fn start(spec: &Spec<'_>, launch: Launch, entry: Entry) -> Result<Arc<Child>> {
    let (parent, lifeline) = {
        let mut global = global_state::lock();
        let parent = global.prepare_start(spec.daemon)?;
        // A daemon watches a copy of the lifeline's read end (which prepare_start made for
        // it), as a forked daemon does; it is the task's first descriptor.
        let lifeline = match (&global.lifeline, spec.daemon) {
            (Some(line), true) => Some(
                line.read
                    .try_clone()
                    .map_err(|e| Error::io("duplicating the lifeline for a daemon", e))?,
            ),
            (None, true) => {
                let missing = io::Error::other("prepare_start made none");
                return Err(Error::io("finding the lifeline for a daemon", missing));
            }
            (_, false) => None,
        };
        (parent, lifeline)
    };

    let Entry { address, args } = entry;
    let header = Header {
        name: spec.name.to_string(),
        identity: spec.identity.to_vec(),
        daemon: spec.daemon,
        parent,
        start_method: spec.method,
        entry: address,
        args: ByteBuf::from(args.bytes),
    };
    let message = codec::encode(&header)?;
    let mut fds: Vec<BorrowedFd<'_>> = lifeline.iter().map(AsFd::as_fd).collect();
    // The parent's pidfd, which prepare_start opened: the child's sentinel of its parent
    // (under ForkServer too, where the server is only the child's parent for the kernel).
    fds.push(header.parent.sentinel()?);
    fds.extend(args.fds.iter().map(AsFd::as_fd));

    // What the parent printed before start() comes out before what the child prints, as
    // under Fork (and as Python does for every start method).
    flush_stdio();
    let (ours, launched) = launch()?;
    let sent = fd_passing::send_frame(ours.as_fd(), &message, &fds, TASK_LIMIT);
    let child = Child::new(
        launched.pid,
        spec.name.to_string(),
        spec.daemon,
        launched.pidfd,
        launched.ending,
        Some(ours),
    );
    if let Err(e) = sent {
        // The child is gone or will not read: end it and reap it, so nothing is left.
        let _ = child.signal(libc::SIGKILL);
        let _ = child.wait(None);
        return Err(Error::io("sending the task to the new child", e));
    }
    let child = Arc::new(child);
    global_state::lock().children.push(Arc::clone(&child));
    Ok(child)
}

/// The child's side: receive the task on `socket`, become the process it describes, run it,
/// end. Never returns.
pub(crate) fn run(socket: OwnedFd) -> ! {
    // As Rust's own `main` would have done: a write to a closed pipe is an error for the
    // writer to handle, not a signal that ends the process (a forked child inherits this).
    // SAFETY: setting a signal's disposition to SIG_IGN involves no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let (header, mut fds) = match receive(socket.as_fd()) {
        Ok(task) => task,
        Err(reason) => reject(socket, "a spawned process", &reason),
    };
    // A daemon's first descriptor is the read end of its parent's lifeline: a pipe, which
    // only the parent's end turns readable. Anything else (a file, /dev/null, a socket)
    // would kill the daemon at once or never: refused, with the reason.
    let lifeline = match (header.daemon, fds.is_empty()) {
        (true, false) => {
            let line = fds.remove(0);
            if !is_pipe(line.as_fd()) {
                reject(
                    socket,
                    &header.name,
                    "the task is a daemon's and its first descriptor, the lifeline, is not a pipe",
                )
            }
            Some(line)
        }
        (true, true) => reject(
            socket,
            &header.name,
            "the task is a daemon's but carries no lifeline descriptor",
        ),
        (false, _) => None,
    };
    // Then a pidfd of the parent, to watch it by: anything else would tell of a parent's
    // death that did not happen, or never tell of one that did.
    let parent_sentinel = if fds.is_empty() {
        reject(
            socket,
            &header.name,
            "the task carries no descriptor for the parent's sentinel",
        )
    } else {
        fds.remove(0)
    };
    if !is_pidfd(parent_sentinel.as_fd()) {
        reject(
            socket,
            &header.name,
            "the parent's sentinel, the task's descriptor after the lifeline, is not a pidfd",
        )
    }
    global_state::lock().me = Me {
        name: header.name.clone().into(),
        identity: header.identity.clone(),
        daemon: header.daemon,
        parent: Some(
            header
                .parent
                .clone()
                .with_sentinel(Arc::new(parent_sentinel)),
        ),
        managed: true,
    };
    method_choice::set_default(header.start_method);
    if let Some(read) = lifeline {
        lifeline::watch(read);
    }
    redirect_stdin_to_null();
    let entry = match header.entry.resolve() {
        // SAFETY: the parent named an `EntryFn` of this same executable (a spawned child
        // runs /proc/self/exe of its parent; a served one is a fork of such a run), and
        // `resolve` checked that the address lands in this executable's code.
        Ok(address) => unsafe { std::mem::transmute::<usize, EntryFn>(address) },
        Err(e) => reject(socket, &header.name, &e.to_string()),
    };

    let mut socket = Some(socket);
    let mut accepted = || {
        if let Some(socket) = socket.take() {
            // The parent reads this after we end; if it is gone, nobody needs it.
            let _ = send(socket.as_raw_fd(), b"+", MsgFlags::MSG_NOSIGNAL);
        }
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| entry(&header.args, fds, &mut accepted)));
    let code = match (outcome, socket) {
        (Ok(Ok(())), _) => 0,
        (Ok(Err(e)), Some(socket)) => reject(
            socket,
            &header.name,
            &format!("its arguments did not decode: {e}"),
        ),
        // Arguments are decoded before `accepted` is called, so this does not happen; were
        // it to, the task did not run as asked.
        (Ok(Err(_)), None) => TASK_ERROR_EXIT_CODE,
        (Err(payload), Some(socket)) => reject(
            socket,
            &header.name,
            &format!(
                "decoding its arguments panicked: {}",
                panic_message(payload.as_ref())
            ),
        ),
        // The target panicked; the panic hook has printed its message.
        (Err(_), None) => 1,
    };
    finish(code)
}

/// Whether `fd` is a pipe (a FIFO).
fn is_pipe(fd: BorrowedFd<'_>) -> bool {
    use nix::sys::stat::{SFlag, fstat};
    fstat(fd)
        .is_ok_and(|stat| SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFIFO)
}

/// Reads the task message and decodes its header. The bytes are untrusted: every failure
/// is a reason, never a panic.
fn receive(socket: BorrowedFd<'_>) -> Result<(Header, Vec<OwnedFd>), String> {
    let (bytes, fds) = match fd_passing::recv_frame(socket, TASK_LIMIT) {
        Ok(Some(message)) => message,
        Ok(None) => return Err("the task message never came (the socket was closed)".into()),
        Err(e) => return Err(format!("the task message could not be read: {e}")),
    };
    let header = codec::decode::<Header>(&bytes, TASK_LIMIT)
        .map_err(|e| format!("the task message does not decode: {e}"))?;
    Ok((header, fds))
}

/// The longest reason a child tells: its parent reads the answer only once the child has
/// ended, so the answer must fit the socket's buffer, and the reason (which may quote what
/// a `Deserialize` impl or a panic said, of any length) is cut to this.
const REASON_LIMIT: usize = 4 << 10;

/// Tells the parent (and stderr) why the task cannot run, and ends with
/// [`TASK_ERROR_EXIT_CODE`]. Never waits for the parent.
fn reject(socket: OwnedFd, name: &str, reason: &str) -> ! {
    let reason = shortened(reason, REASON_LIMIT);
    eprintln!("multiproc: process {name:?} could not run its task: {reason}");
    let mut answer = Vec::with_capacity(1 + reason.len());
    answer.push(b'-');
    answer.extend_from_slice(reason.as_bytes());
    // Without waiting: the parent reads only after we end. The answer fits an empty
    // buffer; should it not, a full answer is lost but the child still ends.
    let _ = send(
        socket.as_raw_fd(),
        &answer,
        MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
    );
    drop(socket);
    finish(TASK_ERROR_EXIT_CODE)
}

/// `text` if it has at most `limit` bytes; otherwise its start, cut at a character
/// boundary, and how much was left out.
fn shortened(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= limit {
        return text.into();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &text[..end], text.len() - end).into()
}
