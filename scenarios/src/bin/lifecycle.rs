//! One process-lifecycle scenario per run, named by the first argument. The tests of this
//! package run it as a fresh, single-threaded parent whose stdout and stderr they read, once
//! per start method: the method comes from `MULTIPROC_START_METHOD`, which multiproc applies
//! before `main`. So every child here runs a target (a function and its arguments), which
//! every start method can run.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::time::Duration;

use multiproc::prelude::*;
use multiproc::proc_core::internal::handle_wire::Descriptor;
use serde::{Deserialize, Serialize};

/// The write end of a pipe, as an argument of a target: inherited by a forked child, sent
/// with the task of a spawned or served one.
#[derive(Serialize, Deserialize)]
struct Signal(Descriptor);

impl Signal {
    fn give(self) {
        let _ = std::fs::File::from(OwnedFd::from(self.0)).write_all(b"r");
    }
}

fn print_without_newline() {
    print!("child-no-newline");
}

fn names_child() {
    let me = current_process();
    println!("child: {} daemon={}", me.name(), me.is_daemon());
    let mut grandchild = Process::target(names_grandchild, ());
    grandchild.start().expect("start grandchild");
    grandchild.join().expect("join grandchild");
}

fn names_grandchild() {
    println!("grandchild: {}", current_process().name());
}

fn nothing() {}

fn daemon_until_killed(ready: Signal) {
    println!("daemon pid {}", current_process().pid());
    let _ = std::io::stdout().flush();
    ready.give();
    std::thread::sleep(Duration::from_secs(30));
    println!("daemon died normally");
}

fn worker() {
    std::thread::sleep(Duration::from_millis(300));
    println!("worker done");
}

fn sleep_a_minute() {
    std::thread::sleep(Duration::from_secs(60));
}

fn give_up(code: u32) {
    panic!("the child gave up: code {code}");
}

fn say_on_both(name: String) {
    println!("{name} on stdout");
    eprintln!("{name} on stderr");
}

fn main() -> multiproc::Result<()> {
    multiproc::init();
    let scenario = std::env::args().nth(1).unwrap_or_default();
    match scenario.as_str() {
        // Text without a newline, buffered before start(), must print once; the child's
        // text without a newline must not be lost.
        "output" => {
            print!("parent-before ");
            let mut p = Process::target(print_without_newline, ());
            p.start()?;
            p.join()?;
            println!(" parent-after");
        }
        // A child writes to the stdout and stderr it got from its parent.
        "stdio" => {
            println!("method {}", multiproc::get_start_method());
            let mut p = Process::target(say_on_both, ("the child".to_string(),));
            p.start()?;
            p.join()?;
            println!("parent after join");
        }
        // Default names, numbered per parent; a child's own child is Process-N:M.
        "names" => {
            println!("main: {}", current_process().name());
            let mut first = Process::target(names_child, ());
            let second = Process::target(nothing, ());
            println!("handles: {} {}", first.name(), second.name());
            first.start()?;
            first.join()?;
        }
        // With "threads" a second thread runs while two children are started.
        "fork-warning" => {
            let threaded = std::env::args().nth(2).as_deref() == Some("threads");
            let (stop, parked) = std::sync::mpsc::channel::<()>();
            let helper = threaded.then(|| std::thread::spawn(move || parked.recv()));
            for _ in 0..2 {
                let mut p = Process::target(nothing, ());
                p.start()?;
                p.join()?;
            }
            drop(stop);
            if let Some(helper) = helper {
                let _ = helper.join();
            }
            println!("started twice");
        }
        // main returns without joining: the daemon is terminated, the other child joined.
        "exit-routine" => {
            // The daemon says when it runs, so that main does not end it before it has.
            let (mut ready_rx, ready_tx) = std::io::pipe().expect("pipe");
            let mut daemon = Process::target(
                daemon_until_killed,
                (Signal(OwnedFd::from(ready_tx).into()),),
            )
            .with_daemon(true);
            daemon.start()?;
            let mut ready = [0u8; 1];
            std::io::Read::read_exact(&mut ready_rx, &mut ready).expect("daemon ready");
            // A test that watches the daemon says when it has it in sight (a byte on stdin;
            // end of file when nobody watches).
            let _ = std::io::Read::read(&mut std::io::stdin(), &mut ready);
            let mut worker = Process::target(worker, ());
            worker.start()?;
            println!("main returns");
        }
        // The parent is SIGKILLed by the test: its daemon must die too, even one started
        // from a thread that has already ended (PR_SET_PDEATHSIG would get that wrong).
        "parent-killed" => {
            let starter = std::thread::spawn(|| {
                let mut daemon = Process::target(sleep_a_minute, ()).with_daemon(true);
                daemon.start().map(|()| daemon)
            });
            let daemon = starter.join().expect("starter thread")?;
            // The starting thread is gone; the daemon must still be alive.
            std::thread::sleep(Duration::from_millis(200));
            println!(
                "daemon {} alive={}",
                daemon.pid().unwrap_or(0),
                daemon.is_alive()
            );
            let _ = std::io::stdout().flush();
            std::thread::sleep(Duration::from_secs(60));
        }
        // A panicking child: its message goes to its stderr, its exit code is 1, and the
        // parent goes on.
        "panic" => {
            let mut p = Process::target(give_up, (7,));
            p.start()?;
            println!("exit code {}", p.join()?);
        }
        other => {
            eprintln!("unknown scenario {other:?}");
            std::process::exit(2);
        }
    }
    Ok(())
}
