//! The I/O shell around the pure core: feeds it observations, executes its actions.
//!
//! ```text
//!  check tasks (host × check) ─┐
//!  network self-check ─────────┤
//!  agent replies ──────────────┼─► main loop ── core.step(inputs, now) ──► actions
//!  kill_host results ──────────┤        │                                  (replies, kills,
//!  ha-control commands ────────┘        │                                   logs, status file)
//!                                       ├─► snapshot (watch) ─► Monitor gRPC service (show/checks)
//!                                       └─► agent driver: desired state per host ─► ApplyState
//! ```
//!
//! Nothing here decides anything: every "should we" question is answered by `ha_core`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot, watch};

use ha_config::MonitorConfig;
use ha_core::{Action, Core, DesiredState, Input};
use ha_proto::monitor_server::MonitorServer;
use ha_proto::CommandReply;

use crate::agents::{AgentError, AgentLink};
use crate::bridge;
use crate::checks::{self, CheckReport};
use crate::clock::Clock;
use crate::control::{ControlService, QueuedCommand};
use crate::kill;
use crate::status_file;
use crate::tls::MonitorTls;

/// A finished agent call on its way back to the main loop.
struct AgentResult {
    host: String,
    result: Result<ha_proto::AgentStatus, AgentError>,
}

/// Per-host bookkeeping of the agent driver.
#[derive(Default)]
struct DriverSlot {
    in_flight: bool,
    last_sent: Option<DesiredState>,
    last_sent_at: u64,
}

/// Runs the monitor until SIGTERM/SIGINT.
pub async fn run(cfg: MonitorConfig) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let clock = Clock::new();
    let spec = crate::spec::cluster_spec(&cfg);
    spec.validate()
        .map_err(|e| anyhow::anyhow!("configuration rejected by the decision core: {e}"))?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    tokio::spawn(async move {
        ha_proto::runtime::shutdown_signal().await;
        let _ = shutdown_tx.send(true);
    });

    // TLS material first: a configured but unusable `tls:` stops the monitor, naming the file.
    let tls = MonitorTls::load(&cfg).context("cannot start mutual TLS")?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install the SIGHUP handler (certificate reload)")?;

    // Bind the control port first: a monitor that cannot be controlled must not run
    // (mysql-mmm kept running without its listener, §10.26).
    let control_addr = cfg.control_addr();
    let listener = tokio::net::TcpListener::bind(control_addr)
        .await
        .with_context(|| {
            format!("cannot listen for ha-control on {control_addr} (monitor.ip / monitor.port)")
        })?;

    let pinger = Arc::new(
        surge_ping::Client::new(&surge_ping::Config::default()).context(
            "cannot open an ICMP socket for the ping check (run as root or grant CAP_NET_RAW)",
        )?,
    );

    wait_for_network(&cfg, &pinger, shutdown_rx.clone()).await;
    if *shutdown_rx.borrow() {
        return Ok(());
    }

    let agent_deadline = ha_proto::runtime::deadline(cfg.monitor.agent_timeout.duration());
    let mut links: HashMap<String, AgentLink> = tls
        .links(&cfg, agent_deadline)
        .map_err(|e| anyhow::anyhow!(e))?;

    let mut status = StatusWriter::new(cfg.monitor.status_path.clone());
    let mut core = startup(&cfg, spec, &links, &clock, &mut status).await;
    tracing::info!("Monitor started in {} mode.", core.mode().name());

    // Channels into the main loop.
    let (check_tx, mut check_rx) = mpsc::channel::<CheckReport>(1024);
    let (net_tx, mut net_rx) = mpsc::channel::<bool>(16);
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<QueuedCommand>(64);
    let (agent_tx, mut agent_rx) = mpsc::channel::<AgentResult>(256);
    let (kill_tx, mut kill_rx) = mpsc::channel::<(String, kill::KillOutcome)>(16);
    let (paused_tx, paused_rx) = watch::channel(false);

    let mut tasks = checks::spawn_all(
        &cfg,
        pinger.clone(),
        check_tx,
        paused_rx,
        shutdown_rx.clone(),
    );
    tasks.push(tokio::spawn(crate::netcheck::run(
        pinger.clone(),
        cfg.monitor.ping_ips.clone(),
        cfg.monitor.ping_interval.duration(),
        net_tx,
        shutdown_rx.clone(),
    )));

    // Each agent's last_error as last logged: logged once when it changes.
    let mut agent_errors: HashMap<String, String> = HashMap::new();
    // Readers must never see an empty cluster: publish the start-up state before serving.
    let (snap_tx, snap_rx) = watch::channel(bridge::snapshot(&cfg, &core));
    let service = ControlService::new(
        snap_rx,
        cmd_tx,
        Duration::from_secs(10),
        MonitorTls::operators(&cfg),
    );
    let mut srv_shutdown = shutdown_rx.clone();
    let server_tls = tls.server.clone();
    let server = tokio::spawn(async move {
        let stop = async move {
            let _ = srv_shutdown.wait_for(|s| *s).await;
        };
        let builder = tonic::transport::Server::builder()
            .concurrency_limit_per_connection(8)
            .add_service(MonitorServer::new(service).max_decoding_message_size(64 * 1024));
        match server_tls {
            Some(t) => {
                let incoming = ha_tls::incoming(listener, t, Duration::from_secs(5));
                builder.serve_with_incoming_shutdown(incoming, stop).await
            }
            None => {
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                builder.serve_with_incoming_shutdown(incoming, stop).await
            }
        }
    });

    let agent_period_ms = cfg.monitor.agent_period.duration().as_millis() as u64;
    let mut slots: HashMap<String, DriverSlot> = HashMap::new();
    let mut replies: HashMap<u64, oneshot::Sender<CommandReply>> = HashMap::new();
    let mut next_command_id: u64 = 1;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = shutdown_rx.clone();

    loop {
        let mut inputs: Vec<Input> = Vec::new();
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => break,
            _ = tick.tick() => {}
            Some(()) = hup.recv() => tls.reload(&cfg, agent_deadline, &mut links),
            Some(r) = check_rx.recv() => inputs.push(bridge::check_input(r)),
            Some(up) = net_rx.recv() => {
                let _ = paused_tx.send(!up);
                inputs.push(bridge::network_input(up));
            }
            Some(q) = cmd_rx.recv() => {
                let id = next_command_id;
                next_command_id += 1;
                inputs.push(bridge::command_input(id, q.command));
                replies.insert(id, q.reply);
            }
            Some(a) = agent_rx.recv() => {
                inputs.push(on_agent_result(&mut slots, &mut agent_errors, a));
            }
            Some((host, out)) = kill_rx.recv() => {
                if out.ok {
                    tracing::info!("Killed host '{host}': {}", out.output);
                } else {
                    tracing::error!("Could not kill host '{host}': {}", out.output);
                }
                inputs.push(bridge::kill_input(&host, &out));
            }
        }
        // Drain whatever else is already queued so one step sees it all.
        while let Ok(r) = check_rx.try_recv() {
            inputs.push(bridge::check_input(r));
        }
        while let Ok(a) = agent_rx.try_recv() {
            inputs.push(on_agent_result(&mut slots, &mut agent_errors, a));
        }

        let now = clock.now_ms();
        let actions = core.step(inputs, bridge::millis(now));
        let mut save = false;
        for action in actions {
            match action {
                Action::Reply { id, ok, message } => {
                    if let Some(tx) = replies.remove(&id) {
                        let _ = tx.send(CommandReply { ok, message });
                    }
                }
                Action::Kill { host, ping_ok } => {
                    let bin = cfg.monitor.kill_host_bin.clone();
                    let tx = kill_tx.clone();
                    tracing::warn!(
                        "Running kill_host_bin for host '{host}' (ping {})",
                        if ping_ok { "OK" } else { "not OK" }
                    );
                    tokio::spawn(async move {
                        let out = kill::run(&bin, &host, ping_ok, Duration::from_secs(30)).await;
                        let _ = tx.send((host, out)).await;
                    });
                }
                Action::Log { level, message } => bridge::log(level, &message),
                Action::SaveStatus => save = true,
            }
        }
        if save {
            status.save(&mut core, now);
        }
        let _ = snap_tx.send(bridge::snapshot(&cfg, &core));

        // Agent driver: send each host its desired state when it changed, and at least every
        // agent_period (heartbeat and writer-lease renewal).
        for h in &cfg.hosts {
            let Some(desired) = core.desired_state(&h.name, bridge::millis(now)) else {
                continue;
            };
            let slot = slots.entry(h.name.clone()).or_default();
            if slot.in_flight {
                continue;
            }
            let changed = desired.needs_send(slot.last_sent.as_ref());
            if !changed && now.saturating_sub(slot.last_sent_at) < agent_period_ms {
                continue;
            }
            let Some(link) = links.get(&h.name).cloned() else {
                continue;
            };
            core.note_sent(&h.name, &desired, bridge::millis(now));
            slot.in_flight = true;
            let req = bridge::apply_request(&cfg, &h.name, &desired);
            slot.last_sent = Some(desired);
            slot.last_sent_at = now;
            let tx = agent_tx.clone();
            let host = h.name.clone();
            tokio::spawn(async move {
                let result = link.apply(req).await;
                let _ = tx.send(AgentResult { host, result }).await;
            });
        }
    }

    tracing::info!("shutting down: saving the status file");
    status.save(&mut core, clock.now_ms());
    for t in tasks {
        t.abort();
    }
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Err(e))) => tracing::warn!("control service ended with an error: {e}"),
        Err(_) => tracing::warn!("control service did not stop within 5 s"),
        _ => {}
    }
    Ok(())
}

/// Blocks until one `ping_ips` address answers (mmm-reference §3.7), or shutdown.
async fn wait_for_network(
    cfg: &MonitorConfig,
    pinger: &surge_ping::Client,
    mut shutdown: watch::Receiver<bool>,
) {
    let interval = cfg.monitor.ping_interval.duration();
    let deadline = interval.clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut seq = 0u16;
    let mut warned = false;
    loop {
        seq = seq.wrapping_add(1);
        if crate::netcheck::network_reachable(pinger, &cfg.monitor.ping_ips, seq, deadline).await {
            return;
        }
        if !warned {
            tracing::warn!(
                "Network is unreachable: none of monitor.ping_ips answers; waiting before taking any decision"
            );
            warned = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Writes the status file for the core and tells the core whether it worked: the core sends a
/// new writer its role only once the file records it (write-ahead), and retries a failed save.
struct StatusWriter {
    path: std::path::PathBuf,
    /// The last save error logged (logged once until it changes or the save works again).
    failing: Option<String>,
}

impl StatusWriter {
    fn new(path: std::path::PathBuf) -> Self {
        StatusWriter {
            path,
            failing: None,
        }
    }

    fn save(&mut self, core: &mut Core, now_ms: u64) {
        let snapshot = core.persisted();
        let failing = &mut self.failing;
        match status_file::save(&self.path, &snapshot, now_ms) {
            Ok(()) => {
                core.saved(&snapshot);
                if failing.take().is_some() {
                    tracing::info!("status file {} written again", self.path.display());
                }
            }
            Err(e) => {
                core.save_failed();
                let text = e.to_string();
                if failing.as_deref() != Some(text.as_str()) {
                    tracing::error!(
                        "{text}; retrying with every pass. Until it works no new writer is promoted \
                         (a restarted monitor must know of every writer grant)"
                    );
                }
                *failing = Some(text);
            }
        }
    }
}

/// Start-up: status file + what every agent and host reports → the core's startup voting.
async fn startup(
    cfg: &MonitorConfig,
    spec: ha_core::ClusterSpec,
    links: &HashMap<String, AgentLink>,
    clock: &Clock,
    status: &mut StatusWriter,
) -> Core {
    let now = bridge::millis(clock.now_ms());
    match status_file::load::<ha_core::PersistedState>(&cfg.monitor.status_path) {
        Ok(Some(stored)) => {
            tracing::info!(
                "Restored states and roles from the status file {} (epoch {})",
                cfg.monitor.status_path.display(),
                stored.epoch
            );
            return Core::restore(spec, &stored, now);
        }
        Ok(None) => tracing::warn!(
            "No status file at {}: starting up without status information; determining \
             states and roles from the agents (startup voting).",
            cfg.monitor.status_path.display()
        ),
        Err(e) => {
            tracing::error!("{e}; determining states and roles from the agents (startup voting)")
        }
    }
    let mut queries = Vec::new();
    for h in &cfg.hosts {
        let Some(link) = links.get(&h.name).cloned() else {
            continue;
        };
        queries.push(tokio::spawn(async move {
            let agent = retry(3, || link.status()).await;
            let system = retry(3, || link.system_status()).await;
            (link.host().to_string(), agent, system)
        }));
    }
    let mut infos = Vec::new();
    for q in queries {
        match q.await {
            Ok((host, agent, system)) => {
                if let Err(e) = &agent {
                    tracing::error!("Startup: {e}");
                }
                if let Err(e) = &system {
                    tracing::error!("Startup: {e}");
                }
                infos.push(bridge::startup_info(cfg, &host, agent.ok(), system.ok()));
            }
            Err(e) => tracing::error!("Startup query task failed: {e}"),
        }
    }
    let now = bridge::millis(clock.now_ms());
    let (mut core, actions) = Core::startup(spec, None, infos, now);
    for action in actions {
        match action {
            Action::Log { level, message } => bridge::log(level, &message),
            Action::SaveStatus => status.save(&mut core, clock.now_ms()),
            _ => {}
        }
    }
    core
}

async fn retry<T, F, Fut>(attempts: usize, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let mut last = String::new();
    for _ in 0..attempts.max(1) {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A finished agent call: frees the host's driver slot, logs a changed agent error, and turns
/// the reply into the core's input.
fn on_agent_result(
    slots: &mut HashMap<String, DriverSlot>,
    agent_errors: &mut HashMap<String, String>,
    a: AgentResult,
) -> Input {
    if let Some(slot) = slots.get_mut(&a.host) {
        slot.in_flight = false;
    }
    log_agent_error(agent_errors, &a.host, &a.result);
    bridge::agent_input(&a.host, &a.result)
}

/// Logs an agent's `last_error` once each time it changes (e.g. the agent refusing to replicate
/// into a diverged GTID history says why, and how to fix it). Unreachable agents are reported
/// by the core; their error text is not the agent's own.
fn log_agent_error(
    seen: &mut HashMap<String, String>,
    host: &str,
    result: &Result<ha_proto::AgentStatus, AgentError>,
) {
    let Ok(s) = result else { return };
    let prev = seen.get(host).map(String::as_str).unwrap_or("");
    if prev == s.last_error {
        return;
    }
    if s.last_error.is_empty() {
        tracing::info!("Agent on host '{host}' reports no error any more");
    } else {
        tracing::warn!("Agent on host '{host}' reports: {}", s.last_error);
    }
    seen.insert(host.to_string(), s.last_error.clone());
}
