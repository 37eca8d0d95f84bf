//! Chart 1: Conclave's throughput as a fraction of redis-server's, per redis-benchmark test
//! and pipeline depth (`bench-out/redis.csv` from `scripts/bench-redis.sh`), as grouped bars
//! with a parity line at 1.0.

use anyhow::{ensure, Result};
use conclave_benches::rows::RedisRow;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::style::{draw_legend, plot_err, series_color, svg, DESC, FAMILY, LABEL, TITLE};

/// The chart as SVG text.
pub fn chart(rows: &[RedisRow]) -> Result<String> {
    ensure!(!rows.is_empty(), "no rows in the redis CSV");
    // Tests in the order the file gives them, pipeline depths ascending.
    let mut tests: Vec<&str> = Vec::new();
    for r in rows {
        if !tests.contains(&r.test.as_str()) {
            tests.push(&r.test);
        }
    }
    let mut depths: Vec<u32> = rows.iter().map(|r| r.pipeline).collect();
    depths.sort_unstable();
    depths.dedup();
    // Head room above the bars for the legend.
    let top = rows.iter().map(|r| r.ratio).fold(1.0_f64, f64::max) * 1.45;
    let n = tests.len() as f64;
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Conclave vs redis-server: throughput ratio per command (redis-benchmark -c 50)",
                (FAMILY, TITLE),
            )
            .margin(16)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5..n - 0.5, 0.0..top)
            .map_err(plot_err)?;
        let label_of = |x: &f64| -> String {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                tests
                    .get(i as usize)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(1)
            .x_labels(tests.len())
            .x_label_formatter(&label_of)
            .y_label_formatter(&|y| format!("{y:.1}"))
            .x_desc("redis-benchmark test")
            .y_desc("Conclave ops/s ÷ redis-server ops/s")
            .axis_desc_style((FAMILY, DESC))
            .label_style((FAMILY, LABEL))
            .draw()
            .map_err(plot_err)?;

        let width = 0.8 / depths.len() as f64;
        for (d, &depth) in depths.iter().enumerate() {
            let color = series_color(d);
            let bars: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.pipeline == depth)
                .filter_map(|r| {
                    let t = tests.iter().position(|t| *t == r.test)?;
                    Some((t as f64 - 0.4 + width * d as f64, r.ratio))
                })
                .collect();
            chart
                .draw_series(bars.iter().map(|&(x0, ratio)| {
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.92, ratio)], color.filled())
                }))
                .map_err(plot_err)?
                .label(format!("pipeline {depth} (-P {depth})"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
            let value_style = TextStyle::from((FAMILY, LABEL - 3).into_font())
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series(bars.iter().map(|&(x0, ratio)| {
                    Text::new(
                        format!("{ratio:.2}"),
                        (x0 + width * 0.46, ratio + top * 0.01),
                        value_style.clone(),
                    )
                }))
                .map_err(plot_err)?;
        }
        chart
            .draw_series(DashedLineSeries::new(
                [(-0.5, 1.0), (n - 0.5, 1.0)],
                8,
                5,
                BLACK.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label("parity: as fast as redis-server")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLACK.stroke_width(2)));
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

    fn row(test: &str, pipeline: u32, ratio: f64) -> RedisRow {
        RedisRow {
            test: test.into(),
            pipeline,
            redis_ops_per_sec: 100_000.0,
            conclave_ops_per_sec: 100_000.0 * ratio,
            ratio,
            redis_p50_ms: 0.2,
            redis_p99_ms: 0.4,
            conclave_p50_ms: 0.2,
            conclave_p99_ms: 0.5,
        }
    }

    #[test]
    fn draws_a_bar_and_a_value_per_row_with_legend_and_axes() {
        let rows = [
            row("SET", 1, 1.0),
            row("GET", 1, 0.94),
            row("SET", 16, 0.99),
            row("GET", 16, 0.95),
        ];
        let svg = chart(&rows).unwrap();
        assert!(svg.contains("throughput ratio per command"));
        assert!(svg.contains("Conclave ops/s ÷ redis-server ops/s"));
        assert!(svg.contains("pipeline 1 (-P 1)") && svg.contains("pipeline 16 (-P 16)"));
        // plotters writes each text alone on its line inside <text>.
        let text = |t: &str| svg.contains(&format!(">\n{t}\n</text>"));
        assert!(text("SET") && text("GET"), "{svg}");
        for v in ["1.00", "0.94", "0.99", "0.95"] {
            assert!(text(v), "value {v} missing");
        }
        assert!(svg.contains("parity"));
    }

    #[test]
    fn refuses_an_empty_file() {
        assert!(chart(&[]).is_err());
    }
}
