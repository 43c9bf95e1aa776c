//! What `cargo xtask bench` makes of its runs: medians and ratios per workload, the printed
//! table, and the JSON file.

use std::fmt::Write;

use super::workloads::Workload;

/// Who does a workload: multiproc, Python's multiprocessing, or the bare kernel path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    Multiproc,
    Python,
    Limit,
}

impl Impl {
    /// In the order each round runs them: A B C, A B C, …
    pub const ALL: [Impl; 3] = [Impl::Multiproc, Impl::Python, Impl::Limit];

    /// The name the programs print in their JSON lines' `impl`.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Multiproc => "multiproc",
            Impl::Python => "python",
            Impl::Limit => "limit",
        }
    }
}

/// One workload's runs: the time per operation of each run, per implementation.
#[derive(Debug, Clone)]
pub struct Row {
    pub workload: Workload,
    /// Indexed like [`Impl::ALL`], in the workload's unit.
    pub samples: [Vec<f64>; 3],
}

impl Row {
    /// A row without runs yet.
    pub fn new(workload: Workload) -> Row {
        Row {
            workload,
            samples: Default::default(),
        }
    }

    /// The runs of `who`.
    pub fn samples_mut(&mut self, who: Impl) -> &mut Vec<f64> {
        &mut self.samples[who as usize]
    }

    /// The median time per operation of `who`, if it ran.
    pub fn median(&self, who: Impl) -> Option<f64> {
        median(&self.samples[who as usize])
    }

    /// How many times longer Python takes than multiproc: multiproc's speed-up.
    pub fn python_over_multiproc(&self) -> Option<f64> {
        Some(self.median(Impl::Python)? / self.median(Impl::Multiproc)?)
    }

    /// How many times the limit's time multiproc takes (1 is at the limit).
    pub fn multiproc_over_limit(&self) -> Option<f64> {
        Some(self.median(Impl::Multiproc)? / self.median(Impl::Limit)?)
    }

    /// How many times the limit's time Python takes.
    pub fn python_over_limit(&self) -> Option<f64> {
        Some(self.median(Impl::Python)? / self.median(Impl::Limit)?)
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2.0),
    }
}

/// A time with the digits that matter at its size.
pub fn number(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), number)
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |r| format!("{}x", number(r)))
}

/// The table: medians per implementation and the two ratios, one row per workload.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<22} {:<20} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "workload", "unit", "multiproc", "python", "limit", "python/mp", "mp/limit"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<22} {:<20} {:>10} {:>10} {:>10} {:>10} {:>10}",
            row.workload.name,
            row.workload.unit_label(),
            cell(row.median(Impl::Multiproc)),
            cell(row.median(Impl::Python)),
            cell(row.median(Impl::Limit)),
            ratio(row.python_over_multiproc()),
            ratio(row.multiproc_over_limit()),
        );
    }
    out
}

/// Everything a run measured, for `--json`: each workload's runs, medians and ratios.
pub fn json(rows: &[Row], about: serde_json::Value) -> serde_json::Value {
    let workloads: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let mut entry = serde_json::json!({
                "workload": row.workload.name,
                "unit": row.workload.unit_label(),
                "python_over_multiproc": row.python_over_multiproc(),
                "multiproc_over_limit": row.multiproc_over_limit(),
            });
            for who in Impl::ALL {
                entry[who.name()] = serde_json::json!({
                    "median": row.median(who),
                    "runs": row.samples[who as usize],
                });
            }
            entry
        })
        .collect();
    serde_json::json!({ "about": about, "workloads": workloads })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::workloads::Unit;

    fn row(multiproc: &[f64], python: &[f64], limit: &[f64]) -> Row {
        let mut row = Row::new(Workload {
            name: "lock_uncontended".to_string(),
            count: 10,
            quick: 2,
            unit: Unit::Nanoseconds,
            per: "acquire+release".to_string(),
        });
        row.samples = [multiproc.to_vec(), python.to_vec(), limit.to_vec()];
        row
    }

    #[test]
    fn the_median_is_the_middle_run_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn ratios_are_speed_up_over_python_and_distance_to_the_limit() {
        let r = row(&[10.0, 8.0, 9.0], &[90.0, 100.0, 95.0], &[3.0]);
        assert_eq!(r.python_over_multiproc(), Some(95.0 / 9.0));
        assert_eq!(r.multiproc_over_limit(), Some(3.0));
        let table = table(&[r]);
        assert!(table.contains("10.6x"), "{table}");
        assert!(table.contains("3.00x"), "{table}");
    }

    #[test]
    fn a_missing_column_shows_a_dash_and_no_ratio() {
        let r = row(&[10.0], &[], &[5.0]);
        assert_eq!(r.python_over_multiproc(), None);
        let table = table(&[r]);
        let line = table.lines().nth(1).unwrap();
        assert_eq!(line.matches(" -").count(), 2, "{line}");
        let json = json(&[row(&[1.0], &[], &[1.0])], serde_json::json!({}));
        assert!(json["workloads"][0]["python"]["median"].is_null());
    }
}
