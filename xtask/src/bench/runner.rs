//! One run of one of the bench programs, in a process group of its own: a run that hangs
//! is ended after its time limit together with every process it started, so that nothing
//! of it is left behind (a child blocked forever on a futex, say) to skew the next runs.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a run printed, and how it ended.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `program args…` from `dir` with stdin closed, waiting at most `limit`.
pub fn run(program: &Path, args: &[&str], dir: &Path, limit: Duration) -> Result<Output, String> {
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", program.display()))?;
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                end_group(&mut child);
                return Err(format!(
                    "still ran after {} s: ended with every process it started",
                    limit.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                end_group(&mut child);
                return Err(format!("waiting for {}: {e}", program.display()));
            }
        }
    };
    // Whatever it left running would hold the pipes open (and the machine busy).
    end_group(&mut child);
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// SIGKILL to every process of the child's group, then the child reaped (if it was not).
fn end_group(child: &mut Child) {
    if let Ok(group) = libc::pid_t::try_from(child.id()) {
        // SAFETY: a signal to the process group this run was started in (its id is the
        // child's pid, which is not reused while the child is unreaped or the group has
        // members); failing with ESRCH when the group is empty is harmless.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    let _ = child.wait();
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_past_its_limit_is_ended_with_the_processes_it_started() {
        /// Only a hang guard: a correct run returns, and its processes go, in milliseconds.
        const WATCHDOG: Duration = Duration::from_secs(60);
        let marker = format!("xtask-runner-test-{}", std::process::id());
        // A grandchild, named so that it can be found, and bash waiting in the foreground;
        // both would outlive the watchdog many times over unless killed.
        let script = format!("(exec -a {marker} sleep 3600) & sleep 3600");
        let (sent, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sent.send(run(
                Path::new("bash"),
                &["-c", &script],
                Path::new("/"),
                Duration::from_millis(300),
            ));
        });
        let result = result
            .recv_timeout(WATCHDOG)
            .expect("run() did not return: the run was waited out, not ended");
        assert!(result.err().unwrap().contains("still ran after"));
        // The grandchild went with the group: nothing holds the pipes open. The SIGKILL is
        // sent before run() returns, but the grandchild (not run()'s to reap) may take a
        // moment to die; one that was not killed would run for an hour.
        let deadline = Instant::now() + WATCHDOG;
        loop {
            let left = Command::new("pgrep")
                .args(["-f", &marker])
                .output()
                .unwrap();
            if left.stdout.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "left running: {left:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_finished_run_gives_its_output_and_status() {
        let out = run(
            Path::new("bash"),
            &["-c", "echo out; echo err >&2; exit 3"],
            Path::new("/"),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str()),
            ("out\n", "err\n")
        );
        assert_eq!(out.status.code(), Some(3));
    }
}
