//! `cargo xtask examples [--start-method fork|spawn|forkserver]`: build every example, run
//! it under the start method (default fork, given to the examples as
//! `MULTIPROC_START_METHOD`), check its story.
//!
//! [`CHECKS`] holds one entry per run of an example: its arguments and a function that
//! reads what it printed. Every example that cargo builds must have at least one entry, so a
//! new example cannot go unchecked. Every run must exit with status 0 and print nothing on
//! stderr (a warning there is a finding), unless its entry says otherwise. Every example
//! runs under every start method.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::run::{self, Captured, Line};

/// How long one example may run before it is killed and reported.
const LIMIT: Duration = Duration::from_secs(120);

/// The start methods, by the names `MULTIPROC_START_METHOD` takes.
const START_METHODS: [&str; 3] = ["fork", "spawn", "forkserver"];

/// The environment variable through which the examples get the start method.
const START_METHOD_ENV: &str = "MULTIPROC_START_METHOD";

/// One run of an example and what its output must show.
struct Check {
    example: &'static str,
    args: &'static [&'static str],
    /// The behaviour shown, as the table of the seed tour states it.
    shows: &'static str,
    verify: fn(&Captured) -> Result<(), String>,
}

const CHECKS: &[Check] = &[
    Check {
        example: "01_start_process",
        args: &[],
        shows: "start() returns at once: main's line long before the child is done ~3 s \
                later; the program waits for the child",
        verify: |out| {
            // From the fork on, main and the child run in parallel, so whether main's line
            // or the child's first line comes first is a race (main wins nearly always:
            // 296 of 300 runs on a 2-core machine). What start() guarantees, and what the
            // tutorial means, is that main does not wait for the child.
            out.expect_order(&["主 (main) started Process-1", "小王 is done"])?;
            out.expect_order(&["小王 is running", "小王 is done"])?;
            expect_between("main's line", out.line("主 (main)")?.at, 0.0, 1.0)?;
            let running = out.line("小王 is running")?;
            let done = out.line("小王 is done")?;
            expect_between("time from running to done", done.at - running.at, 2.5, 5.0)?;
            // Had main not joined its child at exit, it would have ended at once.
            expect_between(
                "main's exit, waiting for the child",
                out.exited_after,
                2.5,
                10.0,
            )
        },
    },
    Check {
        example: "02_join",
        args: &[],
        shows: "3 children sleeping 1, 2, 3 s joined after ≈3 s (the max), not 6 s (the sum)",
        verify: |out| {
            for i in 1..=3 {
                out.line(&format!("小王{i} is running"))?;
            }
            out.expect_order(&[
                "小王1 is done",
                "小王2 is done",
                "小王3 is done",
                "主 (main)",
            ])?;
            let last = out.last_line()?;
            let seconds: f64 = number_after(&last.text, "after ")?;
            expect_between(
                "elapsed time printed by main",
                Duration::from_secs_f64(seconds),
                2.9,
                4.5,
            )
        },
    },
    Check {
        example: "03_memory_isolation",
        args: &[],
        shows: "the child sets its n to 0; the parent still prints 100",
        verify: |out| out.expect_order(&["child: n = 0", "main: n = 100"]),
    },
    Check {
        example: "04_pid",
        args: &[],
        shows: "the child's pid differs from main's; both printed",
        verify: |out| {
            // main's line and the child's first line race (see 01_start_process).
            out.expect_order(&["主 (main) ", " is done"])?;
            out.expect_order(&[" is running", " is done"])?;
            let main_pid: u32 = number_after(&out.line("主 (main) ")?.text, "主 (main) ")?;
            let running = out.line(" is running")?;
            let child_pid: u32 = leading_number(&running.text)?;
            let done_pid: u32 = leading_number(&out.line(" is done")?.text)?;
            if child_pid == main_pid || done_pid != child_pid {
                return Err(format!(
                    "expected one child pid different from main's {main_pid}, got {child_pid} and {done_pid}"
                ));
            }
            Ok(())
        },
    },
    Check {
        example: "05_parent_pid",
        args: &[],
        shows: "the child's parent pid is main's pid",
        verify: |out| {
            let main = out.line("主 (main) ")?;
            let main_pid: u32 = number_after(&main.text, "主 (main) ")?;
            for needle in [" is running, parent is ", " is done, parent is "] {
                let line = out.line(needle)?;
                let child_pid: u32 = leading_number(&line.text)?;
                let parent: u32 = number_after(&line.text, "parent is ")?;
                if parent != main_pid || child_pid == main_pid {
                    return Err(format!(
                        "child {child_pid} reports parent {parent}; main is {main_pid}"
                    ));
                }
            }
            Ok(())
        },
    },
    Check {
        example: "06_name_terminate_is_alive",
        args: &[],
        shows: "default name Process-1; dead within 0.1 s of terminate; exit code -15",
        verify: |out| {
            out.expect_order(&[
                "name: Process-1",
                "is_alive: false",
                "exitcode: -15",
                "主 (main)",
            ])?;
            out.expect_absent(" is done")?;
            expect_between(
                "run time (the child would sleep 30 s)",
                out.exited_after,
                0.0,
                10.0,
            )
        },
    },
    Check {
        example: "07_daemon",
        args: &[],
        shows: "the daemon never prints its natural death: it ends with main after 1 s",
        verify: |out| {
            out.expect_order(&[
                "老太监 (the old eunuch) is alive",
                "皇帝 (the emperor) is dying",
            ])?;
            out.expect_absent("died a natural death")?;
            expect_between(
                "run time (main sleeps 1 s, the daemon 3 s)",
                out.exited_after,
                0.9,
                2.5,
            )
        },
    },
    Check {
        example: "08_ticket_booking",
        args: &[],
        shows: "1 ticket, 10 buyers searching at once, buying under a Lock: exactly one \
                succeeds and the file ends at 0",
        verify: |out| verify_tickets(out, 1, 10, true),
    },
    Check {
        example: "08_ticket_booking",
        args: &["--tickets", "3", "--buyers", "5"],
        shows: "3 tickets, 5 buyers, with the Lock: min(tickets, buyers) succeed and the \
                count goes down by exactly that",
        verify: |out| verify_tickets(out, 3, 5, true),
    },
    Check {
        example: "08_ticket_booking",
        args: &["--tickets", "10", "--buyers", "12", "--no-lock"],
        shows: "without the Lock, read-modify-writes overlap: more buyers succeed than the \
                count went down by (lost updates, oversold tickets)",
        verify: |out| verify_tickets(out, 10, 12, false),
    },
    Check {
        example: "shared_memory_python",
        args: &[],
        shows: "Rust makes a named block and a ShareableList; Python (or, without python3, a \
                child) opens both by name, reads them and writes back; Rust sees its writes",
        verify: |out| {
            out.line("rust made psm_")?;
            let python = out.expect_order(&[
                "python sees [41, 0.5, 'rust..'] and 'hello from'",
                r#"rust sees [Int(42), Float(0.5), Str("python")] and "hello frompython""#,
            ]);
            let child = || {
                out.expect_order(&[
                    "(python3 not found: a child process plays its part)",
                    r#"a child sees [Int(41), Float(0.5), Str("rust..")] and "hello from""#,
                    r#"rust sees [Int(42), Float(0.5), Str("child!")] and "hello fromchild!""#,
                ])
            };
            python.or_else(|_| child())
        },
    },
    Check {
        example: "shared_counter",
        args: &[],
        shows: "4 processes each add 10000 to a Value<u64> under its lock: no update is lost",
        verify: |out| {
            for i in 1..=4 {
                out.line(&format!("Process-{i} (pid "))?;
            }
            let last = out.last_line()?;
            let total: u64 = number_after(&last.text, "total=")?;
            let expected: u64 = number_after(&last.text, "expected=")?;
            if total != expected || expected != 40_000 {
                return Err(format!("total {total}, expected {expected} (4 x 10000)"));
            }
            Ok(())
        },
    },
    Check {
        example: "09_queue",
        args: &[],
        shows: "Queue(3): FIFO; a 4th put times out Full, a 4th get times out Empty; a child's \
                items reach main in order",
        verify: |out| {
            out.expect_order(&[
                "the basket is full): 3 of 3 items",
                "4th put: still full after 500ms, handed back Text(\"d\")",
                "get: Text(\"a\")",
                "get: Text(\"b\")",
                "get: Dict({\"x\": 2})",
                "the queue is empty",
                "4th get: still empty after 500ms",
            ])?;
            let from_child: Vec<&str> = out
                .lines
                .iter()
                .filter(|l| l.text.starts_with("main got: "))
                .map(|l| l.text.as_str())
                .collect();
            let expected: Vec<String> = (1..=5)
                .map(|i| format!("main got: Text(\"message {i} from the child\")"))
                .collect();
            if from_child != expected {
                return Err(format!("items from the child: {from_child:?}"));
            }
            // The timed-out put and get each waited their 0.5 s, no less, as the example
            // measured it (the lines' arrival times here also carry this reader's delays).
            for call in ["4th put", "4th get"] {
                let waited: f64 = number_after(&out.line(call)?.text, "(waited ")?;
                expect_between(
                    &format!("the timed-out {call}"),
                    Duration::from_secs_f64(waited),
                    0.5,
                    3.0,
                )?;
            }
            Ok(())
        },
    },
    Check {
        example: "10_producer_consumer",
        args: &[],
        shows: "the helper: 小王 and 小周 each make 10 dishes, 小戴 and 小杨 eat all 20 exactly \
                once, task_done is the helper's; main's 主 comes after everything",
        verify: |out| {
            verify_dishes(out)?;
            out.expect_order(&["produced 20, eaten 20, unfinished 0, failures 0", "主"])
        },
    },
    Check {
        example: "10_joinable_queue",
        args: &[],
        shows: "a bare JoinableQueue and daemon consumers: all 20 dishes eaten exactly once \
                before q.join() returns and main prints 主; the daemons end with main",
        verify: verify_dishes,
    },
    Check {
        example: "pool",
        args: &[],
        shows: "a Pool maps a CPU-bound function over 400 blocks: the same results as one \
                process (map in order, imap_unordered as a set), with both timings printed",
        verify: |out| {
            out.expect_order(&[
                "one process: 400 blocks in ",
                "(imap_unordered): 400 blocks in ",
                "(map): 400 blocks in ",
                "speed-up of the pool: ",
                "results match: true (map in order: true, imap_unordered as a set: true)",
                "total steps: 899766400",
            ])?;
            // Printed, not judged: another load on the machine may take the CPUs.
            let seconds: f64 = number_after(&out.line("one process: ")?.text, "blocks in ")?;
            let pooled: f64 = number_after(&out.line("(imap_unordered)")?.text, "blocks in ")?;
            if seconds <= 0.0 || pooled <= 0.0 {
                return Err(format!("timings not positive: {seconds} and {pooled}"));
            }
            Ok(())
        },
    },
];

/// Seed tour 10: each cook's 10 dishes made once, all 20 eaten exactly once (by 小戴 or
/// 小杨), and main's `主` as the very last line, after every dish was eaten.
fn verify_dishes(out: &Captured) -> Result<(), String> {
    let mut expected = Vec::new();
    for (cook, food) in [("小王", "包子"), ("小周", "土豆丝")] {
        for i in 0..10 {
            let made = format!("厨师{cook}生成了{food}{i}");
            let times = out.lines.iter().filter(|l| l.text == made).count();
            if times != 1 {
                return Err(format!("{made:?} printed {times} times, expected once"));
            }
            expected.push(format!("{food}{i}"));
        }
    }
    let mut eaten: Vec<String> = out
        .lines
        .iter()
        .filter_map(|l| {
            let rest = l.text.strip_prefix("吃货")?;
            let (eater, dish) = rest.split_once("吃了")?;
            ["小戴", "小杨"].contains(&eater).then(|| dish.to_string())
        })
        .collect();
    eaten.sort();
    expected.sort();
    if eaten != expected {
        return Err(format!(
            "eaten {eaten:?}, expected each of {expected:?} once"
        ));
    }
    let last = out.last_line()?;
    if last.text != "主" {
        return Err(format!("the last line is {:?}, expected 主", last.text));
    }
    Ok(())
}

pub fn run(options: &Options) -> Result<(), String> {
    let method = options.start_method.as_str();
    println!("==> examples under the {method} start method ({START_METHOD_ENV}={method})");
    let built = build_examples()?;
    for name in built.keys() {
        if !CHECKS.iter().any(|c| c.example == name) {
            return Err(format!(
                "example {name} has no check: add one to CHECKS in xtask/src/examples.rs"
            ));
        }
    }
    let mut failures = Vec::new();
    for check in CHECKS {
        let Some(program) = built.get(check.example) else {
            return Err(format!(
                "a check names example {}, which cargo did not build",
                check.example
            ));
        };
        let label = if check.args.is_empty() {
            check.example.to_string()
        } else {
            format!("{} {}", check.example, check.args.join(" "))
        };
        println!("\n--- {label}: {}", check.shows);
        let started = Instant::now();
        let env = [(START_METHOD_ENV, method)];
        let result = run::capture(program, check.args, &env, LIMIT).and_then(|out| {
            for line in &out.lines {
                println!("  [{:>6.2} s] {}", line.at.as_secs_f64(), line.text);
            }
            if !out.stderr.is_empty() {
                println!("  stderr: {}", out.stderr.trim_end());
            }
            if !out.status.success() {
                return Err(format!("exited with {}", out.status));
            }
            if !out.stderr.is_empty() {
                return Err("printed on stderr".to_string());
            }
            verify_start_method(check, &out, method)?;
            (check.verify)(&out)
        });
        match result {
            Ok(()) => println!("--- {label}: ok ({:.2} s)", started.elapsed().as_secs_f64()),
            Err(why) => {
                println!("--- {label}: FAILED: {why}");
                failures.push(format!("{label}: {why}"));
            }
        }
    }
    println!();
    let ran = CHECKS.len();
    if failures.is_empty() {
        println!("examples: {ran} runs under {method}, all as the seed tour tells");
        Ok(())
    } else {
        Err(format!(
            "{} of {ran} example runs under {method} failed:\n  {}",
            failures.len(),
            failures.join("\n  ")
        ))
    }
}

/// `cargo xtask examples`'s command line.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The start method the examples run under (given to them as MULTIPROC_START_METHOD).
    #[arg(long, default_value = "fork", value_parser = START_METHODS)]
    start_method: String,
}

impl Options {
    /// The examples under `method`, one of [`START_METHODS`].
    pub fn under(method: &str) -> Options {
        Options {
            start_method: method.to_string(),
        }
    }
}

/// An example that prints the start method in force (`start method: NAME`) must print the
/// one it was run under: proof that the option reached it. The first example must print it.
fn verify_start_method(check: &Check, out: &Captured, method: &str) -> Result<(), String> {
    let printed: Vec<&str> = out
        .lines
        .iter()
        .filter_map(|l| {
            let after = l.text.split_once("start method: ")?.1;
            after.split(|c: char| !c.is_ascii_alphanumeric()).next()
        })
        .collect();
    if printed.is_empty() && check.example == "01_start_process" {
        return Err("it does not say which start method it runs under".to_string());
    }
    match printed.iter().find(|&&p| p != method) {
        Some(other) => Err(format!(
            "run under {method}, it says \"start method: {other}\""
        )),
        None => Ok(()),
    }
}

/// Builds every example of the workspace; returns each one's executable by name.
fn build_examples() -> Result<BTreeMap<String, PathBuf>, String> {
    println!("==> cargo build --workspace --examples");
    let mut child = run::cargo()
        .args([
            "build",
            "--workspace",
            "--examples",
            "--message-format=json-render-diagnostics",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run cargo build: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout from cargo")?;
    let mut built = BTreeMap::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let is_example = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "example"));
        if let (true, Some(name), Some(executable)) = (
            is_example,
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) {
            built.insert(name.to_string(), PathBuf::from(executable));
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build of the examples failed ({status})"));
    }
    Ok(built)
}

impl Captured {
    /// The first line containing `needle`.
    fn line(&self, needle: &str) -> Result<&Line, String> {
        self.lines
            .iter()
            .find(|l| l.text.contains(needle))
            .ok_or_else(|| format!("no line contains {needle:?}"))
    }

    fn last_line(&self) -> Result<&Line, String> {
        self.lines
            .last()
            .ok_or_else(|| "printed nothing".to_string())
    }

    /// Lines containing each needle appear, in this order.
    fn expect_order(&self, needles: &[&str]) -> Result<(), String> {
        let mut from = 0;
        for needle in needles {
            let Some(found) = self.lines[from..]
                .iter()
                .position(|l| l.text.contains(needle))
            else {
                return Err(format!(
                    "expected a line containing {needle:?} after line {from} (order: {needles:?})"
                ));
            };
            from += found + 1;
        }
        Ok(())
    }

    fn expect_absent(&self, needle: &str) -> Result<(), String> {
        match self.lines.iter().find(|l| l.text.contains(needle)) {
            Some(line) => Err(format!("unexpected line {:?}", line.text)),
            None => Ok(()),
        }
    }
}

/// The ticket booking story (seed tour 8), from the example's lines and its last line,
/// `summary: tickets=T buyers=B successes=S remaining=R lock=L`.
fn verify_tickets(out: &Captured, tickets: u32, buyers: u32, locked: bool) -> Result<(), String> {
    let summary = out.last_line()?;
    if !summary.text.starts_with("summary: ") {
        return Err(format!(
            "the last line is not the summary: {:?}",
            summary.text
        ));
    }
    let field = |name: &str| number_after::<u32>(&summary.text, &format!("{name}="));
    let (successes, remaining) = (field("successes")?, field("remaining")?);
    if field("tickets")? != tickets || field("buyers")? != buyers {
        return Err(format!(
            "the summary does not echo the options: {:?}",
            summary.text
        ));
    }
    if !summary.text.ends_with(&format!("lock={locked}")) {
        return Err(format!("expected lock={locked}: {:?}", summary.text));
    }
    let count = |needle: &str| out.lines.iter().filter(|l| l.text.contains(needle)).count();
    if count(" ticket(s) left") != buyers as usize {
        return Err(format!("expected {buyers} searches, one per buyer"));
    }
    if count(" bought a ticket") != successes as usize
        || count(" found no ticket left") != (buyers - successes.min(buyers)) as usize
    {
        return Err("the buyers' lines do not add up to the summary".to_string());
    }
    if remaining > tickets {
        return Err(format!("{remaining} tickets remain of {tickets}"));
    }
    if locked {
        if successes != tickets.min(buyers) || remaining != tickets - successes {
            return Err(format!(
                "with the lock, expected {} successes and {} remaining; got {successes} and {remaining}",
                tickets.min(buyers),
                tickets - tickets.min(buyers)
            ));
        }
    } else if successes <= tickets - remaining {
        return Err(format!(
            "without the lock, expected lost updates (successes > tickets sold); got \
             {successes} successes for {} tickets sold",
            tickets - remaining
        ));
    }
    Ok(())
}

fn expect_between(what: &str, value: Duration, min_s: f64, max_s: f64) -> Result<(), String> {
    let seconds = value.as_secs_f64();
    if (min_s..=max_s).contains(&seconds) {
        Ok(())
    } else {
        Err(format!(
            "{what}: {seconds:.2} s, expected between {min_s} and {max_s} s"
        ))
    }
}

/// The number that follows `prefix` in `text` (up to the next character that cannot be
/// part of it).
fn number_after<T: std::str::FromStr>(text: &str, prefix: &str) -> Result<T, String> {
    let start = text
        .find(prefix)
        .map(|i| i + prefix.len())
        .ok_or_else(|| format!("{text:?} does not contain {prefix:?}"))?;
    parse_number(&text[start..])
}

/// The number at the start of `text`.
fn leading_number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    parse_number(text)
}

fn parse_number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(text.len());
    text[..end]
        .parse()
        .map_err(|_| format!("expected a number at the start of {text:?}"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;

    fn captured(lines: &[(f64, &str)], exited_after: f64) -> Captured {
        Captured {
            lines: lines
                .iter()
                .map(|&(at, text)| Line {
                    at: Duration::from_secs_f64(at),
                    text: text.to_string(),
                })
                .collect(),
            stderr: String::new(),
            status: ExitStatus::from_raw(0),
            exited_after: Duration::from_secs_f64(exited_after),
        }
    }

    #[test]
    fn every_check_fails_on_a_program_that_printed_nothing() {
        for check in CHECKS {
            assert!(
                (check.verify)(&captured(&[], 0.0)).is_err(),
                "the check of {} passes on empty output",
                check.example
            );
        }
    }

    #[test]
    fn order_is_checked_line_after_line() {
        let out = captured(&[(0.0, "a"), (0.1, "b"), (0.2, "c")], 0.3);
        assert!(out.expect_order(&["a", "c"]).is_ok());
        assert!(out.expect_order(&["c", "a"]).is_err());
        assert!(out.expect_order(&["a", "a"]).is_err());
    }

    #[test]
    fn join_check_refuses_the_sum_of_the_sleeps() {
        let mut lines = vec![
            (0.0, "小王1 is running"),
            (0.0, "小王2 is running"),
            (0.0, "小王3 is running"),
            (1.0, "小王1 is done"),
            (3.0, "小王2 is done"),
            (6.0, "小王3 is done"),
        ];
        let check = CHECKS.iter().find(|c| c.example == "02_join").unwrap();
        lines.push((
            6.0,
            "主 (main) joined all 3 after 6.01 s (the longest child, not the sum)",
        ));
        assert!((check.verify)(&captured(&lines, 6.0)).is_err());
        lines.pop();
        lines.push((
            3.0,
            "主 (main) joined all 3 after 3.01 s (the longest child, not the sum)",
        ));
        assert!((check.verify)(&captured(&lines, 3.0)).is_ok());
    }

    #[test]
    fn daemon_check_refuses_a_daemon_that_outlived_main() {
        let check = CHECKS.iter().find(|c| c.example == "07_daemon").unwrap();
        let lines = [
            (0.0, "老太监 (the old eunuch) is alive"),
            (1.0, "皇帝 (the emperor) is dying"),
            (3.0, "老太监 (the old eunuch) died a natural death"),
        ];
        assert!((check.verify)(&captured(&lines, 3.0)).is_err());
        assert!((check.verify)(&captured(&lines[..2], 1.0)).is_ok());
    }

    #[test]
    fn ticket_checks_refuse_oversold_locked_runs_and_unbroken_unlocked_runs() {
        let run = |lines: &[&str]| {
            let lines: Vec<(f64, &str)> = lines.iter().map(|l| (0.0, *l)).collect();
            captured(&lines, 1.0)
        };
        let correct = run(&[
            "路人0 (passer-by 0) sees 1 ticket(s) left",
            "路人1 (passer-by 1) sees 1 ticket(s) left",
            "路人0 (passer-by 0) bought a ticket",
            "路人1 (passer-by 1) found no ticket left",
            "summary: tickets=1 buyers=2 successes=1 remaining=0 lock=true",
        ]);
        assert!(verify_tickets(&correct, 1, 2, true).is_ok());
        let oversold = run(&[
            "路人0 (passer-by 0) sees 1 ticket(s) left",
            "路人1 (passer-by 1) sees 1 ticket(s) left",
            "路人0 (passer-by 0) bought a ticket",
            "路人1 (passer-by 1) bought a ticket",
            "summary: tickets=1 buyers=2 successes=2 remaining=0 lock=true",
        ]);
        assert!(verify_tickets(&oversold, 1, 2, true).is_err());
        let no_lost_update = run(&[
            "路人0 (passer-by 0) sees 1 ticket(s) left",
            "路人1 (passer-by 1) sees 1 ticket(s) left",
            "路人0 (passer-by 0) bought a ticket",
            "路人1 (passer-by 1) found no ticket left",
            "summary: tickets=1 buyers=2 successes=1 remaining=0 lock=false",
        ]);
        assert!(verify_tickets(&no_lost_update, 1, 2, false).is_err());
    }

    #[test]
    fn the_start_method_option_takes_the_three_names_and_defaults_to_fork() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Line {
            #[command(flatten)]
            options: Options,
        }
        let parse = |a: &[&str]| {
            Line::try_parse_from(std::iter::once("examples").chain(a.iter().copied()))
                .map(|l| l.options.start_method)
        };
        assert_eq!(parse(&[]).unwrap(), "fork");
        for method in START_METHODS {
            assert_eq!(parse(&["--start-method", method]).unwrap(), method);
            let joined = format!("--start-method={method}");
            assert_eq!(parse(&[&joined]).unwrap(), method);
        }
        assert!(parse(&["--start-method", "vfork"]).is_err());
        assert!(parse(&["--start-method"]).is_err());
        assert!(parse(&["spawn"]).is_err());
    }

    #[test]
    fn an_example_that_names_another_start_method_fails() {
        let check = CHECKS
            .iter()
            .find(|c| c.example == "01_start_process")
            .unwrap();
        let said = |text: &str| captured(&[(0.0, text)], 0.0);
        let line = "主 (main) started Process-1 and goes on (start method: spawn)";
        assert!(verify_start_method(check, &said(line), "spawn").is_ok());
        assert!(verify_start_method(check, &said(line), "fork").is_err());
        let line = "主 (main) started Process-1 and goes on (start method: forkserver)";
        assert!(verify_start_method(check, &said(line), "fork").is_err());
        assert!(verify_start_method(check, &said(line), "forkserver").is_ok());
        assert!(verify_start_method(check, &said("主 (main) started"), "fork").is_err());
    }

    #[test]
    fn numbers_are_read_where_they_stand() {
        assert_eq!(number_after::<f64>("after 3.25 s", "after ").unwrap(), 3.25);
        assert_eq!(leading_number::<u32>("1234 is running").unwrap(), 1234);
        assert!(number_after::<u32>("no number here", "parent is ").is_err());
    }
}
