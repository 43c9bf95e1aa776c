//! [`Context`] and [`get_context`]: a start method to start processes with, without changing
//! the default of the whole program, as Python's `multiprocessing.get_context(method)`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::join_handle::{JoinHandle, spawn_target_with, spawn_with};
use crate::method_choice::check_usable;
use crate::process::Process;
use crate::start_method::StartMethod;
use crate::target::Target;

/// A start method to start processes with, as Python's context objects: what it starts
/// uses its method whatever the default ([`set_start_method`](crate::set_start_method))
/// is, and the default is not changed. A small `Copy` value; get one with [`get_context`].
///
/// ```
/// use proc_core::{get_context, get_start_method, StartMethod};
///
/// fn task(n: u32) {
///     assert_eq!(get_start_method(), StartMethod::Spawn, "a child knows what started it");
///     assert_eq!(n, 3);
/// }
///
/// let ctx = get_context(StartMethod::Spawn)?;
/// assert_eq!(ctx.start_method(), StartMethod::Spawn);
/// let mut p = ctx.process(task, (3,));
/// assert_eq!(p.start_method(), StartMethod::Spawn);
/// p.start()?;
/// assert_eq!(p.join()?, 0);
/// # Ok::<(), proc_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Context {
    method: StartMethod,
}

/// The context of `method`: an error when the method cannot work in this program (as
/// [`set_start_method`](crate::set_start_method) says).
///
/// ```
/// use proc_core::{get_all_start_methods, get_context};
///
/// for method in get_all_start_methods() {
///     assert_eq!(get_context(method)?.start_method(), method);
/// }
/// # Ok::<(), proc_core::Error>(())
/// ```
pub fn get_context(method: StartMethod) -> Result<Context> {
    check_usable(method)?;
    Ok(Context { method })
}

impl Context {
    /// The start method of this context.
    pub fn start_method(self) -> StartMethod {
        self.method
    }

    /// A process that will call `function` with `args` (as
    /// [`Process::target`](crate::Process::target)), started with this context's method.
    /// Not started yet.
    ///
    /// ```
    /// use proc_core::{get_context, StartMethod};
    ///
    /// fn add(a: u32, b: u32) {
    ///     proc_core::exit((a + b) as i32);
    /// }
    ///
    /// let mut p = get_context(StartMethod::ForkServer)?.process(add, (2, 3));
    /// p.start()?;
    /// assert_eq!(p.join()?, 5);
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn process<F, Args>(self, function: F, args: Args) -> Process
    where
        F: Target<Args>,
        Args: Serialize + DeserializeOwned + Send + 'static,
    {
        Process::target(function, args).with_start_method(self.method)
    }

    /// A process that will run the closure `body` (as [`Process::new`]) with this
    /// context's method. Only Fork runs closures: under another method `start()` is an
    /// [`Error::ClosureNeedsFork`](crate::Error::ClosureNeedsFork).
    ///
    /// ```
    /// use proc_core::{get_context, StartMethod};
    ///
    /// let mut p = get_context(StartMethod::Fork)?.process_closure(|| println!("forked"));
    /// p.start()?;
    /// assert_eq!(p.join()?, 0);
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn process_closure<F>(self, body: F) -> Process
    where
        F: FnOnce() + Send + 'static,
    {
        Process::new(body).with_start_method(self.method)
    }

    /// Runs the closure `body` in a new child started with this context's method, as
    /// [`spawn`](crate::spawn). Only Fork runs closures: under another method this is an
    /// [`Error::ClosureNeedsFork`](crate::Error::ClosureNeedsFork), whatever the default.
    ///
    /// ```
    /// use proc_core::{get_context, Error, StartMethod};
    ///
    /// let h = get_context(StartMethod::Fork)?.spawn(|| 6 * 7)?;
    /// assert_eq!(h.join().unwrap(), 42);
    ///
    /// let refused = get_context(StartMethod::Spawn)?.spawn(|| 6 * 7);
    /// assert!(matches!(refused, Err(Error::ClosureNeedsFork { .. })));
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn spawn<F, T>(self, body: F) -> Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Serialize + DeserializeOwned,
    {
        spawn_with(Some(self.method), body)
    }

    /// Runs `function` with `args` in a new child started with this context's method and
    /// returns a handle that gives back what it returned, as
    /// [`spawn_target`](crate::spawn_target).
    ///
    /// ```
    /// use proc_core::{get_context, StartMethod};
    ///
    /// fn square(n: u64) -> u64 {
    ///     n * n
    /// }
    ///
    /// for method in [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer] {
    ///     let h = get_context(method)?.spawn_target(square, (12,))?;
    ///     assert_eq!(h.join().unwrap(), 144);
    /// }
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    pub fn spawn_target<F, Args>(self, function: F, args: Args) -> Result<JoinHandle<F::Output>>
    where
        F: Target<Args>,
        F::Output: Serialize + DeserializeOwned,
        Args: Serialize + DeserializeOwned + Send + 'static,
    {
        spawn_target_with(Some(self.method), function, args)
    }
}
