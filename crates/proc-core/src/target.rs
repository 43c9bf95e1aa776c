//! [`Target`]: a function called with a tuple of arguments, as Python's
//! `Process(target=f, args=(a, b))`.

/// A function that can be the target of a process, called with its arguments as a tuple:
/// `fn(A)` with `(A,)`, `fn(A, B)` with `(A, B)`, … up to six arguments, and `fn()` with `()`.
///
/// ```
/// use proc_core::Target;
///
/// fn add(a: u32, b: u32) {
///     assert_eq!(a + b, 5);
/// }
/// add.call((2, 3));
/// ```
pub trait Target<Args>: Send + 'static {
    /// Calls the function with the arguments spread out.
    fn call(self, args: Args);
}

macro_rules! impl_target {
    ($($arg:ident),*) => {
        impl<Func, $($arg),*> Target<($($arg,)*)> for Func
        where
            Func: FnOnce($($arg),*) + Send + 'static,
        {
            #[allow(non_snake_case)]
            fn call(self, ($($arg,)*): ($($arg,)*)) {
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
