//! `conclave cluster` (being written).
use crate::config::LocalClusterConfig;
/// Runs a local cluster until Ctrl-C.
pub fn run(_cfg: &LocalClusterConfig) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
