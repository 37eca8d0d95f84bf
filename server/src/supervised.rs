//! Nodes started by `conclave cluster` do not outlive it.
//!
//! The supervisor stops its nodes on Ctrl-C or SIGTERM, but one killed with SIGKILL cannot:
//! its nodes would run on as orphans, holding their ports and data directories. So it passes
//! its pid to every node (the hidden `--supervisor-pid`), and the node, before anything else,
//! asks the kernel for SIGTERM when its parent dies (`PR_SET_PDEATHSIG` on Linux and Android);
//! the node then stops as on any SIGTERM. A supervisor that died between starting the node and
//! that request sends nothing, so the node then checks that its parent is still the supervisor
//! and refuses to start if not. Elsewhere a thread checks the parent once a second.

use std::os::unix::process::parent_id;
use std::time::Duration;

use rustix::process::Signal;

/// The signal a supervised node receives when its supervisor is gone.
const ON_SUPERVISOR_EXIT: Signal = Signal::TERM;

/// How often the fallback watch looks at the parent where the kernel cannot signal.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Why a supervised node cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The parent is no longer the supervisor: it exited before the node got going.
    #[error("the conclave cluster supervisor (pid {0}) is gone")]
    Gone(u32),
    /// The parent-death signal or the watch could not be set up.
    #[error("cannot watch the conclave cluster supervisor: {0}")]
    Setup(std::io::Error),
}

/// Arranges for this process to receive SIGTERM when `supervisor`, its parent, exits.
///
/// Call it on the main thread (the parent-death signal belongs to the calling thread, and
/// the main thread lives as long as the process) before the node starts.
pub fn exit_with(supervisor: u32) -> Result<(), SupervisorError> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    rustix::process::set_parent_process_death_signal(Some(ON_SUPERVISOR_EXIT))
        .map_err(|e| SupervisorError::Setup(e.into()))?;
    // After the request: had the supervisor died before it, no signal would ever come.
    check_parent(supervisor)?;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    watch_parent(supervisor)?;
    Ok(())
}

/// Fails unless this process's parent is `supervisor`.
fn check_parent(supervisor: u32) -> Result<(), SupervisorError> {
    if parent_id() == supervisor {
        Ok(())
    } else {
        Err(SupervisorError::Gone(supervisor))
    }
}

/// Where the kernel has no parent-death signal: a thread that sends it when the parent changes.
#[cfg_attr(any(target_os = "linux", target_os = "android"), allow(dead_code))]
fn watch_parent(supervisor: u32) -> Result<(), SupervisorError> {
    std::thread::Builder::new()
        .name("supervisor-watch".into())
        .spawn(move || {
            while parent_id() == supervisor {
                std::thread::sleep(WATCH_INTERVAL);
            }
            let _ = rustix::process::kill_process(rustix::process::getpid(), ON_SUPERVISOR_EXIT);
        })
        .map(drop)
        .map_err(SupervisorError::Setup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_other_than_the_supervisor_is_refused() {
        let parent = parent_id();
        assert!(check_parent(parent).is_ok());
        let other = parent.wrapping_add(1);
        assert!(matches!(check_parent(other), Err(SupervisorError::Gone(p)) if p == other));
    }
}
