//! One node process per data directory.
//!
//! Two processes on one directory would each run Raft on the same log and both grant the
//! same locks. So before anything in the directory is opened, the node takes an exclusive
//! `flock` on `<data-dir>/LOCK` and writes its pid into that file; a second process finds the
//! lock taken and fails at once, naming the directory and the pid it read. The lock lasts as
//! long as the [`DataDirLock`] (the node keeps it for its whole life) and the kernel drops it
//! when the process ends, however it ends: the file left behind after `kill -9` blocks
//! nobody. The pid is only for the message; the `flock` decides.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{flock, FlockOperation};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// How often, and how far apart, a refused process reads the holder's pid: the holder writes
/// it just after taking the lock, so a loser can find the file still empty for a moment.
const PID_READS: u32 = 20;
const PID_READ_PAUSE: Duration = Duration::from_millis(10);

/// Why the data directory could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Another process holds the lock.
    #[error(
        "data directory {} is in use by another conclave process ({})",
        .dir.display(),
        .holder.map_or_else(|| "pid unknown".to_string(), |pid| format!("pid {pid}"))
    )]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// The pid recorded in its lock file, if one could be read.
        holder: Option<u32>,
    },
    /// The directory or its lock file could not be created, opened, locked or written.
    #[error("cannot lock data directory {}: {what}: {source}", .dir.display())]
    Io {
        /// The directory.
        dir: PathBuf,
        /// The step that failed.
        what: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// The exclusive claim on a data directory; released when dropped or when the process ends.
#[derive(Debug)]
pub struct DataDirLock {
    /// The open, `flock`ed lock file.
    _file: File,
}

impl DataDirLock {
    /// Creates `dir` if needed and takes its lock without waiting, recording this process's
    /// pid in the lock file.
    pub fn acquire(dir: &Path) -> Result<DataDirLock, DataDirError> {
        let io = |what: &'static str, shown: &Path| {
            let dir = shown.to_path_buf();
            move |source| DataDirError::Io { dir, what, source }
        };
        std::fs::create_dir_all(dir).map_err(io("create the directory", dir))?;
        // Name the directory absolutely: `conclave` and `cargo run` default to a relative one.
        let shown = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("open LOCK", &shown))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(DataDirError::InUse {
                    holder: read_holder(&file),
                    dir: shown,
                });
            }
            Err(e) => return Err(io("flock LOCK", &shown)(e.into())),
        }
        // Truncate first: a reader never sees our pid run into the digits of an older one.
        file.set_len(0).map_err(io("write LOCK", &shown))?;
        file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
            .map_err(io("write LOCK", &shown))?;
        Ok(DataDirLock { _file: file })
    }
}

/// The pid in a lock file someone else holds, waiting briefly for it to be written.
fn read_holder(file: &File) -> Option<u32> {
    for attempt in 0..PID_READS {
        if attempt > 0 {
            std::thread::sleep(PID_READ_PAUSE);
        }
        let mut buf = [0u8; 32];
        let n = match file.read_at(&mut buf, 0) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        // A complete record ends with a newline; anything else may still be being written.
        if let Some(pid) = text
            .strip_suffix('\n')
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            return Some(pid);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_directory_is_refused_with_the_holders_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let held = DataDirLock::acquire(&dir).unwrap();
        let text = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));

        // flock conflicts between open files, also within one process.
        let err = DataDirLock::acquire(&dir).unwrap_err();
        let shown = dir.canonicalize().unwrap();
        assert!(
            matches!(&err, DataDirError::InUse { dir: d, holder: Some(pid) }
                if *d == shown && *pid == std::process::id()),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "data directory {} is in use by another conclave process (pid {})",
                shown.display(),
                std::process::id()
            )
        );

        // Released on drop; the file left behind does not block the next owner.
        drop(held);
        assert!(dir.join(LOCK_FILE).exists());
        let _again = DataDirLock::acquire(&dir).unwrap();
    }

    #[test]
    fn a_stale_pid_is_replaced_and_garbage_is_not_reported() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(LOCK_FILE), "4294967295 garbage\n").unwrap();
        let held = DataDirLock::acquire(tmp.path()).unwrap();
        let text = std::fs::read_to_string(tmp.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));

        std::fs::write(tmp.path().join(LOCK_FILE), "not a pid").unwrap();
        let err = DataDirLock::acquire(tmp.path()).unwrap_err();
        assert!(
            matches!(err, DataDirError::InUse { holder: None, .. }),
            "{err:?}"
        );
        assert!(err.to_string().ends_with("(pid unknown)"), "{err}");
        drop(held);
    }

    #[test]
    fn an_unusable_directory_is_an_error_not_a_refusal() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = DataDirLock::acquire(&file.join("data")).unwrap_err();
        assert!(matches!(err, DataDirError::Io { .. }), "{err:?}");
    }
}
