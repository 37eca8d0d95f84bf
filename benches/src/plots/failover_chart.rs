//! Chart 3: successful lock operations per second, in 100 ms buckets, around the SIGKILL of
//! the leader, one step line per trial (`conclave-bench failover --timeline` CSV).

use anyhow::{ensure, Result};
use conclave_benches::rows::{TimelineRow, BUCKET_MS};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::style::{draw_legend, plot_err, series_color, svg, DESC, FAMILY, LABEL, TITLE};

/// The chart as SVG text.
pub fn chart(rows: &[TimelineRow]) -> Result<String> {
    ensure!(!rows.is_empty(), "no rows in the timeline CSV");
    let mut trials: Vec<u32> = rows.iter().map(|r| r.trial).collect();
    trials.sort_unstable();
    trials.dedup();
    let per_sec = |ops: u64| ops as f64 * 1000.0 / BUCKET_MS as f64;
    let bucket_s = BUCKET_MS as f64 / 1000.0;
    let t0 = rows.iter().map(|r| r.t_ms).min().unwrap_or(0) as f64 / 1000.0;
    let t1 = rows.iter().map(|r| r.t_ms).max().unwrap_or(0) as f64 / 1000.0 + bucket_s;
    // Head room above the lines for the legend.
    let top = rows.iter().map(|r| per_sec(r.ops)).fold(1.0, f64::max) * 1.5;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Failover: lock ops/s through the survivors around a leader SIGKILL",
                (FAMILY, TITLE),
            )
            .margin(16)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(t0..t1, 0.0..top)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("time since the leader was killed (s)")
            .y_desc(format!("successful lock ops/s ({BUCKET_MS} ms buckets)"))
            .x_label_formatter(&|x| format!("{x:.1}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .axis_desc_style((FAMILY, DESC))
            .label_style((FAMILY, LABEL))
            .draw()
            .map_err(plot_err)?;
        for (i, &trial) in trials.iter().enumerate() {
            let color = series_color(i);
            let mut mine: Vec<&TimelineRow> = rows.iter().filter(|r| r.trial == trial).collect();
            mine.sort_by_key(|r| r.t_ms);
            // A step line: each bucket is flat over its 100 ms.
            let steps: Vec<(f64, f64)> = mine
                .iter()
                .flat_map(|r| {
                    let x = r.t_ms as f64 / 1000.0;
                    let y = per_sec(r.ops);
                    [(x, y), (x + bucket_s, y)]
                })
                .collect();
            let failed: u64 = mine.iter().map(|r| r.errors).sum();
            chart
                .draw_series(LineSeries::new(steps, color.stroke_width(2)))
                .map_err(plot_err)?
                .label(format!("trial {trial} ({failed} failed ops)"))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (0.0, top)],
                8,
                5,
                BLACK.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label("leader SIGKILL (t = 0)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.stroke_width(2)));
        let note =
            TextStyle::from((FAMILY, LABEL).into_font()).pos(Pos::new(HPos::Left, VPos::Top));
        chart
            .draw_series([Text::new(" SIGKILL", (0.0, top * 0.98), note)])
            .map_err(plot_err)?;
        draw_legend(
            chart.configure_series_labels(),
            SeriesLabelPosition::UpperRight,
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_line_per_trial_and_the_kill() {
        let mut rows = Vec::new();
        for trial in 1..=2 {
            for b in -5i64..10 {
                rows.push(TimelineRow {
                    trial,
                    t_ms: b * 100,
                    ops: if (0..6).contains(&b) { 0 } else { 200 },
                    errors: u64::from((0..6).contains(&b)),
                });
            }
        }
        let svg = chart(&rows).unwrap();
        assert!(svg.contains("around a leader SIGKILL"));
        assert!(svg.contains("time since the leader was killed (s)"));
        assert!(svg.contains("successful lock ops/s (100 ms buckets)"));
        assert!(svg.contains("trial 1 (6 failed ops)") && svg.contains("trial 2 (6 failed ops)"));
        assert!(svg.contains("leader SIGKILL (t = 0)"));
    }
}
