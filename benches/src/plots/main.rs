//! `conclave-plots`: turns the benchmarks' CSV files into the SVG charts shown in
//! BENCHMARKS.md.
//!
//! ```text
//! conclave-plots                                   # every chart whose CSV is in bench-out/,
//!                                                  # written to docs/bench/
//! conclave-plots --input bench-out --output docs/bench
//! conclave-plots redis bench-out/redis.csv docs/bench/redis-ratio.svg
//! conclave-plots locks bench-out/locks-sweep.csv docs/bench/locks-clients.svg
//! conclave-plots failover bench-out/failover-timeline.csv docs/bench/failover-timeline.svg
//! ```
//!
//! The CSV columns are those of `conclave_benches::rows`. Built on plotters' SVG backend
//! without font loading: it runs offline, on a machine without fonts.

mod failover_chart;
mod locks;
mod redis;
mod style;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use conclave_benches::rows::read_csv;

/// Benchmark charts from CSV.
#[derive(Parser, Debug)]
#[command(name = "conclave-plots", version, about)]
struct Cli {
    /// Folder of the CSV files (all-charts mode).
    #[arg(long, default_value = "bench-out")]
    input: PathBuf,
    /// Folder the SVG files go to (all-charts mode).
    #[arg(long, default_value = "docs/bench")]
    output: PathBuf,
    #[command(subcommand)]
    chart: Option<Chart>,
}

#[derive(Subcommand, Debug)]
enum Chart {
    /// Conclave / redis-server throughput ratio per command and pipeline depth.
    Redis {
        /// CSV from scripts/bench-redis.sh.
        csv: PathBuf,
        /// SVG to write.
        svg: PathBuf,
    },
    /// Lock throughput and p99 latency against clients.
    Locks {
        /// CSV from `conclave-bench locks --csv` (scripts/bench-locks.sh sweep).
        csv: PathBuf,
        /// SVG to write.
        svg: PathBuf,
    },
    /// Lock ops/s per 100 ms around a leader SIGKILL.
    Failover {
        /// CSV from `conclave-bench failover --timeline`.
        csv: PathBuf,
        /// SVG to write.
        svg: PathBuf,
    },
}

/// The charts of the all-charts mode: kind, CSV name, SVG name.
const ALL: [(&str, &str, &str); 3] = [
    ("redis", "redis.csv", "redis-ratio.svg"),
    ("locks", "locks-sweep.csv", "locks-clients.svg"),
    ("failover", "failover-timeline.csv", "failover-timeline.svg"),
];

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.chart {
        Some(Chart::Redis { csv, svg }) => render("redis", csv, svg),
        Some(Chart::Locks { csv, svg }) => render("locks", csv, svg),
        Some(Chart::Failover { csv, svg }) => render("failover", csv, svg),
        None => {
            let mut done = 0;
            for (kind, csv, svg) in ALL {
                let csv = cli.input.join(csv);
                if csv.exists() {
                    render(kind, &csv, &cli.output.join(svg))?;
                    done += 1;
                } else {
                    eprintln!("conclave-plots: no {} (skipped)", csv.display());
                }
            }
            if done == 0 {
                bail!("no benchmark CSV in {}", cli.input.display());
            }
            Ok(())
        }
    }
}

/// Reads `csv`, draws the chart of `kind`, writes `svg`.
fn render(kind: &str, csv: &Path, svg: &Path) -> Result<()> {
    let text = match kind {
        "redis" => redis::chart(&read_csv(csv)?),
        "locks" => locks::chart(&read_csv(csv)?),
        "failover" => failover_chart::chart(&read_csv(csv)?),
        other => bail!("unknown chart {other}"),
    }
    .with_context(|| format!("chart from {}", csv.display()))?;
    if let Some(dir) = svg.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(svg, text).with_context(|| format!("write {}", svg.display()))?;
    println!("{} -> {}", csv.display(), svg.display());
    Ok(())
}
