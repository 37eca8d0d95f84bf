//! The CSV files of the benchmarks, one record type per file, so that the writers
//! (`conclave-bench`, `scripts/bench-*.sh`) and the reader (`conclave-plots`) agree on the
//! columns. Every file has a header line with these field names; times are in milliseconds,
//! rates in operations per second.

use std::fs::OpenOptions;
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One line of `bench-out/redis.csv` (written by `scripts/bench-redis.sh`): one
/// `redis-benchmark` test at one pipeline depth against both servers, best of the runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedisRow {
    /// redis-benchmark's test name: `SET`, `GET`, `INCR`, `PING_INLINE`, `PING_MBULK`.
    pub test: String,
    /// Pipeline depth (`-P`).
    pub pipeline: u32,
    /// redis-server's throughput, requests/s.
    pub redis_ops_per_sec: f64,
    /// Conclave's throughput, requests/s.
    pub conclave_ops_per_sec: f64,
    /// `conclave_ops_per_sec / redis_ops_per_sec`.
    pub ratio: f64,
    /// redis-server's median latency, ms.
    pub redis_p50_ms: f64,
    /// redis-server's 99th percentile latency, ms.
    pub redis_p99_ms: f64,
    /// Conclave's median latency, ms.
    pub conclave_p50_ms: f64,
    /// Conclave's 99th percentile latency, ms.
    pub conclave_p99_ms: f64,
}

/// One line of a `conclave-bench locks --csv` file (`bench-out/locks-sweep.csv` from
/// `scripts/bench-locks.sh sweep`): one run of C clients doing acquire → release cycles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocksRow {
    /// Concurrent clients.
    pub clients: u64,
    /// Distinct resources (small = contention).
    pub resources: u64,
    /// Length of the run, seconds.
    pub duration_s: f64,
    /// Acquires and releases together, per second.
    pub ops_per_sec: f64,
    /// Granted acquires per second.
    pub acquires_per_sec: f64,
    /// Median acquire latency, ms.
    pub acquire_p50_ms: f64,
    /// 99th percentile acquire latency, ms.
    pub acquire_p99_ms: f64,
    /// 99.9th percentile acquire latency, ms.
    pub acquire_p999_ms: f64,
    /// 99th percentile release latency, ms.
    pub release_p99_ms: f64,
    /// Acquires answered nil (not granted within WAIT).
    pub not_granted: u64,
    /// Requests answered with an error or not at all.
    pub errors: u64,
}

/// One line of a `conclave-bench failover --timeline` file: what the clients achieved in
/// one 100 ms bucket of one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineRow {
    /// Trial number, from 1.
    pub trial: u32,
    /// Start of the bucket relative to the leader's SIGKILL, ms (negative before it).
    pub t_ms: i64,
    /// Successful operations (acquires and releases) in the bucket.
    pub ops: u64,
    /// Failed operations (error replies, timeouts, lost connections) in the bucket.
    pub errors: u64,
}

/// Width of a timeline bucket, ms.
pub const BUCKET_MS: i64 = 100;

/// Reads every record of a CSV file with a header line.
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("open {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{} record {}", path.display(), i + 1)))
        .collect()
}

/// Appends records to a CSV file, writing the header line first when the file is new or
/// empty.
pub fn append_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    let empty = file.metadata()?.len() == 0;
    let mut writer = csv::WriterBuilder::new()
        .has_headers(empty)
        .from_writer(file);
    for row in rows {
        writer
            .serialize(row)
            .with_context(|| format!("write {}", path.display()))?;
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_with_one_header_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("conclave-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.csv");
        let _ = std::fs::remove_file(&path);
        let row = |trial, t_ms| TimelineRow {
            trial,
            t_ms,
            ops: 7,
            errors: 0,
        };
        append_csv(&path, &[row(1, -100)]).unwrap();
        append_csv(&path, &[row(1, 0), row(2, 100)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("trial,t_ms,ops,errors").count(), 1, "{text}");
        let back: Vec<TimelineRow> = read_csv(&path).unwrap();
        assert_eq!(back, vec![row(1, -100), row(1, 0), row(2, 100)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_shell_written_redis_csv_parses() {
        let dir = std::env::temp_dir().join(format!("conclave-rows-r-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("redis.csv");
        std::fs::write(
            &path,
            "test,pipeline,redis_ops_per_sec,conclave_ops_per_sec,ratio,redis_p50_ms,redis_p99_ms,conclave_p50_ms,conclave_p99_ms\n\
             SET,1,132979,132450,1.00,0.191,0.391,0.183,0.503\n",
        )
        .unwrap();
        let rows: Vec<RedisRow> = read_csv(&path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].test, "SET");
        assert_eq!(rows[0].pipeline, 1);
        assert!((rows[0].ratio - 1.0).abs() < 1e-9);
        std::fs::write(&path, "test,pipeline\nSET,x\n").unwrap();
        assert!(read_csv::<RedisRow>(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
