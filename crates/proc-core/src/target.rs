//! [`Target`]: a function called with a tuple of arguments, as Python's
//! `Process(target=f, args=(a, b))`.

/// A function that can be the target of a process, called with its arguments as a tuple:
/// `fn(A)` with `(A,)`, `fn(A, B)` with `(A, B)`, … up to six arguments, and `fn()` with `()`.
/// What it returns is its [`Output`](Target::Output): dropped by a
/// [`Process`](crate::Process), handed back by [`spawn_target`](crate::spawn_target).
///
/// ```
/// use proc_core::Target;
///
/// fn add(a: u32, b: u32) -> u32 {
///     a + b
/// }
/// assert_eq!(add.call((2, 3)), 5);
/// ```
pub trait Target<Args>: Send + 'static {
    /// What the function returns.
    type Output;

    /// Calls the function with the arguments spread out.
    fn call(self, args: Args) -> Self::Output;
}

macro_rules! impl_target {
    ($($arg:ident),*) => {
        impl<Func, Out, $($arg),*> Target<($($arg,)*)> for Func
        where
            Func: FnOnce($($arg),*) -> Out + Send + 'static,
        {
            type Output = Out;

            #[allow(non_snake_case)]
            fn call(self, ($($arg,)*): ($($arg,)*)) -> Out {
                self($($arg),*)
            }
        }
    };
}

impl_target!();
impl_target!(A);
impl_target!(A, B);
impl_target!(A, B, C);
impl_target!(A, B, C, D);
impl_target!(A, B, C, D, E);
impl_target!(A, B, C, D, E, F);
