//! What `cargo xtask bench` makes of its runs: medians and ratios per workload, the printed
//! table, and the JSON file.

use std::fmt::Write;

use super::workloads::Workload;

/// Who does a workload: multiproc, Python's multiprocessing, the bare kernel path, or one
/// of the Rust peers (`benches/peers`), by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Impl {
    Multiproc,
    Python,
    Limit,
    Peer(String),
}

impl Impl {
    /// The three that every table has, in the order each round runs them (the peers follow).
    pub const MAIN: [Impl; 3] = [Impl::Multiproc, Impl::Python, Impl::Limit];

    /// The name the programs print in their JSON lines' `impl`.
    pub fn name(&self) -> &str {
        match self {
            Impl::Multiproc => "multiproc",
            Impl::Python => "python",
            Impl::Limit => "limit",
            Impl::Peer(name) => name,
        }
    }
}

/// One workload's runs: the time per operation of each run, per implementation.
#[derive(Debug, Clone)]
pub struct Row {
    pub workload: Workload,
    /// Indexed like [`Impl::MAIN`], in the workload's unit.
    pub samples: [Vec<f64>; 3],
    /// Each peer that ran the workload, in the order they first ran, with its runs.
    pub peers: Vec<(String, Vec<f64>)>,
}

impl Row {
    /// A row without runs yet.
    pub fn new(workload: Workload) -> Row {
        Row {
            workload,
            samples: Default::default(),
            peers: Vec::new(),
        }
    }

    /// The runs of `who`.
    pub fn samples_mut(&mut self, who: &Impl) -> &mut Vec<f64> {
        let index = match who {
            Impl::Multiproc => 0,
            Impl::Python => 1,
            Impl::Limit => 2,
            Impl::Peer(name) => {
                let at = match self.peers.iter().position(|(known, _)| known == name) {
                    Some(at) => at,
                    None => {
                        self.peers.push((name.clone(), Vec::new()));
                        self.peers.len() - 1
                    }
                };
                return &mut self.peers[at].1;
            }
        };
        &mut self.samples[index]
    }

    /// The median time per operation of `who`, if it ran.
    pub fn median(&self, who: &Impl) -> Option<f64> {
        match who {
            Impl::Multiproc => median(&self.samples[0]),
            Impl::Python => median(&self.samples[1]),
            Impl::Limit => median(&self.samples[2]),
            Impl::Peer(name) => self
                .peers
                .iter()
                .find(|(known, _)| known == name)
                .and_then(|(_, runs)| median(runs)),
        }
    }

    /// The fastest peer (the least median time) and its median, if any peer ran.
    pub fn best_peer(&self) -> Option<(&str, f64)> {
        self.peers
            .iter()
            .filter_map(|(name, runs)| Some((name.as_str(), median(runs)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// How many times longer Python takes than multiproc: multiproc's speed-up.
    pub fn python_over_multiproc(&self) -> Option<f64> {
        Some(self.median(&Impl::Python)? / self.median(&Impl::Multiproc)?)
    }

    /// How many times longer the best peer takes than multiproc: above 1, multiproc is
    /// ahead of every peer; below 1, it trails the best.
    pub fn best_peer_over_multiproc(&self) -> Option<f64> {
        Some(self.best_peer()?.1 / self.median(&Impl::Multiproc)?)
    }

    /// How many times the limit's time multiproc takes (1 is at the limit).
    pub fn multiproc_over_limit(&self) -> Option<f64> {
        Some(self.median(&Impl::Multiproc)? / self.median(&Impl::Limit)?)
    }

    /// How many times the limit's time the best peer takes, and the peer.
    pub fn best_peer_over_limit(&self) -> Option<(&str, f64)> {
        let (name, median) = self.best_peer()?;
        Some((name, median / self.median(&Impl::Limit)?))
    }

    /// How many times the limit's time Python takes.
    pub fn python_over_limit(&self) -> Option<f64> {
        Some(self.median(&Impl::Python)? / self.median(&Impl::Limit)?)
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

/// The table: medians per implementation, the best peer's, and the ratios, one row per
/// workload.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 9]| {
        let [
            workload,
            unit,
            mp,
            python,
            limit,
            peer,
            python_mp,
            peer_mp,
            mp_limit,
        ] = cells;
        let _ = writeln!(
            out,
            "{workload:<22} {unit:<20} {mp:>10} {python:>10} {limit:>10} {peer:>20} {python_mp:>10} {peer_mp:>9} {mp_limit:>10}"
        );
    };
    line(
        &mut out,
        [
            "workload",
            "unit",
            "multiproc",
            "python",
            "limit",
            "best peer",
            "python/mp",
            "peer/mp",
            "mp/limit",
        ],
    );
    for row in rows {
        let peer = row.best_peer().map_or_else(
            || "-".to_string(),
            |(name, m)| format!("{} {name}", number(m)),
        );
        line(
            &mut out,
            [
                &row.workload.name,
                &row.workload.unit_label(),
                &cell(row.median(&Impl::Multiproc)),
                &cell(row.median(&Impl::Python)),
                &cell(row.median(&Impl::Limit)),
                &peer,
                &ratio(row.python_over_multiproc()),
                &ratio(row.best_peer_over_multiproc()),
                &ratio(row.multiproc_over_limit()),
            ],
        );
    }
    out
}

/// Everything a run measured, for `--json`: each workload's runs, medians and ratios, the
/// peers' among them.
pub fn json(rows: &[Row], about: serde_json::Value) -> serde_json::Value {
    let workloads: Vec<serde_json::Value> = rows
        .iter()
        .map(|row| {
            let mut entry = serde_json::json!({
                "workload": row.workload.name,
                "unit": row.workload.unit_label(),
                "python_over_multiproc": row.python_over_multiproc(),
                "multiproc_over_limit": row.multiproc_over_limit(),
                "best_peer": row.best_peer().map(|(name, median)| {
                    serde_json::json!({ "name": name, "median": median })
                }),
                "best_peer_over_multiproc": row.best_peer_over_multiproc(),
            });
            for (who, runs) in Impl::MAIN.iter().zip(&row.samples) {
                entry[who.name()] = serde_json::json!({
                    "median": row.median(who),
                    "runs": runs,
                });
            }
            entry["peers"] = row
                .peers
                .iter()
                .map(|(name, runs)| {
                    (
                        name.clone(),
                        serde_json::json!({ "median": median(runs), "runs": runs }),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
                .into();
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
        assert_eq!(r.best_peer(), None);
        assert_eq!(r.best_peer_over_multiproc(), None);
        let table = table(&[r]);
        let line = table.lines().nth(1).unwrap();
        // python, python/mp, best peer and peer/mp
        assert_eq!(line.matches(" -").count(), 4, "{line}");
        let json = json(&[row(&[1.0], &[], &[1.0])], serde_json::json!({}));
        assert!(json["workloads"][0]["python"]["median"].is_null());
        assert!(json["workloads"][0]["best_peer"].is_null());
        assert_eq!(json["workloads"][0]["peers"], serde_json::json!({}));
    }

    fn peer(name: &str) -> Impl {
        Impl::Peer(name.to_string())
    }

    #[test]
    fn the_best_peer_is_the_one_with_the_least_median_and_is_shown_with_its_name() {
        let mut r = row(&[10.0, 12.0, 11.0], &[], &[5.0]);
        for value in [30.0, 20.0, 25.0] {
            r.samples_mut(&peer("slow")).push(value);
        }
        for value in [22.0, 100.0, 21.0] {
            r.samples_mut(&peer("fast")).push(value);
        }
        assert_eq!(r.median(&peer("slow")), Some(25.0));
        assert_eq!(r.median(&peer("fast")), Some(22.0));
        assert_eq!(r.median(&peer("absent")), None);
        assert_eq!(r.best_peer(), Some(("fast", 22.0)));
        assert_eq!(r.best_peer_over_multiproc(), Some(2.0));
        let table = table(std::slice::from_ref(&r));
        let line = table.lines().nth(1).unwrap();
        assert!(
            line.contains("22.0 fast") && line.contains("2.00x"),
            "{line}"
        );
        assert!(!line.contains("slow"), "{line}");
    }

    #[test]
    fn a_peer_faster_than_multiproc_gives_a_ratio_below_one() {
        let mut r = row(&[10.0], &[], &[5.0]);
        r.samples_mut(&peer("quick")).push(4.0);
        assert_eq!(r.best_peer_over_multiproc(), Some(0.4));
        assert!(table(&[r]).contains("0.40x"));
    }

    #[test]
    fn the_json_holds_every_peers_runs_and_the_best_one() {
        let mut r = row(&[10.0], &[90.0], &[5.0]);
        r.samples_mut(&peer("a")).extend([30.0, 32.0]);
        r.samples_mut(&peer("b")).push(20.0);
        let json = json(&[r], serde_json::json!({ "rounds": 2 }));
        let entry = &json["workloads"][0];
        assert_eq!(entry["peers"]["a"]["runs"], serde_json::json!([30.0, 32.0]));
        assert_eq!(entry["peers"]["a"]["median"], 31.0);
        assert_eq!(entry["peers"]["b"]["median"], 20.0);
        assert_eq!(
            entry["best_peer"],
            serde_json::json!({ "name": "b", "median": 20.0 })
        );
        assert_eq!(entry["best_peer_over_multiproc"], 2.0);
        assert_eq!(entry["multiproc"]["runs"], serde_json::json!([10.0]));
        assert_eq!(json["about"]["rounds"], 2);
    }
}
