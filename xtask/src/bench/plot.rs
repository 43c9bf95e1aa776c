//! `--plot FILE.svg`: the table as a bar chart. For each workload, multiproc's, Python's
//! and the best Rust peer's time per operation as multiples of the limit's, on a log scale,
//! with the limit itself as the line at 1.

use std::path::Path;

use plotters::prelude::*;

use super::report::{Impl, Row, number};

const MULTIPROC: RGBColor = RGBColor(0xd9, 0x5f, 0x02);
const PYTHON: RGBColor = RGBColor(0x37, 0x76, 0xab);
const PEER: RGBColor = RGBColor(0x5a, 0x9e, 0x6f);

/// Each bar's height, and where it starts above its workload's line, per series.
const BAR: f64 = 0.26;
const MULTIPROC_AT: f64 = 0.15;
const PYTHON_AT: f64 = -0.13;
const PEER_AT: f64 = -0.41;

/// A series of bars: each row's value (a multiple of the limit) and the text beside it.
type Series = fn(&Row) -> Option<(f64, String)>;

/// Draws `rows` into the SVG file `path`, under `title`.
pub fn draw(rows: &[Row], title: &str, path: &Path) -> Result<(), String> {
    draw_chart(rows, title, path).map_err(|e| format!("drawing {}: {e}", path.display()))
}

fn draw_chart(rows: &[Row], title: &str, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let n = rows.len();
    let height = 120 + 52 * n as u32;
    let root = SVGBackend::new(path, (960, height)).into_drawing_area();
    root.fill(&WHITE)?;

    let ratios: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            [
                r.multiproc_over_limit(),
                r.python_over_limit(),
                r.best_peer_over_limit().map(|(_, ratio)| ratio),
            ]
        })
        .flatten()
        .chain([1.0])
        .collect();
    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
    let high = ratios.iter().copied().fold(0.0, f64::max) * 4.0;

    // Workload i is drawn around y = n - 1 - i, so that the first is at the top.
    let y_of = |i: usize| (n - 1 - i) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(170)
        .build_cartesian_2d((low..high).log_scale(), -0.5..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n.max(2))
        .y_label_formatter(&|y| {
            let index = n as f64 - 1.0 - y.round();
            if (y - y.round()).abs() < 0.01 && index >= 0.0 && (index as usize) < n {
                rows[index as usize].workload.name.clone()
            } else {
                String::new()
            }
        })
        .x_desc("time per operation, as a multiple of the limit's (log scale; lower is faster)")
        .x_label_formatter(&|x| format!("{x}x"))
        .draw()?;

    let series: [(&str, RGBColor, f64, Series); 3] = [
        ("multiproc", MULTIPROC, MULTIPROC_AT, |row| {
            let ratio = row.multiproc_over_limit()?;
            Some((ratio, format!("{}x", number(ratio))))
        }),
        ("Python multiprocessing", PYTHON, PYTHON_AT, |row| {
            let ratio = row.python_over_limit()?;
            Some((ratio, format!("{}x", number(ratio))))
        }),
        ("the best Rust peer (named)", PEER, PEER_AT, |row| {
            let (name, ratio) = row.best_peer_over_limit()?;
            Some((ratio, format!("{}x {name}", number(ratio))))
        }),
    ];
    for (who, color, offset, value) in series {
        let bars: Vec<(f64, f64, String)> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, row)| {
                let (ratio, text) = value(row)?;
                Some((y_of(i) + offset, ratio, text))
            })
            .collect();
        chart
            .draw_series(bars.iter().map(|(y, value, _)| {
                Rectangle::new([(low, *y), (*value, y + BAR)], color.filled())
            }))?
            .label(who)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], color.filled()));
        chart.draw_series(bars.iter().map(|(y, value, text)| {
            Text::new(
                text.clone(),
                (value * 1.08, y + BAR - 0.03),
                ("sans-serif", 12),
            )
        }))?;
    }
    // Where a program does not run a workload, say so where its bar would be.
    let absent = rows.iter().enumerate().flat_map(|(i, row)| {
        let multiproc = row
            .median(&Impl::Multiproc)
            .is_none()
            .then_some(("multiproc", MULTIPROC_AT));
        let python = row
            .median(&Impl::Python)
            .is_none()
            .then_some(("python", PYTHON_AT));
        [multiproc, python]
            .into_iter()
            .flatten()
            .map(move |(who, offset)| (who, y_of(i) + offset))
    });
    chart.draw_series(absent.map(|(who, y)| {
        Text::new(
            format!("{who}: not run"),
            (low * 1.1, y + BAR - 0.03),
            ("sans-serif", 12)
                .into_font()
                .color(&RGBColor(0x70, 0x70, 0x70)),
        )
    }))?;
    chart
        .draw_series(LineSeries::new(
            [(1.0, -0.5), (1.0, n as f64 - 0.5)],
            BLACK.stroke_width(2),
        ))?
        .label("the limit: the bare kernel path")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::workloads;

    #[test]
    fn every_workload_and_bar_value_is_in_the_chart() {
        let mut rows: Vec<Row> = workloads::all()
            .unwrap()
            .into_iter()
            .map(Row::new)
            .collect();
        for (i, row) in rows.iter_mut().enumerate() {
            row.samples = [vec![2.0 + i as f64], vec![40.0], vec![1.0]];
        }
        rows[0].samples[0].clear(); // a workload multiproc does not run yet
        rows[1].samples_mut(&Impl::Peer("ipmpsc".into())).push(5.0);
        rows[1].samples_mut(&Impl::Peer("slower".into())).push(7.0);
        let path = std::env::temp_dir().join(format!("xtask-plot-{}.svg", std::process::id()));
        draw(&rows, "test", &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // The texts of the chart: what stands between a tag's end and the next tag.
        let texts: Vec<&str> = svg
            .split('>')
            .filter_map(|part| part.split('<').next())
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .collect();
        for row in &rows {
            assert!(
                texts.contains(&row.workload.name.as_str()),
                "{} missing",
                row.workload.name
            );
        }
        assert!(
            texts.contains(&"40.0x") && texts.contains(&"3.00x"),
            "{texts:?}"
        );
        assert!(!texts.contains(&"2.00x") && texts.contains(&"multiproc: not run"));
        // The best peer of a row, by name; no other peer, and no bar where none ran.
        assert!(texts.contains(&"5.00x ipmpsc"), "{texts:?}");
        assert!(!texts.iter().any(|t| t.contains("slower")), "{texts:?}");
        assert_eq!(texts.iter().filter(|t| t.ends_with("ipmpsc")).count(), 1);
    }
}
