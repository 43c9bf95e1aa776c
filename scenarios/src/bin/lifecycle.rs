//! One process-lifecycle scenario per run, named by the first argument. The tests of this
//! package run it as a fresh, single-threaded parent whose stdout and stderr they read.

use std::io::Write;
use std::time::Duration;

use multiproc::prelude::*;

fn main() -> multiproc::Result<()> {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    match scenario.as_str() {
        // Text without a newline, buffered before start(), must print once; the child's
        // text without a newline must not be lost.
        "output" => {
            print!("parent-before ");
            let mut p = Process::new(|| print!("child-no-newline"));
            p.start()?;
            p.join()?;
            println!(" parent-after");
        }
        // Default names, numbered per parent; a child's own child is Process-N:M.
        "names" => {
            println!("main: {}", current_process().name());
            let mut first = Process::new(|| {
                let me = current_process();
                println!("child: {} daemon={}", me.name(), me.is_daemon());
                let mut grandchild =
                    Process::new(|| println!("grandchild: {}", current_process().name()));
                grandchild.start().expect("start grandchild");
                grandchild.join().expect("join grandchild");
            });
            let second = Process::new(|| {});
            println!("handles: {} {}", first.name(), second.name());
            first.start()?;
            first.join()?;
        }
        // With "threads" a second thread runs while two children are forked.
        "fork-warning" => {
            let threaded = std::env::args().nth(2).as_deref() == Some("threads");
            let (stop, parked) = std::sync::mpsc::channel::<()>();
            let helper = threaded.then(|| std::thread::spawn(move || parked.recv()));
            for _ in 0..2 {
                let mut p = Process::new(|| {});
                p.start()?;
                p.join()?;
            }
            drop(stop);
            if let Some(helper) = helper {
                let _ = helper.join();
            }
            println!("forked twice");
        }
        // main returns without joining: the daemon is terminated, the other child joined.
        "exit-routine" => {
            // The daemon says when it runs, so that main does not end it before it has.
            let (mut ready_rx, mut ready_tx) = std::io::pipe().expect("pipe");
            let mut daemon = Process::new(move || {
                println!("daemon pid {}", current_process().pid());
                let _ = std::io::stdout().flush();
                let _ = ready_tx.write_all(b"r");
                std::thread::sleep(Duration::from_secs(30));
                println!("daemon died normally");
            })
            .with_daemon(true);
            daemon.start()?;
            let mut ready = [0u8; 1];
            std::io::Read::read_exact(&mut ready_rx, &mut ready).expect("daemon ready");
            let mut worker = Process::new(|| {
                std::thread::sleep(Duration::from_millis(300));
                println!("worker done");
            });
            worker.start()?;
            println!("main returns");
        }
        // The parent is SIGKILLed by the test: its daemon must die too, even one started
        // from a thread that has already ended (PR_SET_PDEATHSIG would get that wrong).
        "parent-killed" => {
            let starter = std::thread::spawn(|| {
                let mut daemon =
                    Process::new(|| std::thread::sleep(Duration::from_secs(60))).with_daemon(true);
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
            let mut p = Process::new(|| panic!("the child gave up: code {}", 7));
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
