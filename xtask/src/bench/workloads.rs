//! The workload table, `benches/workloads.txt`: names, counts and units of display.

/// The table, as this xtask was built with it.
const TABLE: &str = include_str!("../../../benches/workloads.txt");

/// One workload of the table. `benches/README.md` defines what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub name: String,
    /// Operations in one run of a full bench.
    pub count: u64,
    /// Operations in one run of `--quick`.
    pub quick: u64,
    /// How a run is shown: its seconds / count, in `unit` per `per`.
    pub unit: Unit,
    pub per: String,
}

/// The time unit a workload is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Nanoseconds,
    Microseconds,
}

impl Workload {
    /// The count of one run.
    pub fn count(&self, quick: bool) -> u64 {
        if quick { self.quick } else { self.count }
    }

    /// The time per operation of a run that did `count` operations in `seconds`.
    pub fn per_op(&self, seconds: f64, count: u64) -> f64 {
        let scale = match self.unit {
            Unit::Nanoseconds => 1e9,
            Unit::Microseconds => 1e6,
        };
        seconds * scale / count as f64
    }

    /// The unit of [`per_op`](Self::per_op), as the table shows it: `µs/process`.
    pub fn unit_label(&self) -> String {
        let unit = match self.unit {
            Unit::Nanoseconds => "ns",
            Unit::Microseconds => "µs",
        };
        format!("{unit}/{}", self.per)
    }
}

/// Every workload of the table, in its order.
pub fn all() -> Result<Vec<Workload>, String> {
    parse(TABLE)
}

fn parse(table: &str) -> Result<Vec<Workload>, String> {
    let mut workloads: Vec<Workload> = Vec::new();
    for (number, line) in table.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first().is_none_or(|f| f.starts_with('#')) {
            continue;
        }
        let at = || format!("benches/workloads.txt line {}", number + 1);
        let [name, count, quick, unit, per] = fields[..] else {
            return Err(format!(
                "{}: expected 5 fields (name count quick unit per), got {line:?}",
                at()
            ));
        };
        let number = |text: &str| match text.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{}: {text:?} is not a count of at least 1", at())),
        };
        let unit = match unit {
            "ns" => Unit::Nanoseconds,
            "us" => Unit::Microseconds,
            other => return Err(format!("{}: unit {other:?} is neither ns nor us", at())),
        };
        if workloads.iter().any(|w| w.name == name) {
            return Err(format!("{}: {name} is listed twice", at()));
        }
        workloads.push(Workload {
            name: name.to_string(),
            count: number(count)?,
            quick: number(quick)?,
            unit,
            per: per.to_string(),
        });
    }
    if workloads.is_empty() {
        return Err("benches/workloads.txt lists no workload".to_string());
    }
    Ok(workloads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_every_workload_is_defined_in_the_readme() {
        let readme = include_str!("../../../benches/README.md");
        for workload in all().unwrap() {
            assert!(
                readme.contains(&format!("`{}`", workload.name)),
                "benches/README.md does not define {}",
                workload.name
            );
        }
    }

    #[test]
    fn rows_are_read_with_their_units_and_comments_are_skipped() {
        let table = "# a comment\n\nlock  10 2  ns  acquire+release\nspawn 4 1 us process\n";
        let parsed = parse(table).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].count(false), 10);
        assert_eq!(parsed[0].count(true), 2);
        assert_eq!(parsed[0].unit_label(), "ns/acquire+release");
        assert_eq!(parsed[1].per_op(0.002, 4), 500.0);
    }

    #[test]
    fn malformed_rows_are_refused_with_their_line() {
        for bad in [
            "lock 10 2 ns",
            "lock ten 2 ns pair",
            "lock 0 2 ns pair",
            "lock 10 2 ms pair",
            "lock 1 1 ns a\nlock 1 1 ns b",
            "# nothing\n",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
        assert!(parse("\nlock 10 2 ns").unwrap_err().contains("line 2"));
    }
}
