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
use tokio::task::JoinHandle;

use ha_config::MonitorConfig;
use ha_core::{Action, Core, Event, EventKind, Input};
use ha_proto::monitor_server::MonitorServer;
use ha_proto::CommandReply;
use ha_tls::ServerTls;

use crate::agents::AgentLink;
use crate::bridge;
use crate::checks::{self, CheckReport};
use crate::clock::Clock;
use crate::control::{ControlService, QueuedCommand};
use crate::coord::{Coord, ElectionEvent, Verdict};
use crate::driver::{AgentDriver, AgentResult};
use crate::kill;
use crate::observe::{serve_metrics, Observer};
use crate::persist::{self, StatusWriter, Stored};
use crate::shutdown::Shutdown;
use crate::snapshot::Snapshot;
use crate::tls::MonitorTls;

/// Runs the monitor until SIGTERM/SIGINT.
pub async fn run(cfg: MonitorConfig) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let clock = Clock::new();
    let spec = crate::spec::cluster_spec(&cfg);
    spec.validate()
        .map_err(|e| anyhow::anyhow!("configuration rejected by the decision core: {e}"))?;

    let (trigger, shutdown) = crate::shutdown::channel();
    tokio::spawn(async move {
        ha_proto::runtime::shutdown_signal().await;
        trigger.fire();
    });

    // TLS material first: a configured but unusable `tls:` stops the monitor, naming the file.
    let tls = MonitorTls::load(&cfg).context("cannot start mutual TLS")?;
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
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

    wait_for_network(&cfg, &pinger, shutdown.clone()).await;
    if shutdown.is_shutdown() {
        return Ok(());
    }

    let agent_deadline = ha_proto::runtime::deadline(cfg.monitor.agent_timeout.duration());
    let links: HashMap<String, AgentLink> = tls
        .links(&cfg, agent_deadline)
        .map_err(|e| anyhow::anyhow!(e))?;

    let mut status = StatusWriter::new(cfg.monitor.status_path.clone());
    let mut observer = Observer::new(&cfg);
    let coord = Coord::spawn(&cfg, clock, shutdown.clone());
    let core = match (&coord, cfg.etcd()) {
        (Some(_), Some(etcd)) => {
            // Nothing is decided before this monitor is elected and has read the state.
            tracing::info!(
                "Coordinated through etcd {:?} (prefix {}): starting as a standby; the checks \
                 run, nothing acts until this monitor leads",
                etcd.endpoints,
                etcd.prefix
            );
            Core::new(spec)
        }
        _ => {
            let stored = Stored::from_file(&cfg);
            let (mut core, save) =
                persist::startup(&cfg, spec, &links, &clock, stored, &mut observer).await;
            if save {
                status.save(&mut core, clock.now_ms());
            }
            tracing::info!("Monitor started in {} mode.", core.mode().name());
            core
        }
    };

    // Channels into the main loop.
    let (check_tx, check_rx) = mpsc::channel::<CheckReport>(1024);
    let (net_tx, net_rx) = mpsc::channel::<bool>(16);
    let (cmd_tx, cmd_rx) = mpsc::channel::<QueuedCommand>(64);
    let (agent_tx, agent_rx) = mpsc::channel::<AgentResult>(256);
    let (kill_tx, kill_rx) = mpsc::channel::<(String, kill::KillOutcome)>(16);
    let (paused_tx, paused_rx) = watch::channel(false);

    let mut tasks = checks::spawn_all(&cfg, pinger.clone(), check_tx, paused_rx, shutdown.clone());
    tasks.push(tokio::spawn(crate::netcheck::run(
        pinger.clone(),
        cfg.monitor.ping_ips.clone(),
        cfg.monitor.ping_interval.duration(),
        net_tx,
        shutdown.clone(),
    )));

    // Readers must never see an empty cluster: publish the start-up state before serving.
    let (snap_tx, snap_rx) = watch::channel(bridge::snapshot(
        &cfg,
        &core,
        bridge::millis(clock.now_ms()),
    ));
    if let Some(addr) = cfg.metrics {
        let metrics = observer.metrics.clone();
        let serving = serve_metrics(addr, metrics, snap_rx.clone(), shutdown.clone()).await?;
        tasks.push(serving);
    }
    let service = ControlService::new(
        snap_rx,
        cmd_tx,
        Duration::from_secs(10),
        MonitorTls::operators(&cfg),
    )
    .with_history(observer.history_path());
    let server = spawn_control_server(service, listener, tls.server.clone(), shutdown.clone());

    let driver = AgentDriver::new(&cfg, links, agent_deadline, agent_tx);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut main = MainLoop {
        cfg,
        clock,
        core,
        status,
        coord,
        driver,
        tls,
        observer,
        replies: HashMap::new(),
        next_command_id: 1,
        tick,
        hup,
        shutdown,
        check_rx,
        net_rx,
        cmd_rx,
        agent_rx,
        kill_rx,
        kill_tx,
        paused_tx,
        snap_tx,
    };
    // Config loaded, control port bound and served, start-up decided: `systemctl start` returns.
    ha_proto::systemd::ready(&format!(
        "{} mode, control port {control_addr}",
        main.core.mode().name()
    ));
    main.run().await;

    ha_proto::systemd::stopping();
    main.shut_down().await;
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

/// How long `kill_host_bin` may run (the helper's own deadline; the request to a helper gets
/// 5 s more for the socket round trip).
pub const KILL_DEADLINE: Duration = Duration::from_secs(30);

/// Serves the `Monitor` gRPC service for ha-control on `listener` until shutdown.
fn spawn_control_server(
    service: ControlService,
    listener: tokio::net::TcpListener,
    server_tls: Option<Arc<ServerTls>>,
    mut shutdown: Shutdown,
) -> JoinHandle<Result<(), tonic::transport::Error>> {
    tokio::spawn(async move {
        let stop = async move { shutdown.recv().await };
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
    })
}

/// The main loop's state: the core, what feeds it and what executes its actions.
struct MainLoop {
    cfg: Arc<MonitorConfig>,
    clock: Clock,
    core: Core,
    status: StatusWriter,
    /// Redundant monitors: this monitor's leadership (`None`: a single monitor).
    coord: Option<Coord>,
    driver: AgentDriver,
    tls: MonitorTls,
    /// History, hooks and metrics of the core's events.
    observer: Observer,
    /// Queued ha-control commands waiting for the core's `Reply`, by command id, with what was
    /// asked and by whom (for the history).
    replies: HashMap<u64, (oneshot::Sender<CommandReply>, String, String)>,
    next_command_id: u64,
    tick: tokio::time::Interval,
    hup: tokio::signal::unix::Signal,
    shutdown: Shutdown,
    check_rx: mpsc::Receiver<CheckReport>,
    net_rx: mpsc::Receiver<bool>,
    cmd_rx: mpsc::Receiver<QueuedCommand>,
    agent_rx: mpsc::Receiver<AgentResult>,
    kill_rx: mpsc::Receiver<(String, kill::KillOutcome)>,
    /// Finished `kill_host_bin` runs come back through here.
    kill_tx: mpsc::Sender<(String, kill::KillOutcome)>,
    /// Pauses the check tasks while the network self-check fails.
    paused_tx: watch::Sender<bool>,
    snap_tx: watch::Sender<Snapshot>,
}

impl MainLoop {
    /// Until shutdown: collect inputs, step the core, execute its actions, publish the
    /// snapshot, drive the agents.
    ///
    /// Feeds systemd's watchdog on every pass (the loop wakes at least every 50 ms): if it
    /// hangs, systemd restarts the monitor (`WatchdogSec=`).
    async fn run(&mut self) {
        let mut watchdog = ha_proto::systemd::Watchdog::from_env();
        while let Some(inputs) = self.collect().await {
            watchdog.pet();
            if !self.may_lead().await {
                let now = self.clock.now_ms();
                self.refuse_commands(&inputs);
                self.core.warm(inputs, bridge::millis(now));
                self.publish(now);
                continue;
            }
            let now = self.clock.now_ms();
            let actions = self.core.step(inputs, bridge::millis(now));
            if self.execute(actions) {
                self.save(now).await;
            }
            self.publish(now);
            // A save to etcd may have taken a while: the lease is checked again before orders.
            let now = self.clock.now_ms();
            if self.coord.as_ref().is_none_or(|c| c.valid(now)) {
                self.driver.send_due(&mut self.core, &self.cfg, now);
            }
        }
    }

    /// Whether this pass acts. A single monitor always does; a coordinated one only while it
    /// leads with a valid lease, after taking over the state of the won term.
    async fn may_lead(&mut self) -> bool {
        let Some(coord) = self.coord.as_mut() else {
            return true;
        };
        match coord.verdict(self.clock.now_ms()) {
            Verdict::Act => true,
            Verdict::Observe => false,
            Verdict::StepDown => {
                self.step_down();
                false
            }
            Verdict::TakeOver => self.take_over().await,
        }
    }

    /// The won term's takeover: the state from etcd (the local status file when etcd has none
    /// yet, which migrates a single monitor), or startup voting; the warm check trackers; the
    /// term on every agent request; then the state saved under the new term.
    async fn take_over(&mut self) -> bool {
        let Some(coord) = self.coord.as_mut() else {
            return true;
        };
        let Some((term, stored)) = coord.load().await else {
            return false;
        };
        let stored = stored.or_file(&self.cfg);
        let spec = self.core.spec().clone();
        let links = self.driver.links().clone();
        let (mut core, _) = persist::startup(
            &self.cfg,
            spec,
            &links,
            &self.clock,
            stored,
            &mut self.observer,
        )
        .await;
        core.adopt_checks(&self.core);
        self.core = core;
        self.driver.set_term(term);
        if let Some(coord) = self.coord.as_mut() {
            coord.took_over(term);
        }
        tracing::warn!(
            "Leading in term {term}: acting from now on ({} mode, epoch {})",
            self.core.mode().name(),
            self.core.epoch()
        );
        self.save(self.clock.now_ms()).await;
        self.coord
            .as_ref()
            .is_some_and(|c| c.valid(self.clock.now_ms()))
    }

    /// The term this monitor acted in is over: its state is dropped (the next leader restores
    /// it from etcd), the check trackers stay warm, waiting commands get an error.
    fn step_down(&mut self) {
        let mut warm = Core::new(self.core.spec().clone());
        warm.adopt_checks(&self.core);
        self.core = warm;
        for (_, (tx, _, _)) in self.replies.drain() {
            let _ = tx.send(CommandReply {
                ok: false,
                message: "ERROR: this monitor lost the leadership before answering; ask the \
                          new leader"
                    .into(),
            });
        }
        tracing::error!(
            "Stepped down: this monitor no longer leads and no longer acts; it keeps its checks \
             running as a standby"
        );
    }

    /// Commands that reached a monitor that may not act now (a leader whose lease renewal is
    /// overdue, or one that just stepped down) are answered at once instead of timing out.
    fn refuse_commands(&mut self, inputs: &[Input]) {
        for input in inputs {
            let Input::Command { id, .. } = input else {
                continue;
            };
            if let Some((tx, _, _)) = self.replies.remove(id) {
                let _ = tx.send(CommandReply {
                    ok: false,
                    message: "ERROR: this monitor does not lead right now (its etcd lease is \
                              not confirmed, or another monitor leads); retry in a few seconds"
                        .into(),
                });
            }
        }
    }

    /// Saves the persisted state: to etcd under this term, or to the status file.
    async fn save(&mut self, now: u64) {
        match self.coord.as_mut() {
            Some(coord) => coord.save(&mut self.core, now).await,
            None => self.status.save(&mut self.core, now),
        }
    }

    /// Publishes the snapshot for ha-control and the metrics.
    fn publish(&self, now: u64) {
        let mut snap = bridge::snapshot(&self.cfg, &self.core, bridge::millis(now));
        snap.leadership = self
            .coord
            .as_ref()
            .map(Coord::leadership)
            .unwrap_or_default();
        if let crate::snapshot::Leadership::Leading { me, term } = &snap.leadership {
            snap.show.leader = me.clone();
            snap.show.leader_term = *term;
        }
        let _ = self.snap_tx.send(snap);
    }

    /// After the main loop ended: the last save, then (a leader) the lease given up so a
    /// standby takes over at once.
    async fn shut_down(&mut self) {
        let now = self.clock.now_ms();
        match self.coord.as_mut() {
            None => {
                tracing::info!("shutting down: saving the status file");
                self.status.save(&mut self.core, now);
            }
            Some(coord) if coord.valid(now) => {
                tracing::info!("shutting down: saving the state to etcd, giving up the leadership");
                coord.save(&mut self.core, now).await;
                coord.resign().await;
            }
            Some(_) => {}
        }
    }

    /// Waits for the next event (or the 50 ms tick) and drains whatever else is already
    /// queued, so one step sees it all. `None` on shutdown.
    async fn collect(&mut self) -> Option<Vec<Input>> {
        let mut inputs: Vec<Input> = Vec::new();
        tokio::select! {
            _ = self.shutdown.recv() => return None,
            _ = self.tick.tick() => {}
            Some(()) = self.hup.recv() => self.driver.reload(&self.tls, &self.cfg),
            Some(r) = self.check_rx.recv() => inputs.push(self.check_input(r)),
            Some(up) = self.net_rx.recv() => {
                let _ = self.paused_tx.send(!up);
                inputs.push(bridge::network_input(up));
            }
            Some(q) = self.cmd_rx.recv() => {
                let id = self.next_command_id;
                self.next_command_id += 1;
                let what = format!("{:?}", q.command);
                inputs.push(bridge::command_input(id, q.command));
                self.replies.insert(id, (q.reply, what, q.operator));
            }
            Some(a) = self.agent_rx.recv() => inputs.extend(self.agent_input(a)),
            Some(ev) = next_election_event(&mut self.coord) => {
                if let Some(c) = self.coord.as_mut() {
                    c.on_event(ev);
                }
            }
            // The core logs the result (and what it means for the host).
            Some((host, out)) = self.kill_rx.recv() => inputs.push(bridge::kill_input(&host, &out)),
        }
        // Drain whatever else is already queued so one step sees it all.
        while let Ok(r) = self.check_rx.try_recv() {
            inputs.push(self.check_input(r));
        }
        while let Ok(a) = self.agent_rx.try_recv() {
            inputs.extend(self.agent_input(a));
        }
        Some(inputs)
    }

    fn check_input(&self, r: CheckReport) -> Input {
        let m = &self.observer.metrics;
        m.check_run(&r.host, r.check.name(), r.took, r.observation.lag_secs);
        bridge::check_input(r)
    }

    fn agent_input(&mut self, a: AgentResult) -> Option<Input> {
        let (host, took, ok) = a.measure();
        self.observer.metrics.agent_call(host, took, ok);
        self.driver.on_result(a)
    }

    /// Executes the core's actions: command replies, kills, log lines. Returns whether the
    /// state must be saved (once, after all of them).
    fn execute(&mut self, actions: Vec<Action>) -> bool {
        let mut save = false;
        let mut events = Vec::new();
        for action in actions {
            match action {
                Action::Reply { id, ok, message } => {
                    if let Some((tx, what, operator)) = self.replies.remove(&id) {
                        events.push(admin_event(&what, ok, &message, operator));
                        let _ = tx.send(CommandReply { ok, message });
                    }
                }
                Action::Event(e) => events.push((e, None)),
                Action::Kill { host, ping_ok } => {
                    let bin = self.cfg.monitor.kill_host_bin.clone();
                    let socket = self.cfg.monitor.kill_host_socket.clone();
                    let tx = self.kill_tx.clone();
                    tracing::warn!(
                        "Running kill_host_bin for host '{host}' (ping {})",
                        if ping_ok { "OK" } else { "not OK" }
                    );
                    tokio::spawn(async move {
                        let out = match socket {
                            Some(s) => {
                                kill::helper::request(
                                    &s,
                                    &host,
                                    ping_ok,
                                    KILL_DEADLINE + Duration::from_secs(5),
                                )
                                .await
                            }
                            None => kill::run(&bin, &host, ping_ok, KILL_DEADLINE).await,
                        };
                        let _ = tx.send((host, out)).await;
                    });
                }
                Action::Log { level, message } => bridge::log(level, &message),
                Action::SaveStatus => save = true,
            }
        }
        self.observer.record(events);
        save
    }
}

/// The history's record of an operator command: what was asked, by whom, and the answer.
fn admin_event(what: &str, ok: bool, reply: &str, operator: String) -> (Event, Option<String>) {
    let result = if ok { "done" } else { "refused" };
    let mut e = Event::new(
        EventKind::AdminCommand,
        format!("{what} by {operator}: {result}: {reply}"),
    );
    e.to = Some(result.to_string());
    (e, Some(operator))
}

/// The next event of the election task; never, for a single monitor.
async fn next_election_event(coord: &mut Option<Coord>) -> Option<ElectionEvent> {
    match coord {
        Some(c) => c.next_event().await,
        None => std::future::pending().await,
    }
}

/// Blocks until one `ping_ips` address answers (docs/mmm-behaviour.md §3.7), or shutdown.
async fn wait_for_network(
    cfg: &MonitorConfig,
    pinger: &surge_ping::Client,
    mut shutdown: Shutdown,
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
            ha_proto::systemd::status("waiting for the network: none of monitor.ping_ips answers");
            warned = true;
        }
        // Alive, and rightly waiting: systemd must not give up on the start meanwhile.
        ha_proto::systemd::extend_start(interval + deadline + Duration::from_secs(10));
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.recv() => return,
        }
    }
}
