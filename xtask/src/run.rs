//! Running commands: cargo steps that stream their output, and programs whose output is
//! captured line by line with the time each line arrived.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    let xtask_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().map_or(xtask_dir.clone(), PathBuf::from)
}

/// `cargo`, as the one that runs this xtask (so that `+toolchain` is respected).
pub fn cargo() -> Command {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

/// Cargo's home: `$CARGO_HOME`, else `~/.cargo`.
pub fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
}

/// What `cargo metadata --no-deps` says of the workspace.
pub fn metadata() -> Result<serde_json::Value, String> {
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .map_err(|e| format!("could not run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata printed no JSON: {e}"))
}

/// Where cargo puts what it builds (`target/` unless configured otherwise).
pub fn target_directory() -> Result<PathBuf, String> {
    metadata()?["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata names no target_directory".to_string())
}

/// Runs a step with its output going straight to ours; an error names the step.
pub fn step(name: &str, mut command: Command) -> Result<(), String> {
    println!("\n==> {name}");
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|e| format!("{name}: could not run it: {e}"))?;
    if !status.success() {
        return Err(format!("{name}: failed ({status})"));
    }
    println!("==> {name}: ok in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// One line a program printed on stdout, and when it arrived (from the program's start).
#[derive(Debug, Clone)]
pub struct Line {
    pub at: Duration,
    pub text: String,
}

/// What a program did: its stdout lines, its stderr, how it exited and when.
#[derive(Debug)]
pub struct Captured {
    pub lines: Vec<Line>,
    pub stderr: String,
    pub status: ExitStatus,
    /// When the program itself exited (not when its last child closed stdout).
    pub exited_after: Duration,
}

/// Runs `program` with `args` and `env` added to its environment, stdin closed, and
/// captures everything. A program still running after `limit` is killed and reported as an
/// error.
pub fn capture(
    program: &PathBuf,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> Result<Captured, String> {
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", program.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let mut stderr = child.stderr.take().ok_or("no stderr pipe")?;

    let (line_tx, line_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for text in BufReader::new(stdout).lines() {
            let Ok(text) = text else { break };
            if line_tx
                .send(Line {
                    at: started.elapsed(),
                    text,
                })
                .is_err()
            {
                break;
            }
        }
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} still ran after {} s: killed",
                    program.display(),
                    limit.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => return Err(format!("waiting for {}: {e}", program.display())),
        }
    };
    let exited_after = started.elapsed();
    // Children that outlive the program keep the pipes open; give them the rest of the
    // limit, then stop reading without them.
    let deadline = started + limit;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match line_rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!(
                    "{}: a process it started still held stdout open after {} s",
                    program.display(),
                    limit.as_secs()
                ));
            }
        }
    }
    let _ = reader.join();
    let stderr = stderr_reader.join().unwrap_or_default();
    Ok(Captured {
        lines,
        stderr,
        status,
        exited_after,
    })
}
