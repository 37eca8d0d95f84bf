//! RDB snapshots of the keyspace, as Redis 7.0 takes them (`rdb.c`, `server.c`):
//! `SAVE`, `BGSAVE [SCHEDULE]`, `LASTSAVE`, the `save` parameter and its periodic
//! trigger, `SHUTDOWN [SAVE|NOSAVE]`, loading at start-up, `INFO persistence`.
//!
//! - The file is `<dir>/<dbfilename>` (`--dir`, default the node's `--data-dir`;
//!   `--dbfilename`, default `dump.rdb`; both protected in `CONFIG SET`, as Redis 7's
//!   default `enable-protected-configs no` leaves them). It is written to
//!   `<dir>/temp-<pid>-<n>.rdb`, fsynced, renamed over the old file and the directory
//!   fsynced, so a crash leaves the old snapshot or the new one, never a torn one.
//! - `save` ("<seconds> <changes>" pairs, `""` = off, the default; `--save` at start):
//!   a background save starts when, for one pair, at least `changes` changes were made
//!   and more than `seconds` passed since the last successful save (`serverCron`);
//!   after a failed one, not before 5 s (Redis's `CONFIG_BGSAVE_RETRY_DELAY`). Checked
//!   by the node's housekeeping tick.
//! - `BGSAVE` copies the keyspace shard by shard ([`Keyspace::snapshot`]) and writes it
//!   on a blocking thread: clients are held at most for one shard's copy. `SAVE` does
//!   the same on the calling client's thread (`block_in_place`): only that client waits,
//!   where Redis blocks every client.
//! - At start-up an existing file is loaded before clients are accepted; a file that
//!   cannot be read (damaged, or holding lists, hashes, ... or other databases) stops
//!   the start with the reason, as Redis refuses to start on a bad file.
//! - On a cluster of several nodes the coherence layer owns the values (contract 2.1):
//!   a node's copies may be stale after a restart, so loading them would be wrong
//!   ("may forget, never lies"). There `save`, `SAVE`, `BGSAVE` and `SHUTDOWN SAVE`
//!   are refused with [`CLUSTER_REFUSAL`] and no file is loaded.
//! - `FLUSHALL` with `save` rules set saves the empty keyspace at once, as Redis does,
//!   so a restart does not bring flushed keys back (not a `FLUSHALL` inside `EXEC` or a
//!   script: their next save, by rule or command, does).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use conclave_cache::keyspace::Keyspace;
use conclave_cache::rdb_file::{self, Header, RdbError};
use parking_lot::{Mutex, RwLock};
use thiserror::Error;

use crate::builtin::connection_cmds::REDIS_COMPAT_VERSION;

/// Why saving is refused on a cluster of several nodes.
pub const CLUSTER_REFUSAL: &str = "snapshots are off on a cluster of several nodes: the \
coherence layer owns the values and a node's copies may be stale after a restart";

/// Seconds to wait after a failed background save before the `save` rule tries again.
const RETRY_DELAY_SECS: u64 = 5;

/// Why a save did not happen; `Display` is the error reply.
#[derive(Debug, Error)]
pub enum SaveError {
    /// A background save is running.
    #[error("ERR Background save already in progress")]
    InProgress,
    /// A multi-node cluster.
    #[error("ERR {CLUSTER_REFUSAL}")]
    Cluster,
    /// Writing the file failed.
    #[error("ERR saving the snapshot failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Why the snapshot could not be loaded at start-up.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Its contents are refused.
    #[error("cannot load {path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        source: RdbError,
    },
}

/// Parses a `save` value: "<seconds> <changes>" pairs separated by spaces (seconds ≥ 1,
/// changes ≥ 0), or empty for none. The error is Redis's text.
pub fn parse_save_params(v: &str) -> Result<Vec<(u64, u64)>, String> {
    let words: Vec<&str> = v.split_ascii_whitespace().collect();
    let bad = || "Invalid save parameters".to_string();
    if !words.len().is_multiple_of(2) {
        return Err(bad());
    }
    words
        .chunks(2)
        .map(|pair| {
            let secs = pair[0].parse::<u64>().ok().filter(|&s| s >= 1);
            let changes = pair[1].parse::<u64>().ok();
            secs.zip(changes).ok_or_else(bad)
        })
        .collect()
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The node's snapshot state.
#[derive(Debug)]
pub struct Persistence {
    keyspace: Arc<Keyspace>,
    /// A cluster of several nodes: saving refused, nothing loaded.
    cluster: bool,
    params: RwLock<Vec<(u64, u64)>>,
    dir: PathBuf,
    dbfilename: String,
    /// Unix seconds of the last successful save (or of the start).
    lastsave: AtomicU64,
    /// The keyspace's change count when the last successful save copied it.
    changes_at_save: AtomicU64,
    in_progress: AtomicBool,
    /// Unix seconds when the running background save started.
    started: AtomicU64,
    scheduled: AtomicBool,
    last_bgsave_ok: AtomicBool,
    last_bgsave_secs: AtomicI64,
    /// Unix seconds of the last background save attempt.
    last_try: AtomicU64,
    saves: AtomicU64,
    loaded_keys: AtomicU64,
    loaded_expired: AtomicU64,
    /// One writer at a time (SAVE and BGSAVE); numbers the temp files.
    writer: Mutex<u64>,
}

impl Persistence {
    /// The state for a node: `params` from `--save`, the file `dir/dbfilename`;
    /// `cluster` when the node is one of several.
    pub fn new(
        keyspace: Arc<Keyspace>,
        params: Vec<(u64, u64)>,
        dir: PathBuf,
        dbfilename: String,
        cluster: bool,
    ) -> Persistence {
        Persistence {
            changes_at_save: AtomicU64::new(keyspace.changes()),
            keyspace,
            cluster,
            params: RwLock::new(params),
            dir,
            dbfilename,
            lastsave: AtomicU64::new(unix_secs()),
            in_progress: AtomicBool::new(false),
            started: AtomicU64::new(0),
            scheduled: AtomicBool::new(false),
            last_bgsave_ok: AtomicBool::new(true),
            last_bgsave_secs: AtomicI64::new(-1),
            last_try: AtomicU64::new(0),
            saves: AtomicU64::new(0),
            loaded_keys: AtomicU64::new(0),
            loaded_expired: AtomicU64::new(0),
            writer: Mutex::new(0),
        }
    }

    /// Whether saving is refused (a cluster of several nodes).
    pub fn refused(&self) -> bool {
        self.cluster
    }

    /// The snapshot file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.dbfilename)
    }

    /// `dir` as `CONFIG GET` shows it (absolute when it can be resolved).
    pub fn dir(&self) -> String {
        std::fs::canonicalize(&self.dir)
            .unwrap_or_else(|_| self.dir.clone())
            .display()
            .to_string()
    }

    /// `dbfilename`.
    pub fn dbfilename(&self) -> &str {
        &self.dbfilename
    }

    /// `save` as `CONFIG GET` shows it: "<seconds> <changes>" pairs, or "".
    pub fn params_string(&self) -> String {
        self.params
            .read()
            .iter()
            .map(|(s, c)| format!("{s} {c}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Sets `save` (checked by [`parse_save_params`]; on a cluster only "" is allowed,
    /// see the module docs).
    pub fn set_params(&self, params: Vec<(u64, u64)>) {
        *self.params.write() = params;
    }

    /// Whether any `save` rule is set (`SHUTDOWN` then saves).
    pub fn saving_configured(&self) -> bool {
        !self.params.read().is_empty()
    }

    /// `LASTSAVE`: Unix seconds of the last successful save (the start before any).
    pub fn lastsave(&self) -> u64 {
        self.lastsave.load(Relaxed)
    }

    /// Loads the snapshot file, if there is one, into the (empty) keyspace. Done before
    /// clients are accepted; on a cluster the file is left alone (module docs).
    pub fn load_at_start(&self) -> Result<(), LoadError> {
        let path = self.path();
        if !path.exists() {
            return Ok(());
        }
        if self.cluster {
            tracing::warn!(path = %path.display(), "snapshot not loaded: {CLUSTER_REFUSAL}");
            return Ok(());
        }
        let started = Instant::now();
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
            path: path.clone(),
            source,
        })?;
        let loaded = rdb_file::read_rdb(&bytes, self.keyspace.now_ms()).map_err(|source| {
            LoadError::Format {
                path: path.clone(),
                source,
            }
        })?;
        for entry in &loaded.entries {
            if let Err(e) = self.keyspace.load_entry(entry) {
                tracing::warn!(error = ?e, "a key of the snapshot was not loaded");
            }
        }
        self.loaded_keys.store(loaded.entries.len() as u64, Relaxed);
        self.loaded_expired.store(loaded.expired, Relaxed);
        self.changes_at_save.store(self.keyspace.changes(), Relaxed);
        tracing::info!(
            keys = loaded.entries.len(),
            expired = loaded.expired,
            ms = started.elapsed().as_millis() as u64,
            path = %path.display(),
            "snapshot loaded"
        );
        Ok(())
    }

    /// `SAVE`: writes the snapshot now, on this thread.
    pub fn save(&self) -> Result<(), SaveError> {
        if self.cluster {
            return Err(SaveError::Cluster);
        }
        if self.in_progress.load(Relaxed) {
            return Err(SaveError::InProgress);
        }
        self.write_now().map_err(SaveError::Io)
    }

    /// The save of `SHUTDOWN`, of a stop by signal and of `FLUSHALL` (with `save`
    /// rules set): as [`Self::save`], but a background save in progress is waited for
    /// (then saved over), as Redis kills its child and saves in the foreground.
    pub fn save_waiting(&self) -> Result<(), SaveError> {
        if self.cluster {
            return Err(SaveError::Cluster);
        }
        self.write_now().map_err(SaveError::Io)
    }

    /// `BGSAVE [SCHEDULE]`: starts a background save; the reply's status text.
    pub fn bgsave(self: &Arc<Self>) -> Result<&'static str, SaveError> {
        if self.cluster {
            return Err(SaveError::Cluster);
        }
        if self
            .in_progress
            .compare_exchange(false, true, Relaxed, Relaxed)
            .is_err()
        {
            return Err(SaveError::InProgress);
        }
        self.scheduled.store(false, Relaxed);
        let now = unix_secs();
        self.started.store(now, Relaxed);
        self.last_try.store(now, Relaxed);
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("bgsave".into())
            .spawn(move || {
                let started = Instant::now();
                let ok = match me.write_now() {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "background save failed");
                        false
                    }
                };
                me.last_bgsave_ok.store(ok, Relaxed);
                me.last_bgsave_secs
                    .store(started.elapsed().as_secs() as i64, Relaxed);
                me.in_progress.store(false, Relaxed);
            });
        match spawned {
            Ok(_) => Ok("Background saving started"),
            Err(e) => {
                self.in_progress.store(false, Relaxed);
                Err(SaveError::Io(e))
            }
        }
    }

    /// `BGSAVE` inside `EXEC` (Redis's `in_exec`): the save starts at the next tick.
    pub fn schedule(&self) -> Result<&'static str, SaveError> {
        if self.cluster {
            return Err(SaveError::Cluster);
        }
        if self.in_progress.load(Relaxed) {
            return Err(SaveError::InProgress);
        }
        self.scheduled.store(true, Relaxed);
        Ok("Background saving scheduled")
    }

    /// The housekeeping tick: starts a scheduled background save, or one a `save`
    /// rule calls for (Redis's `serverCron`).
    pub fn cron(self: &Arc<Self>) {
        if self.cluster || self.in_progress.load(Relaxed) {
            return;
        }
        if self.scheduled.load(Relaxed) {
            let _ = self.bgsave();
            return;
        }
        let params = self.params.read().clone();
        if params.is_empty() {
            return;
        }
        let now = unix_secs();
        let changes = self.changes_since_save();
        let since = now.saturating_sub(self.lastsave());
        let may_try = self.last_bgsave_ok.load(Relaxed)
            || now.saturating_sub(self.last_try.load(Relaxed)) > RETRY_DELAY_SECS;
        let due = params
            .iter()
            .any(|&(secs, min)| changes >= min && since > secs);
        if due && may_try {
            tracing::info!(changes, seconds = since, "saving: a save rule is met");
            let _ = self.bgsave();
        }
    }

    /// `rdb_changes_since_last_save`.
    pub fn changes_since_save(&self) -> u64 {
        self.keyspace
            .changes()
            .saturating_sub(self.changes_at_save.load(Relaxed))
    }

    /// The fields of `INFO persistence`, in Redis's order.
    pub fn info(&self) -> Vec<(&'static str, String)> {
        let in_progress = self.in_progress.load(Relaxed);
        let current = if in_progress {
            unix_secs().saturating_sub(self.started.load(Relaxed)) as i64
        } else {
            -1
        };
        let ok = |b: bool| if b { "ok" } else { "err" }.to_string();
        vec![
            ("loading", "0".into()),
            ("async_loading", "0".into()),
            (
                "rdb_changes_since_last_save",
                self.changes_since_save().to_string(),
            ),
            ("rdb_bgsave_in_progress", u8::from(in_progress).to_string()),
            ("rdb_last_save_time", self.lastsave().to_string()),
            (
                "rdb_last_bgsave_status",
                ok(self.last_bgsave_ok.load(Relaxed)),
            ),
            (
                "rdb_last_bgsave_time_sec",
                self.last_bgsave_secs.load(Relaxed).to_string(),
            ),
            ("rdb_current_bgsave_time_sec", current.to_string()),
            ("rdb_saves", self.saves.load(Relaxed).to_string()),
            (
                "rdb_last_load_keys_expired",
                self.loaded_expired.load(Relaxed).to_string(),
            ),
            (
                "rdb_last_load_keys_loaded",
                self.loaded_keys.load(Relaxed).to_string(),
            ),
        ]
    }

    /// Copies the keyspace and writes it to the file (temp file, fsync, rename, fsync
    /// of the directory); on success records the save.
    fn write_now(&self) -> std::io::Result<()> {
        let mut counter = self.writer.lock();
        *counter += 1;
        let started = Instant::now();
        let changes = self.keyspace.changes();
        let entries = self.keyspace.snapshot();
        let header = Header {
            version: REDIS_COMPAT_VERSION,
            ctime: unix_secs(),
            used_mem: self.keyspace.used_bytes(),
        };
        let temp = self
            .dir
            .join(format!("temp-{}-{}.rdb", std::process::id(), *counter));
        let written = write_file(&temp, &header, &entries)
            .and_then(|()| std::fs::rename(&temp, self.path()))
            .and_then(|()| sync_dir(&self.dir));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
        self.changes_at_save.store(changes, Relaxed);
        self.lastsave.store(unix_secs(), Relaxed);
        // Any successful save clears a failed background save's status (Redis's rdbSave).
        self.last_bgsave_ok.store(true, Relaxed);
        self.saves.fetch_add(1, Relaxed);
        tracing::info!(
            keys = entries.len(),
            ms = started.elapsed().as_millis() as u64,
            "DB saved on disk"
        );
        Ok(())
    }
}

fn write_file(
    path: &Path,
    header: &Header<'_>,
    entries: &[conclave_cache::keyspace::SnapshotEntry],
) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    rdb_file::write_rdb(&mut out, header, entries)?;
    out.flush()?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_params_as_redis_parses_them() {
        assert_eq!(parse_save_params(""), Ok(vec![]));
        assert_eq!(parse_save_params("3000 5"), Ok(vec![(3000, 5)]));
        assert_eq!(
            parse_save_params("3600 1 300 100"),
            Ok(vec![(3600, 1), (300, 100)])
        );
        for bad in ["1", "0 5", "10 -1", "x 1", "1 2 3"] {
            assert_eq!(
                parse_save_params(bad),
                Err("Invalid save parameters".into()),
                "{bad}"
            );
        }
    }
}
