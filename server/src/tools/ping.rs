//! `conclave ping` (being written).
use crate::config::PingConfig;
/// Pings a node; exit 0 on PONG.
pub fn run(_cfg: &PingConfig) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
