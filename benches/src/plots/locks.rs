//! Chart 2: lock throughput (left axis) and acquire latency (right axis) against the number
//! of clients, from a `conclave-bench locks --csv` sweep (`bench-out/locks-sweep.csv` from
//! `scripts/bench-locks.sh sweep`). Clients on a log scale.

use anyhow::{ensure, Result};
use conclave_benches::rows::LocksRow;
use plotters::prelude::*;

use crate::style::{draw_legend, plot_err, svg, BLUE_, DESC, FAMILY, LABEL, RED_, TITLE};

/// The chart as SVG text.
pub fn chart(rows: &[LocksRow]) -> Result<String> {
    ensure!(!rows.is_empty(), "no rows in the locks CSV");
    let mut rows = rows.to_vec();
    rows.sort_by_key(|r| r.clients);
    let lo = rows.first().map_or(1, |r| r.clients).max(1) as f64;
    let hi = rows.last().map_or(1, |r| r.clients).max(1) as f64;
    let ops_top = rows.iter().map(|r| r.ops_per_sec).fold(1.0, f64::max) * 1.2;
    let ms_top = rows.iter().map(|r| r.acquire_p99_ms).fold(0.1, f64::max) * 1.2;
    let x_range = || (lo / 1.3..hi * 1.3).log_scale();
    let resources = rows.first().map_or(0, |r| r.resources);
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Locks, 3-node cluster: throughput and acquire p99 latency vs clients",
                (FAMILY, TITLE),
            )
            .margin(16)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .right_y_label_area_size(80)
            .build_cartesian_2d(x_range(), 0.0..ops_top)
            .map_err(plot_err)?
            .set_secondary_coord(x_range(), 0.0..ms_top);
        chart
            .configure_mesh()
            .x_desc(format!(
                "concurrent clients (log scale; {resources} resources, acquire → release loops)"
            ))
            .y_desc("throughput (acquire + release ops/s)")
            // Many key points (1, 2, 3, ... 10, 20, ...), labelled only at 1, 2 and 5 × 10^k.
            .x_labels(40)
            .x_label_formatter(&one_two_five)
            .light_line_style(TRANSPARENT)
            .y_label_formatter(&|y| format!("{y:.0}"))
            .axis_desc_style((FAMILY, DESC))
            .label_style((FAMILY, LABEL))
            .draw()
            .map_err(plot_err)?;
        chart
            .configure_secondary_axes()
            .y_desc("acquire latency (ms)")
            .y_label_formatter(&|y| {
                if ms_top >= 20.0 {
                    format!("{y:.0}")
                } else {
                    format!("{y:.1}")
                }
            })
            .axis_desc_style((FAMILY, DESC))
            .label_style((FAMILY, LABEL))
            .draw()
            .map_err(plot_err)?;

        let ops: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| (r.clients as f64, r.ops_per_sec))
            .collect();
        chart
            .draw_series(LineSeries::new(ops.clone(), BLUE_.stroke_width(3)))
            .map_err(plot_err)?
            .label("throughput (left axis)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE_.stroke_width(3)));
        chart
            .draw_series(ops.iter().map(|&p| Circle::new(p, 5, BLUE_.filled())))
            .map_err(plot_err)?;

        let p99: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| (r.clients as f64, r.acquire_p99_ms))
            .collect();
        chart
            .draw_secondary_series(LineSeries::new(p99.clone(), RED_.stroke_width(3)))
            .map_err(plot_err)?
            .label("acquire p99 latency (right axis)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED_.stroke_width(3)));
        chart
            .draw_secondary_series(
                p99.iter()
                    .map(|&(x, y)| TriangleMarker::new((x, y), 6, RED_.filled())),
            )
            .map_err(plot_err)?;

        let p50: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| (r.clients as f64, r.acquire_p50_ms))
            .collect();
        let light = RED_.mix(0.6).stroke_width(2);
        chart
            .draw_secondary_series(DashedLineSeries::new(p50, 6, 4, light))
            .map_err(plot_err)?
            .label("acquire p50 latency (right axis)")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], light));

        draw_legend(
            chart.configure_series_labels(),
            SeriesLabelPosition::UpperLeft,
        )?;
        Ok(())
    })
}

/// The label of a log-scale key point: shown at 1, 2 and 5 × 10^k, empty elsewhere.
fn one_two_five(x: &f64) -> String {
    if *x <= 0.0 {
        return String::new();
    }
    let mantissa = x / 10f64.powf(x.log10().floor());
    if [1.0, 2.0, 5.0].iter().any(|m| (mantissa - m).abs() < 1e-6) {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_one_two_five() {
        let l = |x: f64| super::one_two_five(&x);
        assert_eq!(l(1.0), "1");
        assert_eq!(l(20.0), "20");
        assert_eq!(l(500.0), "500");
        assert_eq!(l(3.0), "");
        assert_eq!(l(70.0), "");
        assert_eq!(l(0.0), "");
    }

    use super::*;

    fn row(clients: u64, ops: f64, p99: f64) -> LocksRow {
        LocksRow {
            clients,
            resources: 100_000,
            duration_s: 5.0,
            ops_per_sec: ops,
            acquires_per_sec: ops / 2.0,
            acquire_p50_ms: p99 / 2.0,
            acquire_p99_ms: p99,
            acquire_p999_ms: p99 * 2.0,
            release_p99_ms: p99,
            not_granted: 0,
            errors: 0,
        }
    }

    #[test]
    fn draws_both_axes_and_a_legend() {
        let rows = [
            row(50, 23_000.0, 4.2),
            row(1, 2_000.0, 1.0),
            row(200, 24_000.0, 15.0),
        ];
        let svg = chart(&rows).unwrap();
        assert!(svg.contains("throughput and acquire p99 latency vs clients"));
        assert!(svg.contains("throughput (acquire + release ops/s)"));
        assert!(svg.contains("acquire latency (ms)"));
        assert!(svg.contains("throughput (left axis)"));
        assert!(svg.contains("acquire p99 latency (right axis)"));
        assert!(svg.contains("concurrent clients (log scale"));
        // One marker per point for throughput.
        assert_eq!(svg.matches("<circle").count(), 3, "{svg}");
    }
}
