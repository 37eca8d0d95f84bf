//! The `conclave` binary: a Conclave node, or one of its tools (`cluster`, `ping`).
//!
//! Start-up: parse the configuration, claim the data directory (one process per
//! directory), open the keyspace, start the Raft group that holds the locks, bind the
//! client port, then serve until `SHUTDOWN`, SIGTERM or SIGINT, and stop cleanly.

mod acl;
mod allocator;
mod builtin;
mod clients;
mod coherent_cache;
mod command_table;
mod config;
mod connection;
mod data_dir;
mod debug_kv;
mod dispatch;
mod groups;
mod info;
mod listener;
mod migrate;
mod monitor;
mod node;
mod ops;
mod pause;
mod persist;
mod pubsub;
mod push;
mod scripting;
mod slowlog;
mod stats;
mod supervised;
mod tools;
mod tracking;
mod transaction;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_cache::keyspace::{Keyspace, KeyspaceConfig};
use parking_lot::RwLock;
use tokio::net::TcpListener;
use tracing::{error, info};

use crate::config::{Cli, NodeConfig, Tool};
use crate::node::{Node, RuntimeConfig};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let (Some(tool), Some(flag)) = (&cli.command, node_flag_given(&matches)) {
        // `conclave --port 7000 cluster` would otherwise run the tool and silently
        // ignore the node option.
        let (name, hint) = match tool {
            Tool::Cluster(_) => (
                "cluster",
                "its own --base-port/--base-cluster-port/--data-dir, and node options after `--`",
            ),
            Tool::Ping(_) => ("ping", "its own --host/--port/--password"),
        };
        eprintln!("error: --{flag} is a node option and `conclave {name}` does not use it; `conclave {name}` takes {hint} (see `conclave {name} --help`)");
        return ExitCode::from(2);
    }
    match cli.command {
        Some(Tool::Cluster(cfg)) => tools::local_cluster::run(&cfg),
        Some(Tool::Ping(cfg)) => tools::ping::run(&cfg),
        None => run_node(cli.node),
    }
}

/// The first node option given on the command line (not from the environment or a
/// default), by its long name.
fn node_flag_given(matches: &clap::ArgMatches) -> Option<String> {
    matches
        .ids()
        .find(|id| {
            matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine)
        })
        .map(|id| id.as_str().replace('_', "-"))
}

/// Log filter without `RUST_LOG`. openraft warns on every normal election and logs every
/// failed replication attempt to a peer that is down (several lines a second); the
/// cluster channel logs a peer going away and coming back once each instead.
const DEFAULT_LOG_FILTER: &str = "info,openraft=error,openraft::replication=off";

fn run_node(config: NodeConfig) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    // First: a supervisor killed while this node starts must not leave it running.
    if let Some(supervisor) = config.supervisor_pid {
        if let Err(e) = supervised::exit_with(supervisor) {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    }
    // Held until the process ends, and taken before anything in the directory is opened.
    let _data_dir = match data_dir::DataDirLock::acquire(&config.data_dir) {
        Ok(lock) => lock,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.threads > 0 {
        builder.worker_threads(config.threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = %e, "node failed");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: NodeConfig) -> anyhow::Result<()> {
    let policy = config
        .maxmemory_policy
        .parse()
        .map_err(|_| config::ConfigError::BadPolicy(config.maxmemory_policy.clone()))?;
    let keyspace = Arc::new(Keyspace::new(KeyspaceConfig {
        maxmemory: config.maxmemory,
        policy,
    }));
    let listener = bind("--port", &config.client_addr()).await?;
    let cluster_listener = bind("--cluster-port", &config.cluster_addr()?).await?;
    let metrics_listener = match config.metrics_addr()? {
        Some(addr) => Some(bind("--metrics-port", &addr).await?),
        None => None,
    };
    let (shutdown, _) = tokio::sync::watch::channel(false);
    // The client address this node introduces itself with on the cluster channel (shown
    // by peers' RAFT.STATUS): the bound port, with the host other members reach it by.
    let own_cluster_addr = config
        .peer_list()?
        .into_iter()
        .find(|p| p.id == config.id)
        .map(|p| p.addr)
        .unwrap_or(config.cluster_addr()?);
    let bound_client = format!("{}:{}", config.bind, listener.local_addr()?.port());
    let peers = Arc::new(conclave_cluster::Peers::new(
        config.id,
        config.cluster_secret.clone(),
        ops::node_view::advertised(&bound_client, &own_cluster_addr),
    ));
    let directory = peers.directory().clone();
    let hosted = groups::start(&config, peers.clone()).await?;
    let coherent = start_coherence(&config, &keyspace, &peers, &hosted.meta)?;
    // The cluster channel's router: every hosted group, the services that take forwarded
    // commands, and (once the node exists) its STATUS. Served from here on: the meta
    // group needs its peers to record the queue shard count, and the queue shards start
    // only then.
    let router = Arc::new(conclave_cluster::Router::new());
    for group in &hosted.groups {
        router.add_group(group.clone());
    }
    router.add_service(conclave_locks::service::SERVICE, hosted.locks.clone());
    router.add_service(conclave_cluster::meta::SERVICE, hosted.meta.clone());
    router.add_service(
        conclave_cluster::meta::functions_sync::SYNC_SERVICE,
        Arc::new(conclave_cluster::meta::functions_sync::FunctionsSync(
            hosted.meta.clone(),
        )),
    );
    if let Some(coherent) = &coherent {
        router.add_service(conclave_cache::coherent::SERVICE, coherent.clone());
    }
    router.set_directory(directory);
    tokio::spawn(conclave_cluster::peer_listener::run(
        cluster_listener,
        router.clone(),
        config.cluster_secret.clone(),
        shutdown.subscribe(),
    ));
    let queues_started = groups::start_queues(&config, &hosted, peers).await?;
    let mut all_groups = hosted.groups.clone();
    for group in queues_started.service.groups() {
        router.add_group(group.clone());
        all_groups.push(group.clone());
    }
    router.add_service(
        conclave_queues::service::SERVICE,
        queues_started.service.clone(),
    );
    let locks = hosted.locks.clone();
    tokio::spawn(conclave_locks::service::driver::run(
        locks.clone(),
        shutdown.subscribe(),
    ));
    let queues = queues_started.service.clone();
    info!(
        groups = all_groups.len(),
        queue_shards = queues.shard_count(),
        "raft groups started (locks, meta, the queue shards this node replicates)"
    );
    tokio::spawn(conclave_queues::service::driver::run(
        queues_started,
        shutdown.subscribe(),
    ));
    let persistence = Arc::new(persistence(&config, &keyspace, coherent.is_some())?);
    persistence.load_at_start()?;
    let (rebind, rebinds) = tokio::sync::mpsc::unbounded_channel();
    let clients = Arc::new(clients::Clients::default());
    let tracker = Arc::new(tracking::Tracker::new(clients.clone()));
    keyspace.set_invalidator(tracker.clone());
    let acl = acl::Acl::new(config.requirepass.as_deref().filter(|p| !p.is_empty()));
    let node = Arc::new(Node {
        runtime: RuntimeConfig {
            requirepass: RwLock::new(config.requirepass.clone().filter(|p| !p.is_empty())),
            maxclients: AtomicUsize::new(config.maxclients),
            timeout: AtomicU64::new(config.timeout),
            proto_max_bulk_len: AtomicU64::new(config.proto_max_bulk_len),
            lock_default_ttl: AtomicU64::new(config.lock_default_ttl),
            hz: AtomicU64::new(u64::from(config.hz).clamp(1, 500)),
            busy_reply_threshold: AtomicU64::new(config.busy_reply_threshold),
            port: AtomicU64::new(u64::from(listener.local_addr()?.port())),
            bind: RwLock::new(config.bind.clone()),
            query_buffer_limit: AtomicU64::new(1024 * 1024 * 1024),
            repl_backlog_size: AtomicU64::new(1024 * 1024),
            rebind,
        },
        config,
        keyspace,
        coherent,
        clients,
        tracker,
        pubsub: pubsub::PubSub::default(),
        pause: pause::Pause::default(),
        stats: stats::Stats::default(),
        command_stats: ops::command_stats::CommandStats::default(),
        scripting: scripting::Scripting::default(),
        locks,
        queues,
        meta: hosted.meta,
        debug_kv: hosted.debug_kv,
        groups: all_groups,
        replid: (0..40)
            .map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0'))
            .collect(),
        started: Instant::now(),
        persistence,
        monitors: monitor::Monitors::default(),
        slowlog: slowlog::SlowLog::default(),
        acl,
        acl_version: parking_lot::Mutex::new(0),
        shutdown,
    });
    // The replicated users first: a client must meet them from its first command.
    acl::replicated::install(&node);
    tokio::spawn(acl::replicated::follow(node.clone()));
    router.set_status(node.clone());
    let addr = listener.local_addr()?;
    info!(%addr, id = node.config.id, "Conclave node ready to accept connections (try: redis-cli -p {})", addr.port());
    tokio::spawn(housekeeping(node.clone()));
    tokio::spawn(introduce(node.clone()));
    if let Some(l) = metrics_listener {
        tokio::spawn(ops::serve(node.clone(), l));
    }
    tokio::spawn(listener::run(node.clone(), listener, rebinds));
    let signalled = wait_for_shutdown(&node).await;
    info!("shutting down");
    node.request_shutdown();
    // A script still running (even one that wrote) stops.
    node.scripting.abort();
    // A signal saves as SHUTDOWN without options does (the command saved already).
    if signalled && node.persistence.saving_configured() {
        let p = node.persistence.clone();
        match tokio::task::spawn_blocking(move || p.save_waiting()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "saving the snapshot at shutdown failed"),
            Err(e) => error!(error = %e, "saving the snapshot at shutdown failed"),
        }
    }
    for group in &node.groups {
        if let Err(e) = group.shutdown().await {
            error!(group = group.group(), error = %e, "raft shutdown failed");
        }
    }
    Ok(())
}

/// The coherence driver of a node in a cluster of several (`--peers`), on the meta
/// group's ring (the live members, epochs committed there); none on one node.
fn start_coherence(
    config: &NodeConfig,
    keyspace: &Arc<Keyspace>,
    peers: &Arc<conclave_cluster::Peers>,
    meta: &Arc<conclave_cluster::meta::Meta>,
) -> anyhow::Result<Option<Arc<conclave_cache::coherent::Coherent>>> {
    use conclave_cache::coherent::Coherent;
    let members = config.peer_list()?;
    if members.len() < 2 {
        return Ok(None);
    }
    let ring = meta.clone();
    let clients = members
        .iter()
        .filter(|p| p.id != config.id)
        .map(|p| (p.id, peers.client(&p.addr)))
        .collect();
    let cfg = conclave_cache::coherence::Config {
        lease_ms: config.cache_lease_ms.max(1),
        margin_ms: (config.cache_lease_ms / 20).max(10),
        // The control plane's lease: a node grants only this long after it last read the
        // ring from the meta leader (it reads every quarter of it), and a key that moved
        // waits a lease, the margin and this before its new home grants it.
        epoch_spread_ms: config.cache_lease_ms.clamp(500, 2000),
        retry_ms: (config.cache_lease_ms / 10).clamp(5, 200),
    };
    let coherent = Coherent::start(
        config.id,
        keyspace.clone(),
        ring,
        clients,
        cfg,
        config.no_leader_wait(),
    );
    if let Some(bug) = &config.cache_planted_bug {
        coherent.plant_bug(bug).map_err(anyhow::Error::msg)?;
    }
    Ok(Some(coherent))
}

/// Binds a listening socket; the error names the flag and the address.
async fn bind(flag: &str, addr: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({flag}): {e}"))
}

/// The node's timer: active expiry and the ops/s sampler, `hz` times a second.
async fn housekeeping(node: Arc<Node>) {
    let mut shutdown = node.shutdown.subscribe();
    let mut last_trim = Instant::now();
    loop {
        // `hz` may change at run time (CONFIG SET hz).
        let hz = node
            .runtime
            .hz
            .load(std::sync::atomic::Ordering::Relaxed)
            .clamp(1, 500);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(1000 / hz)) => {}
            _ = shutdown.changed() => return,
        }
        node.stats.sample();
        node.persistence.cron();
        // Once a second, as Redis's cron visits each client about once a second.
        if last_trim.elapsed() >= Duration::from_secs(1) {
            last_trim = Instant::now();
            trim_idle_query_buffers(&node);
        }
        let ks = node.keyspace.clone();
        // Expiry walks shards under their locks: keep it off the async workers' hot path.
        let _ =
            tokio::task::spawn_blocking(move || ks.active_expire_cycle(Duration::from_millis(2)))
                .await;
    }
}

/// Asks every client idle for more than 2 s that still holds a query buffer to free it
/// (Redis's `clientsCronResizeQueryBuffer`); each such client is asked once.
fn trim_idle_query_buffers(node: &Node) {
    use std::sync::atomic::Ordering::Relaxed;
    for c in node.clients.all() {
        let held = c.state.qbuf.load(Relaxed) + c.state.qbuf_free.load(Relaxed);
        if held > 0 && c.state.qbuf.load(Relaxed) == 0 && c.idle_ms() > 2000 && !c.is_blocked() {
            c.request_trim();
        }
    }
}

/// Opens a connection to each member of group 0 whose client address this node does not
/// know yet (the handshake exchanges them, see `conclave_cluster::directory`): followers
/// never talk to each other otherwise. Once every member is known this costs one map
/// lookup per member every 2 s.
async fn introduce(node: Arc<Node>) {
    let mut shutdown = node.shutdown.subscribe();
    let peers = node.locks.peers();
    loop {
        let members: Vec<(u64, String)> = node
            .group(conclave_raft_store::LOCK_GROUP)
            .map(|g| {
                g.metrics()
                    .membership_config
                    .membership()
                    .nodes()
                    .map(|(id, n)| (*id, n.addr.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let unknown = peers.directory().unknown(members.iter().map(|(id, _)| *id));
        for (_, addr) in members.iter().filter(|(id, _)| unknown.contains(id)) {
            let client = peers.client(addr);
            tokio::spawn(async move {
                let _ = client.call(&[b"PING"], Duration::from_millis(500)).await;
            });
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Resolves on SIGTERM, SIGINT (`true`) or a `SHUTDOWN` command (`false`).
async fn wait_for_shutdown(node: &Node) -> bool {
    let mut shutdown = node.shutdown.subscribe();
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            info!("SIGINT received");
            true
        }
        _ = term => {
            info!("SIGTERM received");
            true
        }
        _ = shutdown.changed() => false,
    }
}

/// The snapshot state from `--save`, `--dir`, `--dbfilename` (see `persist`).
fn persistence(
    config: &NodeConfig,
    keyspace: &Arc<Keyspace>,
    cluster: bool,
) -> Result<persist::Persistence, config::ConfigError> {
    let params = persist::parse_save_params(&config.save)
        .map_err(|why| config::ConfigError::BadSave(config.save.clone(), why))?;
    if cluster && !params.is_empty() {
        return Err(config::ConfigError::SaveOnCluster(
            config.save.clone(),
            persist::CLUSTER_REFUSAL,
        ));
    }
    if config.dbfilename.contains('/') {
        return Err(config::ConfigError::BadDbFilename(
            config.dbfilename.clone(),
        ));
    }
    let dir = config.dir.clone().unwrap_or(config.data_dir.clone());
    Ok(persist::Persistence::new(
        keyspace.clone(),
        params,
        dir,
        config.dbfilename.clone(),
        cluster,
    ))
}
