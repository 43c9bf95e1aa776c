//! [`Context`]: Python's `multiprocessing.get_context(method)`, over every layer: a start
//! method for the processes and pools made through it, leaving the global default alone.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    Executor, ExecutorBuilder, JoinHandle, Pool, PoolBuilder, Process, Result, StartMethod, Target,
};

/// A start method for what is made through it: processes, joinable children and pools
/// (as Python's contexts: `ctx.Process`, `ctx.Pool`), whatever the default is. Made by
/// [`get_context`]; a `Copy` value. Queues, locks and shared values need no context: they
/// work with children of every start method.
///
/// ```
/// use multiproc::{get_context, StartMethod};
///
/// fn square(n: u64) -> u64 {
///     n * n
/// }
///
/// let ctx = get_context(StartMethod::ForkServer)?;
/// let pool = ctx.pool(2)?;
/// assert_eq!(pool.map(square, [1, 2, 3])?, [1, 4, 9]);
/// assert_eq!(ctx.spawn_target(square, (12,))?.join()?, 144);
/// // The default is untouched.
/// assert_eq!(multiproc::get_start_method(), StartMethod::Fork);
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Context {
    inner: proc_core::Context,
}

/// The context of `method`: an error when the method cannot work in this program (as
/// [`set_start_method`](crate::set_start_method) says).
///
/// ```
/// for method in multiproc::get_all_start_methods() {
///     assert_eq!(multiproc::get_context(method)?.start_method(), method);
/// }
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn get_context(method: StartMethod) -> Result<Context> {
    Ok(Context {
        inner: proc_core::get_context(method)?,
    })
}

impl Context {
    /// The start method of this context.
    pub fn start_method(self) -> StartMethod {
        self.inner.start_method()
    }

    /// A process that will call `function` with `args`, started with this context's
    /// method (see [`proc_core::Context::process`]).
    pub fn process<F, Args>(self, function: F, args: Args) -> Process
    where
        F: Target<Args>,
        Args: Serialize + DeserializeOwned + Send + 'static,
    {
        self.inner.process(function, args)
    }

    /// A process that will run the closure `body`, with this context's method (Fork only:
    /// see [`proc_core::Context::process_closure`]).
    pub fn process_closure<F>(self, body: F) -> Process
    where
        F: FnOnce() + Send + 'static,
    {
        self.inner.process_closure(body)
    }

    /// Runs the closure `body` in a new child with this context's method (Fork only: see
    /// [`proc_core::Context::spawn`]).
    pub fn spawn<F, T>(self, body: F) -> Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Serialize + DeserializeOwned,
    {
        Ok(self.inner.spawn(body)?)
    }

    /// Runs `function` with `args` in a new child with this context's method; the handle
    /// gives back what it returned (see [`proc_core::Context::spawn_target`]).
    pub fn spawn_target<F, Args>(self, function: F, args: Args) -> Result<JoinHandle<F::Output>>
    where
        F: Target<Args>,
        F::Output: Serialize + DeserializeOwned,
        Args: Serialize + DeserializeOwned + Send + 'static,
    {
        Ok(self.inner.spawn_target(function, args)?)
    }

    /// A pool of `processes` workers started with this context's method (as Python's
    /// `ctx.Pool(processes)`).
    pub fn pool(self, processes: usize) -> Result<Pool> {
        Ok(self.pool_builder().processes(processes).build()?)
    }

    /// A pool builder whose workers start with this context's method: set the rest
    /// (initializer, maxtasksperchild, …) and build.
    ///
    /// ```
    /// use multiproc::{get_context, StartMethod};
    ///
    /// let pool = get_context(StartMethod::Spawn)?
    ///     .pool_builder()
    ///     .processes(1)
    ///     .maxtasksperchild(10)
    ///     .build()?;
    /// assert_eq!(pool.processes(), 1);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn pool_builder(self) -> PoolBuilder {
        Pool::builder().start_method(self.start_method())
    }

    /// An executor of `processes` workers started with this context's method (as Python's
    /// `ProcessPoolExecutor(n, mp_context=ctx)`).
    ///
    /// ```
    /// use multiproc::{get_context, StartMethod};
    ///
    /// fn double(n: u64) -> u64 {
    ///     n * 2
    /// }
    ///
    /// let ex = get_context(StartMethod::Spawn)?.executor(1)?;
    /// assert_eq!(ex.submit(double, 21)?.result()?, 42);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn executor(self, processes: usize) -> Result<Executor> {
        Ok(self.executor_builder().processes(processes).build()?)
    }

    /// An executor builder whose workers start with this context's method.
    pub fn executor_builder(self) -> ExecutorBuilder {
        Executor::builder().start_method(self.start_method())
    }
}
