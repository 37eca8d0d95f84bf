//! The `conclave` binary: a Conclave node, or one of its tools (`cluster`, `ping`).

mod config;
mod tools;

use clap::Parser;

use crate::config::{Cli, Tool};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Tool::Cluster(cfg)) => tools::local_cluster::run(&cfg),
        Some(Tool::Ping(cfg)) => tools::ping::run(&cfg),
        None => std::process::ExitCode::SUCCESS,
    }
}
