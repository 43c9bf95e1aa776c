//! Contexts and the list of start methods (CPython's `test_context`,
//! `test_get_all_start_methods`), and `process_cpu_count()` (`test_process_cpu_count`),
//! under every start method.

#[macro_use]
mod common;

use proc_core::{
    Error, StartMethod, cpu_count, exit, get_all_start_methods, get_context, get_start_method,
    process_cpu_count,
};

use common::{Reporter, report_pipe};

every_start_method![
    a_context_starts_its_processes_with_its_method_and_leaves_the_default_alone,
    a_context_runs_closures_only_under_fork,
    process_cpu_count_follows_a_narrowed_affinity,
];

#[test]
fn every_start_method_is_listed_once_with_the_default_first() {
    let methods = get_all_start_methods();
    assert_eq!(methods.first(), Some(&StartMethod::default()));
    assert_eq!(methods.len(), StartMethod::ALL.len());
    for method in StartMethod::ALL {
        assert_eq!(
            methods.iter().filter(|&&m| m == method).count(),
            1,
            "{method}"
        );
    }
}

#[test]
fn process_cpu_count_is_between_one_and_cpu_count() {
    let n = process_cpu_count();
    assert!(n >= 1 && n <= cpu_count(), "{n} of {}", cpu_count());
}

/// Reports the method in force in the child, and that of its own context-less child.
fn report_method(reporter: Reporter) {
    reporter.send(&get_start_method());
}

fn a_context_starts_its_processes_with_its_method_and_leaves_the_default_alone(
    method: StartMethod,
) {
    let default = get_start_method();
    let ctx = get_context(method).unwrap();
    assert_eq!(ctx.start_method(), method);
    let (reports, reporter) = report_pipe();
    let mut p = ctx.process(report_method, (reporter,));
    assert_eq!(p.start_method(), method);
    p.start().unwrap();
    assert_eq!(
        reports.recv::<StartMethod>(),
        method,
        "the child was started by it"
    );
    assert_eq!(p.join().unwrap(), 0);
    assert_eq!(get_start_method(), default, "the default did not change");
    // A Copy value: the same context again.
    let again = ctx;
    assert_eq!(again, ctx);
}

fn a_context_runs_closures_only_under_fork(method: StartMethod) {
    let ctx = get_context(method).unwrap();
    let handle = ctx.spawn(|| 6 * 7);
    let mut p = ctx.process_closure(|| {});
    match method {
        StartMethod::Fork => {
            assert_eq!(handle.unwrap().join().unwrap(), 42);
            p.start().unwrap();
            assert_eq!(p.join().unwrap(), 0);
        }
        _ => {
            assert!(
                matches!(handle, Err(Error::ClosureNeedsFork { method: m, .. }) if m == method)
            );
            assert!(matches!(p.start(), Err(Error::ClosureNeedsFork { .. })));
        }
    }
}

/// Narrows this process's affinity to its first `cpus` allowed CPUs, and exits with what
/// `process_cpu_count()` says then (or 100 + the error).
fn narrow_then_count(cpus: usize) {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; size and pointer are those of `allowed`.
    if unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut allowed) } != 0 {
        exit(101);
    }
    // SAFETY: as above, an empty set.
    let mut narrowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let mut taken = 0;
    for cpu in 0..libc::CPU_SETSIZE as usize {
        // SAFETY: cpu < CPU_SETSIZE, within the sets.
        if taken < cpus && unsafe { libc::CPU_ISSET(cpu, &allowed) } {
            // SAFETY: as above.
            unsafe { libc::CPU_SET(cpu, &mut narrowed) };
            taken += 1;
        }
    }
    // SAFETY: pid 0 is this thread; size and pointer are those of `narrowed`.
    if unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &narrowed) } != 0 {
        exit(102);
    }
    exit(process_cpu_count() as i32);
}

fn process_cpu_count_follows_a_narrowed_affinity(method: StartMethod) {
    let here = process_cpu_count();
    let ctx = get_context(method).unwrap();
    let mut p = ctx.process(narrow_then_count, (1,));
    p.start().unwrap();
    assert_eq!(p.join().unwrap(), 1, "one CPU allowed, one counted");
    if here >= 2 {
        let mut p = ctx.process(narrow_then_count, (2,));
        p.start().unwrap();
        let counted = p.join().unwrap();
        assert!(
            (1..=2).contains(&counted),
            "two CPUs allowed, {counted} counted"
        );
    }
    assert_eq!(process_cpu_count(), here, "the child's affinity is its own");
}
