//! The Rust peers' side of the bench: `benches/peers` (`bench-peers`) runs each peer
//! (`bench-peers --peers` names them) as a program of its own, `bench-peers PEER …`, on the
//! workloads that peer lists. The peers are crates from outside, built here: a program that
//! does not build or start leaves their columns empty and says why, as Python's does
//! without `python3`.

use std::path::Path;

use super::report::Impl;
use super::workloads::Workload;
use super::{LIST_LIMIT, Program, runner, target_directory};
use crate::run::workspace_root;

/// The Rust peers' programs (`benches/peers`), one for each peer it names, each running the
/// workloads it lists; or why there are none, or fewer.
pub(super) struct Peers {
    pub(super) programs: Vec<Program>,
    /// What kept the peers (or some of them) out of the run, to say with the table.
    pub(super) missing: Option<String>,
}

/// The peers of `bench-peers`, built (or not: `unbuilt` says why), and their workloads. A
/// program that does not build or start (the peers are crates from outside, built on this
/// machine) leaves the peer columns empty, said, as Python's is without `python3`; only a
/// peer that lists a workload the table does not have is an error (a mistake in this
/// workspace).
pub(super) fn find(workloads: &[Workload], unbuilt: Option<String>) -> Result<Peers, String> {
    if let Some(why) = unbuilt {
        return Ok(Peers::none(format!("{why}: the peer columns stay empty")));
    }
    peers_of(
        &target_directory()?.join("release").join("bench-peers"),
        workloads,
    )
}

/// The peers that the program `command` (`bench-peers` as built) names, each as a program
/// that runs the workloads it lists, keeping those that run any of `workloads`.
fn peers_of(command: &Path, workloads: &[Workload]) -> Result<Peers, String> {
    let names = match runner::run(command, &["--peers"], &workspace_root(), LIST_LIMIT) {
        Ok(out) if out.status.success() => out.stdout,
        Ok(out) => {
            return Ok(Peers::none(format!(
                "bench-peers --peers failed ({}): {}: the peer columns stay empty",
                out.status,
                out.stderr.trim()
            )));
        }
        Err(why) => return Ok(Peers::none(format!("{why}: the peer columns stay empty"))),
    };
    let mut peers = Peers {
        programs: Vec::new(),
        missing: None,
    };
    let mut failed = Vec::new();
    for name in names.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let who = Impl::Peer(name.to_string());
        match Program::new(who, command.to_path_buf(), vec![name.to_string()]) {
            Ok(program) => {
                program.check_listed()?;
                // Only the workloads of this run: a peer with none of them stays out.
                if workloads.iter().any(|w| program.runs(&w.name)) {
                    peers.programs.push(program);
                }
            }
            Err(why) => failed.push(format!("{name}: {why}")),
        }
    }
    if !failed.is_empty() {
        peers.missing = Some(format!(
            "peers left out (their column stays empty):\n  {}",
            failed.join("\n  ")
        ));
    }
    Ok(peers)
}

impl Peers {
    fn none(why: String) -> Peers {
        Peers {
            programs: Vec::new(),
            missing: Some(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::workloads;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use std::time::Duration;

    /// A stand-in for `bench-peers`: a script that answers `--peers`, `PEER --list` and
    /// `PEER WORKLOAD COUNT` as `body` (cases of a bash `case "$*"`) says.
    struct FakePeers(PathBuf);

    impl FakePeers {
        fn new(test: &str, body: &str) -> FakePeers {
            let dir = std::env::temp_dir().join(format!("xtask-{test}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("bench-peers");
            let script = format!("#!/bin/bash\ncase \"$*\" in\n{body}\n*) exit 2 ;;\nesac\n");
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            // A child that another test's thread forked while the file was open for writing
            // holds it so until it execs, and the script cannot run then (ETXTBSY): wait for
            // the first run that starts.
            for _ in 0..500 {
                match std::process::Command::new(&path).output() {
                    Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    _ => break,
                }
            }
            FakePeers(path)
        }
    }

    impl Drop for FakePeers {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    fn workload(name: &str) -> Workload {
        workloads::all()
            .unwrap()
            .into_iter()
            .find(|w| w.name == name)
            .unwrap()
    }

    #[test]
    fn a_peers_program_that_cannot_start_leaves_the_peers_out_and_says_why() {
        let missing = Path::new("/nonexistent/bench-peers");
        let peers = peers_of(missing, &[workload("lock_uncontended")]).unwrap();
        assert!(peers.programs.is_empty());
        let why = peers.missing.unwrap();
        assert!(
            why.contains("could not start") && why.contains("stay empty"),
            "{why}"
        );
    }

    #[test]
    fn each_peer_runs_what_it_lists_and_one_that_fails_to_list_is_left_out_and_named() {
        let fake = FakePeers::new(
            "peers-list",
            "--peers) printf 'alpha\\nbeta\\ngamma\\n' ;;\n\
             'alpha --list') echo lock_uncontended ;;\n\
             'beta --list') echo 'beta is broken' >&2; exit 1 ;;\n\
             'gamma --list') echo pool_map ;;",
        );
        let peers = peers_of(&fake.0, &[workload("lock_uncontended")]).unwrap();
        let names: Vec<&str> = peers.programs.iter().map(|p| p.who.name()).collect();
        // gamma runs none of this run's workloads: it stays out without a word.
        assert_eq!(names, ["alpha"]);
        assert!(peers.programs[0].runs("lock_uncontended"));
        assert_eq!(peers.programs[0].args, ["alpha"]);
        let why = peers.missing.unwrap();
        assert!(
            why.contains("beta") && why.contains("beta is broken"),
            "{why}"
        );
        assert!(!why.contains("gamma"), "{why}");
    }

    #[test]
    fn a_peer_that_lists_a_workload_the_table_does_not_have_is_an_error() {
        let fake = FakePeers::new(
            "peers-unknown",
            "--peers) echo delta ;;\n'delta --list') echo no_such_workload ;;",
        );
        let error = peers_of(&fake.0, &[workload("lock_uncontended")])
            .err()
            .unwrap();
        assert!(error.contains("delta runs no_such_workload"), "{error}");
    }

    #[test]
    fn a_peer_run_is_checked_as_any_other_and_a_wrong_result_fails() {
        let line = |who: &str, count: u64| {
            format!(
                "echo '{{\"workload\": \"lock_uncontended\", \"impl\": \"{who}\", \"count\": {count}, \"seconds\": 0.00001}}'"
            )
        };
        let fake = FakePeers::new(
            "peers-run",
            &format!(
                "--peers) echo alpha ;;\n\
                 'alpha --list') echo lock_uncontended ;;\n\
                 'alpha lock_uncontended 10') {} ;;\n\
                 'alpha lock_uncontended 11') {} ;;\n\
                 'alpha lock_uncontended 12') {} ;;",
                line("alpha", 10),
                line("beta", 11),
                line("alpha", 3),
            ),
        );
        let peers = peers_of(&fake.0, &[workload("lock_uncontended")]).unwrap();
        let alpha = &peers.programs[0];
        let lock = workload("lock_uncontended");
        let limit = Duration::from_secs(60);
        // 10 µs for 10 pairs: 1000 ns a pair.
        assert_eq!(alpha.run_once(&lock, 10, limit), Ok(1000.0));
        for (count, wrong) in [
            (11, "\"impl\": \"beta\""),
            (12, "\"count\": 3"),
            (13, "failed"),
        ] {
            let error = alpha.run_once(&lock, count, limit).unwrap_err();
            assert!(error.contains(wrong), "{count}: {error}");
        }
    }
}
