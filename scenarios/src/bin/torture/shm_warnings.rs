//! The resource trackers' warnings in the `shm` scenario.
//!
//! A tracker writes one warning to its stderr, which it inherits from the worker that
//! started it, for each leaked block it unlinks. The workers' stderr is a pipe to this
//! process: a thread here takes each warning about one of the run's blocks (the block's
//! number, for the books) and passes every other line on to this process's stderr. The
//! pipe ends once every worker and every tracker has ended: that end of file is also how
//! the parent knows that no tracker outlived the run.

use std::io::{BufRead, BufReader, PipeWriter, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// What a tracker writes before a leaked block's name.
const WARNING: &[u8] = b"resource tracker: leaked shared_memory block '";

/// The reading end's thread and the writing end, until [`Warnings::collect`].
pub struct Warnings {
    writer: Arc<PipeWriter>,
    numbers: Receiver<Vec<u64>>,
}

impl Warnings {
    /// The pipe and its reading thread, which takes the warnings about the blocks named
    /// `prefix` and a number.
    pub fn start(prefix: &str) -> Result<Warnings, String> {
        let (reader, writer) =
            std::io::pipe().map_err(|e| format!("a pipe for the workers' stderr: {e}"))?;
        let (send, numbers) = channel();
        let mut head = WARNING.to_vec();
        head.extend_from_slice(prefix.as_bytes());
        std::thread::Builder::new()
            .name("shm-warnings".into())
            .spawn(move || {
                let mut found = Vec::new();
                for line in BufReader::new(reader).split(b'\n') {
                    let Ok(line) = line else { break };
                    match number_after(&line, &head) {
                        Some(number) => found.push(number),
                        None => {
                            let mut stderr = std::io::stderr().lock();
                            let _ = stderr.write_all(&line);
                            let _ = stderr.write_all(b"\n");
                        }
                    }
                }
                let _ = send.send(found);
            })
            .map_err(|e| format!("the thread reading the workers' stderr: {e}"))?;
        Ok(Warnings {
            writer: Arc::new(writer),
            numbers,
        })
    }

    /// The writing end, for a worker to make its stderr.
    pub fn writer(&self) -> Arc<PipeWriter> {
        Arc::clone(&self.writer)
    }

    /// Closes this process's writing end and waits at most `wait` for every other holder
    /// (workers, trackers) to end: the numbers of the blocks the trackers warned about, in
    /// the order of the warnings; `None` if some process still held the pipe then.
    pub fn collect(self, wait: Duration) -> Option<Vec<u64>> {
        drop(self.writer);
        self.numbers.recv_timeout(wait).ok()
    }
}

/// In a worker: its stderr becomes `writer`, which the trackers it starts inherit.
pub fn redirect_stderr(writer: &PipeWriter) {
    // SAFETY: dup2 onto descriptor 2 of a descriptor this process owns; no memory is
    // involved, and whatever used the old stderr goes on writing to the new one.
    if unsafe { libc::dup2(writer.as_raw_fd(), 2) } < 0 {
        eprintln!(
            "torture: shm: a worker's stderr could not be redirected: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The number after `head` in `line`, up to the closing quote.
fn number_after(line: &[u8], head: &[u8]) -> Option<u64> {
    let at = line.windows(head.len()).position(|w| w == head)?;
    let rest = &line[at + head.len()..];
    let end = rest.iter().position(|&b| b == b'\'')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}
