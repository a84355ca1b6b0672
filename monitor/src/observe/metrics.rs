//! Prometheus metrics (monitor.yaml `metrics:`), in the OpenMetrics text format of the
//! `prometheus-client` crate.
//!
//! Counters and histograms (events, promotions, hooks, check and agent-call latency) live for
//! the process; everything that describes the present (host states, roles, the lease, semi-sync,
//! the mode) is read from the latest snapshot at scrape time, so it cannot drift from `show`.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use ha_core::{Event, EventKind, HostState};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::snapshot::Snapshot;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn latency_buckets() -> Histogram {
    // 1 ms … ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn promotion_buckets() -> Histogram {
    // 0.1 s … ~100 s
    Histogram::new(exponential_buckets(0.1, 2.0, 11))
}

/// The process-lifetime series.
pub struct Metrics {
    events: Family<Labels, Counter>,
    promotions: Family<Labels, Counter>,
    promotion_seconds: Histograms,
    last_promotion: Family<Labels, FloatGauge>,
    last_promotion_time: FloatGauge,
    hook_runs: Family<Labels, Counter>,
    history_failures: Counter,
    check_seconds: Histograms,
    agent_seconds: Histograms,
    agent_failures: Family<Labels, Counter>,
    lag: Family<Labels, FloatGauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            events: Family::default(),
            promotions: Family::default(),
            promotion_seconds: Family::new_with_constructor(promotion_buckets),
            last_promotion: Family::default(),
            last_promotion_time: FloatGauge::default(),
            hook_runs: Family::default(),
            history_failures: Counter::default(),
            check_seconds: Family::new_with_constructor(latency_buckets),
            agent_seconds: Family::new_with_constructor(latency_buckets),
            agent_failures: Family::default(),
            lag: Family::default(),
        }
    }
}

impl Metrics {
    /// Counts one event; promotions also by cause and outcome, with their duration.
    pub fn event(&self, e: &Event, unix_ms: i64) {
        self.events
            .get_or_create(&labels(&[("kind", e.kind.name())]))
            .inc();
        let outcome = match e.kind {
            EventKind::PromotionStarted => "started",
            EventKind::PromotionDone => "done",
            EventKind::PromotionFailed => "failed",
            EventKind::PromotionRefused => "refused",
            _ => return,
        };
        let cause = e.cause.as_deref().unwrap_or("unknown");
        self.promotions
            .get_or_create(&labels(&[("cause", cause), ("outcome", outcome)]))
            .inc();
        if let Some(ms) = e.duration_ms {
            self.promotion_seconds
                .get_or_create(&labels(&[("cause", cause)]))
                .observe(ms as f64 / 1000.0);
        }
        if e.kind != EventKind::PromotionStarted {
            for o in ["done", "failed", "refused"] {
                let v = if o == outcome { 1.0 } else { 0.0 };
                self.last_promotion
                    .get_or_create(&labels(&[("outcome", o)]))
                    .set(v);
            }
            self.last_promotion_time.set(unix_ms as f64 / 1000.0);
        }
    }

    pub fn hook_run(&self, hook: &str, result: &str) {
        self.hook_runs
            .get_or_create(&labels(&[("hook", hook), ("result", result)]))
            .inc();
    }

    pub fn history_failed(&self) {
        self.history_failures.inc();
    }

    pub fn check_run(&self, host: &str, check: &str, took: Duration, lag_secs: Option<u64>) {
        self.check_seconds
            .get_or_create(&labels(&[("host", host), ("check", check)]))
            .observe(took.as_secs_f64());
        if let Some(lag) = lag_secs {
            self.lag
                .get_or_create(&labels(&[("host", host)]))
                .set(lag as f64);
        }
    }

    pub fn agent_call(&self, host: &str, took: Duration, ok: bool) {
        self.agent_seconds
            .get_or_create(&labels(&[("host", host)]))
            .observe(took.as_secs_f64());
        if !ok {
            self.agent_failures
                .get_or_create(&labels(&[("host", host)]))
                .inc();
        }
    }

    /// The whole exposition: the process-lifetime series and the present from `snap`.
    pub fn render(&self, snap: &Snapshot) -> String {
        let mut r = Registry::default();
        r.register(
            "ha_events",
            "Decisions recorded, by kind",
            self.events.clone(),
        );
        r.register(
            "ha_promotions",
            "Writer promotions by cause (failover, switchover; unknown: begun before a monitor restart) and outcome",
            self.promotions.clone(),
        );
        r.register(
            "ha_promotion_duration_seconds",
            "From giving the writer role to a host until it confirmed it is writable, by cause",
            self.promotion_seconds.clone(),
        );
        r.register(
            "ha_last_promotion",
            "The last promotion's outcome (1 for the outcome it had)",
            self.last_promotion.clone(),
        );
        r.register(
            "ha_last_promotion_timestamp_seconds",
            "When the last promotion ended (done, failed or refused), UNIX time",
            self.last_promotion_time.clone(),
        );
        r.register(
            "ha_hook_runs",
            "Hook runs by result",
            self.hook_runs.clone(),
        );
        r.register(
            "ha_history_write_failures",
            "Failed appends to the decision history",
            self.history_failures.clone(),
        );
        r.register(
            "ha_check_duration_seconds",
            "Duration of one check run",
            self.check_seconds.clone(),
        );
        r.register(
            "ha_agent_call_duration_seconds",
            "Duration of one ApplyState call to an agent",
            self.agent_seconds.clone(),
        );
        r.register(
            "ha_agent_call_failures",
            "Agent calls that failed (timeout, connection, TLS, RPC error)",
            self.agent_failures.clone(),
        );
        r.register(
            "ha_replication_lag_seconds",
            "Seconds_Behind_Master as the last rep_backlog check read it",
            self.lag.clone(),
        );
        present(&mut r, snap);
        let mut text = String::new();
        if let Err(e) = encode(&mut text, &r) {
            tracing::warn!("cannot encode the metrics: {e}");
        }
        text
    }
}

/// Gauges of the present state, from the snapshot.
fn present(r: &mut Registry, snap: &Snapshot) {
    use crate::snapshot::Leadership;
    let gauge = |r: &mut Registry, name: &str, help: &str, rows: Vec<(Labels, f64)>| {
        let family = Family::<Labels, FloatGauge>::default();
        for (l, v) in rows {
            family.get_or_create(&l).set(v);
        }
        r.register(name, help, family);
    };
    let single = |r: &mut Registry, name: &str, help: &str, v: f64| {
        let g = FloatGauge::default();
        g.set(v);
        r.register(name, help, g);
    };
    let show = &snap.show;
    let mode = ha_proto::Mode::try_from(show.mode).unwrap_or(ha_proto::Mode::Unspecified);
    let modes = ["ACTIVE", "MANUAL", "WAIT", "PASSIVE"];
    let mode_name = mode.mode().map(|m| m.name()).unwrap_or("");
    // A standby of redundant monitors knows its own checks, nothing of the cluster's state:
    // it exports no cluster gauges, so a dashboard over every monitor shows the leader's.
    let leads = !matches!(snap.leadership, Leadership::Standby { .. });
    single(
        r,
        "ha_leader",
        "Whether this monitor drives the cluster (always 1 without redundant monitors)",
        f64::from(u8::from(leads)),
    );
    single(
        r,
        "ha_network_ok",
        "The monitor's own network check (ping_ips)",
        f64::from(u8::from(show.network_ok)),
    );
    let checks = snap
        .checks
        .iter()
        .map(|c| {
            let name = ha_proto::CheckName::try_from(c.check)
                .map(|n| n.mmm_name())
                .unwrap_or("");
            (
                labels(&[("host", &c.host), ("check", name)]),
                f64::from(u8::from(c.ok)),
            )
        })
        .collect();
    gauge(
        r,
        "ha_check_ok",
        "The check's recorded status is OK",
        checks,
    );
    if !leads {
        return;
    }
    gauge(
        r,
        "ha_mode",
        "The monitor's mode (1 for the current one)",
        modes
            .iter()
            .map(|m| (labels(&[("mode", m)]), f64::from(u8::from(*m == mode_name))))
            .collect(),
    );
    single(
        r,
        "ha_epoch",
        "The highest epoch handed out",
        show.epoch as f64,
    );
    let mut states = Vec::new();
    let mut agents = Vec::new();
    let mut flapping = Vec::new();
    for h in &show.hosts {
        let current = ha_proto::HostState::try_from(h.state)
            .ok()
            .map(HostState::from);
        for s in HostState::ALL {
            let v = f64::from(u8::from(current == Some(s)));
            states.push((labels(&[("host", &h.name), ("state", s.name())]), v));
        }
        agents.push((
            labels(&[("host", &h.name)]),
            f64::from(u8::from(h.agent_reachable)),
        ));
        flapping.push((
            labels(&[("host", &h.name)]),
            f64::from(u8::from(h.flapping)),
        ));
    }
    gauge(
        r,
        "ha_host_state",
        "Host state (1 for the current one)",
        states,
    );
    gauge(r, "ha_agent_reachable", "The host's agent answers", agents);
    gauge(r, "ha_host_flapping", "The host is flapping", flapping);
    let mut owners = Vec::new();
    for role in &show.roles {
        for (ip, owner) in role.ips.iter().zip(&role.owners) {
            owners.push((
                labels(&[("role", &role.name), ("ip", ip), ("host", owner)]),
                1.0,
            ));
        }
    }
    gauge(
        r,
        "ha_role_owner",
        "Owner of each role IP (host=\"\": orphaned)",
        owners,
    );
    let mut lease = Vec::new();
    let mut semi = Vec::new();
    if let Some((core, _)) = &snap.core {
        for h in &show.hosts {
            let Some(f) = core.agent_facts(&h.name) else {
                continue;
            };
            if let Some(left) = f.lease_remaining {
                lease.push((labels(&[("host", &h.name)]), left.as_secs_f64()));
            }
            if let Some(s) = f.semi_sync.filter(|s| s.enabled) {
                semi.push((labels(&[("host", &h.name)]), f64::from(u8::from(s.active))));
            }
        }
    }
    gauge(
        r,
        "ha_writer_lease_remaining_seconds",
        "Writer lease left, as the host's agent last reported it",
        lease,
    );
    gauge(
        r,
        "ha_semi_sync_active",
        "Semi-sync on a writable host with it enabled: 1 waiting for acknowledgements, 0 fallen back to asynchronous",
        semi,
    );
    gauge(
        r,
        "ha_async_fallback",
        "The active master fell back to asynchronous replication (1) since the time in show",
        vec![(
            labels(&[("host", &show.async_fallback_host)]),
            f64::from(u8::from(!show.async_fallback_host.is_empty())),
        )],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let mut show = ha_proto::ShowReply {
            mode: ha_proto::Mode::from(ha_core::Mode::Active) as i32,
            network_ok: true,
            epoch: 7,
            ..Default::default()
        };
        show.hosts.push(ha_proto::HostInfo {
            name: "db1".into(),
            state: ha_proto::HostState::from(HostState::Online) as i32,
            agent_reachable: true,
            ..Default::default()
        });
        show.roles.push(ha_proto::RoleInfo {
            name: "writer".into(),
            ips: vec!["10.0.0.100".into()],
            owners: vec!["db1".into()],
            ..Default::default()
        });
        // An agent report with a running lease and semi-sync, as the core keeps it.
        let mut core = ha_core::Core::new(ha_core::ClusterSpec::example());
        let facts = ha_core::AgentFacts {
            lease_remaining: Some(Duration::from_millis(2500)),
            semi_sync: Some(ha_core::SemiSyncFacts {
                enabled: true,
                active: true,
            }),
            ..Default::default()
        };
        let report = ha_core::AgentReport::Status(facts);
        let input = ha_core::Input::AgentReport {
            host: "db1".into(),
            report,
        };
        core.step(vec![input], ha_core::Millis(1));
        Snapshot {
            show,
            core: Some((std::sync::Arc::new(core), ha_core::Millis(1))),
            ..Default::default()
        }
    }

    #[test]
    fn the_present_and_the_counters_are_exposed() {
        let m = Metrics::default();
        let mut e = Event::new(EventKind::PromotionDone, "db1 is the writer".into());
        e.duration_ms = Some(1500);
        e.cause = Some("switchover".into());
        m.event(&e, 1_000);
        let text = m.render(&snapshot());
        for line in [
            "ha_host_state{host=\"db1\",state=\"ONLINE\"} 1.0",
            "ha_host_state{host=\"db1\",state=\"HARD_OFFLINE\"} 0.0",
            "ha_role_owner{role=\"writer\",ip=\"10.0.0.100\",host=\"db1\"} 1.0",
            "ha_mode{mode=\"ACTIVE\"} 1.0",
            "ha_epoch 7.0",
            "ha_promotions_total{cause=\"switchover\",outcome=\"done\"} 1",
            "ha_promotion_duration_seconds_count{cause=\"switchover\"} 1",
            "ha_last_promotion{outcome=\"done\"} 1.0",
            "ha_events_total{kind=\"promotion_done\"} 1",
            "ha_writer_lease_remaining_seconds{host=\"db1\"} 2.5",
            "ha_semi_sync_active{host=\"db1\"} 1.0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    }

    #[test]
    fn a_standby_exports_its_checks_but_not_the_cluster_state() {
        let m = Metrics::default();
        let mut snap = snapshot();
        snap.leadership = crate::snapshot::Leadership::Standby {
            me: "10.0.0.3:9988".into(),
            leader: Some(("10.0.0.2:9988".into(), 7)),
        };
        let text = m.render(&snap);
        assert!(text.lines().any(|l| l == "ha_leader 0.0"), "{text}");
        assert!(text.contains("ha_network_ok"), "{text}");
        for absent in ["ha_host_state", "ha_role_owner", "ha_epoch", "ha_mode"] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
        let leader = m.render(&snapshot());
        assert!(leader.lines().any(|l| l == "ha_leader 1.0"), "{leader}");
    }

    /// Every series the shipped Grafana dashboard queries exists.
    #[test]
    fn the_dashboard_queries_only_real_series() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../contrib/grafana/ha-dashboard.json"
        );
        let dashboard = std::fs::read_to_string(path).expect("the dashboard");
        // One sample of every family, as a running monitor has (empty families may be left out).
        let m = Metrics::default();
        m.check_run("db1", "mysql", Duration::from_millis(3), Some(0));
        m.agent_call("db1", Duration::from_millis(2), false);
        m.hook_run("proxy", "ok");
        for kind in EventKind::ALL {
            let mut e = Event::new(kind, String::new());
            e.duration_ms = Some(1);
            m.event(&e, 0);
        }
        let text = m.render(&snapshot());
        let mut names: Vec<&str> = dashboard
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("ha_"))
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() > 10, "{names:?}");
        for name in names {
            let base = ["_bucket", "_total", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "the dashboard queries {name}, which /metrics does not have"
            );
        }
    }
}
