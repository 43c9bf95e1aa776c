//! The plumbing that every peer's workload shares and none of the peers provides: forked
//! children, the start signal, and the consumer's report of what it got. Plain pipes and
//! `fork`, so that no peer's own machinery is measured twice or favoured.

use std::error::Error;
use std::io::{self, PipeReader, PipeWriter, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What a workload's run and a child's body end with.
pub type Fallible<T> = Result<T, Box<dyn Error>>;

/// A forked child process, to be reaped with [`Child::join`].
#[must_use = "a child must be joined"]
pub struct Child {
    pid: libc::pid_t,
    what: &'static str,
}

/// Forks a child that runs `body` and ends with `_exit`: 0 when `body` returns `Ok`, 1 when
/// it fails (said on stderr) or panics. This program runs one thread, and no peer starts one
/// before a fork here, so the child may do anything its parent could.
pub fn fork(what: &'static str, body: impl FnOnce() -> Fallible<()>) -> io::Result<Child> {
    // SAFETY: the process is single-threaded (see above); the child runs `body` and leaves
    // through _exit, never returning into the parent's code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = match catch_unwind(AssertUnwindSafe(body)) {
                Ok(Ok(())) => 0,
                Ok(Err(why)) => {
                    eprintln!("the {what} failed: {why}");
                    1
                }
                Err(_) => 1,
            };
            // SAFETY: ends the child at once, without the parent's destructors or atexit.
            unsafe { libc::_exit(code) }
        }
        pid => Ok(Child { pid, what }),
    }
}

impl Child {
    /// Waits for the child to end; an error unless it exited with status 0.
    pub fn join(self) -> Fallible<()> {
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child; `status` is a valid place for the result.
            if unsafe { libc::waitpid(self.pid, &mut status, 0) } == self.pid {
                break;
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(format!("waiting for the {}: {error}", self.what).into());
            }
        }
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            Ok(())
        } else {
            Err(format!("the {} ended with wait status {status:#x}", self.what).into())
        }
    }
}

/// The start signal: children forked in set-up wait on it, and the clock starts when main
/// gives it. A pipe: each waiter takes one byte of the `n` that main writes.
pub struct Gate {
    read: PipeReader,
    write: PipeWriter,
}

impl Gate {
    pub fn new() -> io::Result<Gate> {
        let (read, write) = io::pipe()?;
        Ok(Gate { read, write })
    }

    /// In a child: returns once main has given the signal.
    pub fn wait(&self) -> io::Result<()> {
        (&self.read).read_exact(&mut [0])
    }

    /// In main: lets `waiters` children go.
    pub fn open(&self, waiters: usize) -> io::Result<()> {
        (&self.write).write_all(&vec![1; waiters])
    }
}

/// A count that a child sends back to main: how many items a consumer got.
pub struct Report {
    read: PipeReader,
    write: PipeWriter,
}

impl Report {
    pub fn new() -> io::Result<Report> {
        let (read, write) = io::pipe()?;
        Ok(Report { read, write })
    }

    /// In a child: sends `count` to main.
    pub fn send(&self, count: u64) -> io::Result<()> {
        (&self.write).write_all(&count.to_le_bytes())
    }

    /// In main: the count a child sent (after it was joined).
    pub fn recv(&self) -> io::Result<u64> {
        let mut bytes = [0; 8];
        (&self.read).read_exact(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }
}

/// A name no other run uses at the same time: this process's id and a counter.
pub fn unique_name(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "bench-peers-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
