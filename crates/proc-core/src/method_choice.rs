//! Which start method is in force: [`set_start_method`], [`get_start_method`], the
//! [`START_METHOD_ENV`] environment variable, [`get_all_start_methods`], and
//! [`StartMethod`]'s names parsed back.

use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

use crate::code_address::{self, CodeAddress};
use crate::error::{Error, Result};
use crate::start_method::StartMethod;

impl FromStr for StartMethod {
    type Err = Error;

    /// Parses Python's names.
    ///
    /// ```
    /// use proc_core::StartMethod;
    /// assert_eq!("spawn".parse::<StartMethod>()?, StartMethod::Spawn);
    /// assert!("vfork".parse::<StartMethod>().is_err());
    /// # Ok::<(), proc_core::Error>(())
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        StartMethod::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| Error::UnknownStartMethod {
                given: s.to_string(),
            })
    }
}

static DEFAULT: AtomicU8 = AtomicU8::new(0);

/// Makes `method` the default without checking it can work (in a child, which was started
/// by it or by a parent that checked).
pub(crate) fn set_default(method: StartMethod) {
    DEFAULT.store(method.index(), Ordering::Relaxed);
}

/// Sets the start method that processes use unless they were given one with
/// [`Process::with_start_method`](crate::Process::with_start_method). Processes already
/// started are not affected. An error when the method cannot work in this program: Spawn
/// and ForkServer need to find the program's own code (they name functions by their offset
/// in it).
///
/// ```
/// use proc_core::{get_start_method, set_start_method, StartMethod};
///
/// set_start_method(StartMethod::Spawn)?;
/// assert_eq!(get_start_method(), StartMethod::Spawn);
/// # Ok::<(), proc_core::Error>(())
/// ```
pub fn set_start_method(method: StartMethod) -> Result<()> {
    check_usable(method)?;
    set_default(method);
    Ok(())
}

/// An error when `method` cannot work in this program: Spawn and ForkServer need to find
/// the program's own code (they name functions by their offset in it).
pub(crate) fn check_usable(method: StartMethod) -> Result<()> {
    if method != StartMethod::Fork {
        CodeAddress::of(code_address::anchor())?;
    }
    Ok(())
}

/// Every start method this platform supports, the default first, as Python's
/// `get_all_start_methods()`: on Linux all three, Fork (the default here, as in Python up
/// to 3.13) then Spawn and ForkServer. The order is the platform's; it does not follow
/// [`set_start_method`].
///
/// ```
/// use proc_core::{get_all_start_methods, StartMethod};
///
/// let methods = get_all_start_methods();
/// assert_eq!(methods[0], StartMethod::default());
/// assert!(methods.contains(&StartMethod::Spawn));
/// assert!(methods.contains(&StartMethod::ForkServer));
/// ```
pub fn get_all_start_methods() -> Vec<StartMethod> {
    let default = StartMethod::default();
    std::iter::once(default)
        .chain(StartMethod::ALL.into_iter().filter(|&m| m != default))
        .collect()
}

/// The start method in force: [`StartMethod::Fork`] unless changed by [`set_start_method`]
/// or by the `MULTIPROC_START_METHOD` environment variable read by [`init`](crate::init).
///
/// In a child started by multiproc it is the method that started the child, as under
/// Python's contexts: the child's own children start the same way, unless the child sets
/// another method.
///
/// ```
/// use proc_core::{Process, StartMethod, get_start_method};
///
/// /// Exits with the index of the method in force here.
/// fn exit_with_my_start_method() {
///     let index = StartMethod::ALL.iter().position(|&m| m == get_start_method());
///     proc_core::exit(index.map_or(-1, |i| i as i32));
/// }
///
/// let mut p = Process::target(exit_with_my_start_method, ()).with_start_method(StartMethod::Spawn);
/// p.start()?;
/// assert_eq!(p.join()?, 1, "the child was started by Spawn");
/// # Ok::<(), proc_core::Error>(())
/// ```
pub fn get_start_method() -> StartMethod {
    StartMethod::from_index(DEFAULT.load(Ordering::Relaxed))
}

/// The environment variable that [`init`](crate::init) reads to choose the start method
/// (`fork`, `spawn` or `forkserver`), so that one build can be run under each.
pub const START_METHOD_ENV: &str = "MULTIPROC_START_METHOD";

/// Applies `MULTIPROC_START_METHOD` when it is set; an unusable value is reported on stderr
/// and ignored.
pub(crate) fn apply_environment() {
    let Some(value) = std::env::var_os(START_METHOD_ENV) else {
        return;
    };
    let chosen = value
        .to_str()
        .ok_or_else(|| Error::UnknownStartMethod {
            given: value.to_string_lossy().into_owned(),
        })
        .and_then(str::parse)
        .and_then(set_start_method);
    if let Err(e) = chosen {
        eprintln!("multiproc: {START_METHOD_ENV} ignored: {e}");
    }
}
