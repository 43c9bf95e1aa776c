//! The Rust peers, one module each, and the workloads each runs: those where it does the
//! job that benches/README.md defines (or, where it differs, the README says how).

mod interprocess;
mod ipc_channel;
mod ipmpsc;
mod procspawn;

use crate::shape::Workload;

/// Each peer's name (its crate's, and the `impl` of its JSON lines) and its workloads.
pub const ALL: &[(&str, &[(&str, Workload)])] = &[
    ("ipc-channel", ipc_channel::WORKLOADS),
    ("interprocess", interprocess::WORKLOADS),
    ("ipmpsc", ipmpsc::WORKLOADS),
    ("procspawn", procspawn::WORKLOADS),
];
