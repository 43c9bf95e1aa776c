//! What the parent decided about a child before starting it: who the child is ([`Spec`])
//! and what it runs ([`Body`]).

use crate::start_method::StartMethod;

use super::target_call::TargetBody;

/// What a child runs.
pub(crate) enum Body {
    /// Any closure: only a forked child, a copy of the parent, can run it.
    Closure(Box<dyn FnOnce() + Send + 'static>),
    /// A function and its arguments: can also travel to a spawned or served child.
    Target(Box<dyn TargetBody>),
}

impl Body {
    /// Runs the body in this process (the forked child's way).
    pub(crate) fn run(self) {
        match self {
            Body::Closure(body) => body(),
            Body::Target(target) => target.run(),
        }
    }
}

/// What the parent decided about a child before starting it.
pub(crate) struct Spec<'a> {
    pub(crate) name: &'a str,
    pub(crate) identity: &'a [u64],
    pub(crate) daemon: bool,
    /// The method that starts it, which becomes the child's default: its own children
    /// start the same way unless it says otherwise, as under Python's contexts.
    pub(crate) method: StartMethod,
}
