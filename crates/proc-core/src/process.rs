//! [`Process`]: a child process, configured, started, watched, signalled and joined.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::child::{Child, TaskReport};
use crate::error::{Error, Result};
use crate::global_state;
use crate::method_choice::get_start_method;
use crate::start;
use crate::start::spec::{Body, Spec};
use crate::start::target_call::TargetCall;
use crate::start_method::StartMethod;
use crate::target::Target;

/// A child process, as Python's `multiprocessing.Process`.
///
/// Build it with [`Process::new`] (a closure) or [`Process::target`] (a function and its
/// arguments), configure it with [`with_name`](Process::with_name) and
/// [`with_daemon`](Process::with_daemon), then [`start`](Process::start) it. The child runs
/// in its own address space: what it changes is invisible to the parent.
///
/// ```
/// use proc_core::Process;
///
/// let mut p = Process::new(|| println!("hello from the child")).with_name("greeter");
/// assert!(!p.is_alive());
/// p.start()?;
/// assert_eq!(p.join()?, 0);
/// assert_eq!(p.exitcode(), Some(0));
/// # Ok::<(), proc_core::Error>(())
/// ```
///
/// Exit codes are Python's: 0 when the body returns, 1 when it panics, `n` for
/// [`exit(n)`](crate::exit), `-signum` when a signal ended it. Dropping a `Process` whose
/// child still runs neither waits for nor kills it; the child is reaped later (at the next
/// start, by [`active_children`](crate::active_children), or at exit), never left a zombie.
/// At normal exit of the parent, daemon children are terminated and the others joined.
pub struct Process {
    name: String,
    identity: Vec<u64>,
    daemon: bool,
    /// `None`: the default in force at `start()`.
    start_method: Option<StartMethod>,
    body: Option<Body>,
    stage: Stage,
}

/// Where a process is in its life.
#[derive(Debug)]
enum Stage {
    /// Not started yet: its settings may change.
    Configured,
    /// Started: the child, running or ended.
    Started(Arc<Child>),
    /// Closed by [`Process::close`]: its descriptors are released; what is still known of
    /// the child, if it was started.
    Closed(Option<Ended>),
}

/// What is still known of a child once its process was closed.
#[derive(Debug, Clone, Copy)]
struct Ended {
    pid: u32,
    exitcode: i32,
}

impl Process {
    /// A process that will run `body`. Not started yet; named `Process-N` (N counts the
    /// processes this process has created, from 1).
    ///
    /// ```
    /// let p = proc_core::Process::new(|| {});
    /// assert!(p.name().starts_with("Process-"));
    /// ```
    pub fn new<F>(body: F) -> Self
    where
        F: FnOnce() + Send + 'static,
    {
        Process::with_body(Body::Closure(Box::new(body)))
    }

    pub(crate) fn with_body(body: Body) -> Self {
        let (identity, name) = global_state::next_child_identity();
        Process {
            name,
            identity,
            daemon: false,
            start_method: None,
            body: Some(body),
            stage: Stage::Configured,
        }
    }

    /// A process that will call `function` with `args`, a tuple of its arguments, as
    /// Python's `Process(target=f, args=(…))`. It works under every
    /// [start method](crate::StartMethod): under Spawn and ForkServer, `function` must be a
    /// function item (`task`, not a `fn` pointer or a closure that captures values) and the
    /// arguments travel encoded, handles such as locks and queues as their file descriptors.
    ///
    /// ```
    /// fn task(name: String, times: u32) {
    ///     for _ in 0..times {
    ///         println!("{name} is running");
    ///     }
    /// }
    ///
    /// let mut p = proc_core::Process::target(task, ("小王".to_string(), 2));
    /// p.start()?;
    /// assert_eq!(p.join()?, 0);
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn target<F, Args>(function: F, args: Args) -> Self
    where
        F: Target<Args>,
        Args: Serialize + DeserializeOwned + Send + 'static,
    {
        Process::with_body(Body::Target(Box::new(TargetCall { function, args })))
    }

    /// Sets the start method of this process, instead of the default in force when it is
    /// started ([`set_start_method`](crate::set_start_method)).
    ///
    /// ```
    /// use proc_core::{Process, StartMethod};
    ///
    /// fn task(n: u32) {
    ///     assert_eq!(n, 7);
    /// }
    ///
    /// let mut p = Process::target(task, (7,)).with_start_method(StartMethod::Spawn);
    /// assert_eq!(p.start_method(), StartMethod::Spawn);
    /// p.start()?;
    /// assert_eq!(p.join()?, 0);
    ///
    /// // A closure can only be run by a copy of this process.
    /// let mut q = Process::new(|| {}).with_start_method(StartMethod::Spawn);
    /// assert!(matches!(q.start(), Err(proc_core::Error::ClosureNeedsFork { .. })));
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_start_method(mut self, method: StartMethod) -> Self {
        if matches!(self.stage, Stage::Configured) {
            self.start_method = Some(method);
        }
        self
    }

    /// The start method this process uses (or will use, if started now).
    pub fn start_method(&self) -> StartMethod {
        self.start_method.unwrap_or_else(get_start_method)
    }

    /// Sets the name (before `start`; on a started process this changes nothing, see
    /// [`set_name`](Process::set_name) for the checked form).
    ///
    /// ```
    /// let p = proc_core::Process::new(|| {}).with_name("worker-1");
    /// assert_eq!(p.name(), "worker-1");
    /// ```
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        let _ = self.set_name(name);
        self
    }

    /// Makes the process a daemon or not (before `start`; on a started process this
    /// changes nothing, see [`set_daemon`](Process::set_daemon) for the checked form). A
    /// daemon is terminated when its parent exits, is killed when its parent dies, and may
    /// not start children of its own.
    ///
    /// ```
    /// let p = proc_core::Process::new(|| {}).with_daemon(true);
    /// assert!(p.is_daemon());
    /// ```
    #[must_use]
    pub fn with_daemon(mut self, daemon: bool) -> Self {
        let _ = self.set_daemon(daemon);
        self
    }

    /// Sets the name; an error once the process was started.
    ///
    /// ```
    /// let mut p = proc_core::Process::new(|| {});
    /// p.set_name("before")?;
    /// p.start()?;
    /// assert!(p.set_name("after").is_err());
    /// assert_eq!(p.name(), "before");
    /// # p.join()?;
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn set_name(&mut self, name: impl Into<String>) -> Result<()> {
        self.refuse_after_start("change the name")?;
        self.name = name.into();
        Ok(())
    }

    /// Sets the daemon flag; an error once the process was started.
    ///
    /// ```
    /// let mut p = proc_core::Process::new(|| {});
    /// p.start()?;
    /// assert!(matches!(p.set_daemon(true), Err(proc_core::Error::ChangeAfterStart { .. })));
    /// # p.join()?;
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn set_daemon(&mut self, daemon: bool) -> Result<()> {
        self.refuse_after_start("change the daemon flag")?;
        self.daemon = daemon;
        Ok(())
    }

    /// Starts the child. An error if it was already started, or if this process is a
    /// daemon (daemons may not have children).
    ///
    /// ```
    /// let mut p = proc_core::Process::new(|| {});
    /// p.start()?;
    /// assert!(matches!(p.start(), Err(proc_core::Error::AlreadyStarted { .. })));
    /// # p.join()?;
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn start(&mut self) -> Result<()> {
        match &self.stage {
            Stage::Configured => {}
            Stage::Started(_) => {
                return Err(Error::AlreadyStarted {
                    name: self.name.clone(),
                });
            }
            Stage::Closed(_) => return Err(self.closed("start()")),
        }
        let method = self.start_method();
        let spec = Spec {
            name: &self.name,
            identity: &self.identity,
            daemon: self.daemon,
            method,
        };
        self.stage = Stage::Started(start::start(&spec, &mut self.body)?);
        // From now on the method is fixed, whatever the default becomes.
        self.start_method = Some(method);
        Ok(())
    }

    /// The child's pid, once started.
    ///
    /// ```
    /// let mut p = proc_core::Process::new(|| {});
    /// assert_eq!(p.pid(), None);
    /// p.start()?;
    /// assert_ne!(p.pid(), Some(std::process::id()));
    /// # p.join()?;
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        match &self.stage {
            Stage::Configured | Stage::Closed(None) => None,
            Stage::Started(child) => Some(child.pid),
            Stage::Closed(Some(ended)) => Some(ended.pid),
        }
    }

    /// The name: `Process-N` unless set.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process is (or will be started as) a daemon.
    pub fn is_daemon(&self) -> bool {
        self.daemon
    }

    /// Whether the child is running: false before start and once it has ended (it is
    /// reaped on the way).
    ///
    /// ```
    /// let mut p = proc_core::Process::new(|| {});
    /// p.start()?;
    /// p.join()?;
    /// assert!(!p.is_alive());
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        self.child().is_some_and(|c| matches!(c.poll(), Ok(None)))
    }

    /// Waits for the child to end and returns its exit code.
    ///
    /// A child started by Spawn or ForkServer that could not run its task (its arguments
    /// did not decode) makes this an [`Error::TaskFailed`] with the child's reason; its
    /// exit code, [`TASK_ERROR_EXIT_CODE`](crate::TASK_ERROR_EXIT_CODE), is still in
    /// [`exitcode`](Process::exitcode).
    ///
    /// ```
    /// let mut p = proc_core::Process::new(|| proc_core::exit(3));
    /// p.start()?;
    /// assert_eq!(p.join()?, 3);
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn join(&self) -> Result<i32> {
        loop {
            if let Some(code) = self.join_until(None, "join()")? {
                return Ok(code);
            }
        }
    }

    /// Waits at most `timeout` for the child to end: `Ok(Some(code))` if it ended,
    /// `Ok(None)` if it is still running.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut p = proc_core::Process::new(|| std::thread::sleep(Duration::from_secs(10)));
    /// p.start()?;
    /// assert_eq!(p.join_timeout(Duration::from_millis(10))?, None);
    /// p.kill()?;
    /// assert_eq!(p.join_timeout(Duration::from_secs(10))?, Some(-9));
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<Option<i32>> {
        self.join_until(Instant::now().checked_add(timeout), "join_timeout()")
    }

    fn join_until(
        &self,
        deadline: Option<Instant>,
        operation: &'static str,
    ) -> Result<Option<i32>> {
        let child = self.started(operation)?;
        let code = child
            .wait(deadline)
            .map_err(|e| Error::io("waiting for the child", e))?;
        let Some(code) = code else {
            return Ok(None);
        };
        self.forget_reaped();
        match child.task_report() {
            TaskReport::Ran => Ok(Some(code)),
            TaskReport::Rejected(reason) => Err(Error::TaskFailed {
                name: self.name.clone(),
                reason,
            }),
            // A signal may end a child before it took its task; that is its exit code.
            TaskReport::NotTaken if code < 0 => Ok(Some(code)),
            TaskReport::NotTaken => Err(Error::TaskFailed {
                name: self.name.clone(),
                reason: format!(
                    "it exited with code {code} without taking its task: was it started from \
                     a program whose main() does not begin with multiproc::init()?"
                ),
            }),
        }
    }

    /// Reaps the child if it ended; its exit code then.
    fn poll(&self) -> Option<i32> {
        if let Stage::Closed(ended) = &self.stage {
            return ended.map(|e| e.exitcode);
        }
        let code = self.child()?.poll().ok().flatten();
        if code.is_some() {
            self.forget_reaped();
        }
        code
    }

    /// The registry of children need not hold a reaped child: its pidfd closes with this
    /// handle.
    fn forget_reaped(&self) {
        if let Stage::Started(child) = &self.stage {
            global_state::forget(child);
        }
    }

    /// The child, once started and until closed.
    fn child(&self) -> Option<&Child> {
        match &self.stage {
            Stage::Started(child) => Some(child),
            Stage::Configured | Stage::Closed(_) => None,
        }
    }

    /// The exit code: `None` before start and while the child runs; still known after
    /// [`close`](Process::close).
    pub fn exitcode(&self) -> Option<i32> {
        self.poll()
    }

    /// Sends SIGTERM (through the pidfd: a recycled pid is never hit). Once the child was
    /// reaped this does nothing.
    ///
    /// ```
    /// let mut p = proc_core::Process::new(|| std::thread::sleep(std::time::Duration::from_secs(10)));
    /// p.start()?;
    /// p.terminate()?;
    /// assert_eq!(p.join()?, -15);
    /// p.terminate()?; // reaped: nothing left to signal
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn terminate(&self) -> Result<()> {
        self.signal(libc::SIGTERM, "terminate()")
    }

    /// Sends SIGKILL (through the pidfd). Once the child was reaped this does nothing.
    pub fn kill(&self) -> Result<()> {
        self.signal(libc::SIGKILL, "kill()")
    }

    /// Sends SIGINT (through the pidfd), as a Ctrl-C would: a child that does not handle it
    /// ends with exit code -2. Once the child was reaped this does nothing.
    ///
    /// ```
    /// let mut p = proc_core::Process::new(|| std::thread::sleep(std::time::Duration::from_secs(10)));
    /// p.start()?;
    /// p.interrupt()?;
    /// assert_eq!(p.join()?, -2);
    /// p.interrupt()?; // reaped: nothing left to signal
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn interrupt(&self) -> Result<()> {
        self.signal(libc::SIGINT, "interrupt()")
    }

    /// Releases what this handle holds of the child (its pidfd, the pipes and sockets it
    /// was started with), as Python's `Process.close()`. An error
    /// ([`Error::StillRunning`]) while the child runs: join it first. A child that has ended
    /// is reaped on the way; closing twice, or closing a process never started, is `Ok`.
    ///
    /// Afterwards every operation that returns a `Result` ([`join`](Process::join),
    /// [`terminate`](Process::terminate), [`sentinel`](Process::sentinel),
    /// [`start`](Process::start), …) is an [`Error::Closed`]; [`pid`](Process::pid),
    /// [`name`](Process::name) and [`exitcode`](Process::exitcode) still answer.
    ///
    /// ```
    /// use proc_core::{Error, Process};
    ///
    /// let mut p = Process::new(|| std::thread::sleep(std::time::Duration::from_secs(10)));
    /// p.start()?;
    /// assert!(matches!(p.close(), Err(Error::StillRunning { .. })));
    /// p.kill()?;
    /// p.join()?;
    /// p.close()?;
    /// assert!(matches!(p.join(), Err(Error::Closed { .. })));
    /// assert_eq!(p.exitcode(), Some(-9));
    /// assert!(p.pid().is_some());
    /// p.close()?; // a second close is Ok
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn close(&mut self) -> Result<()> {
        let ended = match &self.stage {
            Stage::Closed(_) => return Ok(()),
            Stage::Configured => None,
            Stage::Started(child) => {
                let code = child
                    .poll()
                    .map_err(|e| Error::io("waiting for the child", e))?
                    .ok_or_else(|| Error::StillRunning {
                        name: self.name.clone(),
                    })?;
                self.forget_reaped();
                Some(Ended {
                    pid: child.pid,
                    exitcode: code,
                })
            }
        };
        // Dropping the last handle on the child closes its pidfd and its task socket or
        // status pipe; a body never started is dropped with what it captured.
        self.stage = Stage::Closed(ended);
        self.body = None;
        Ok(())
    }

    /// A file descriptor that turns readable when the child ends (its pidfd), for use with
    /// `poll`/`epoll` alongside other fds. An error before start.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    ///
    /// let mut p = proc_core::Process::new(|| {});
    /// assert!(p.sentinel().is_err());
    /// p.start()?;
    /// assert!(p.sentinel()?.as_raw_fd() >= 0);
    /// # p.join()?;
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn sentinel(&self) -> Result<BorrowedFd<'_>> {
        Ok(self.started("sentinel()")?.as_fd())
    }

    fn signal(&self, signal: libc::c_int, operation: &'static str) -> Result<()> {
        self.started(operation)?
            .signal(signal)
            .map_err(|e| Error::io("pidfd_send_signal", e))
    }

    fn started(&self, operation: &'static str) -> Result<&Child> {
        match &self.stage {
            Stage::Started(child) => Ok(child),
            Stage::Configured => Err(Error::NotStarted {
                name: self.name.clone(),
                operation,
            }),
            Stage::Closed(_) => Err(self.closed(operation)),
        }
    }

    fn refuse_after_start(&self, operation: &'static str) -> Result<()> {
        match &self.stage {
            Stage::Configured => Ok(()),
            Stage::Started(_) => Err(Error::ChangeAfterStart {
                name: self.name.clone(),
                operation,
            }),
            Stage::Closed(_) => Err(self.closed(operation)),
        }
    }

    fn closed(&self, operation: &'static str) -> Error {
        Error::Closed {
            name: self.name.clone(),
            operation,
        }
    }
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .field("start_method", &self.start_method())
            .field("pid", &self.pid())
            .field("exitcode", &self.exitcode())
            .finish()
    }
}
