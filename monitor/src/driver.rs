//! The agent driver: sends each host its desired state (`ApplyState`) when it changed, and at
//! least every `agent_period` (heartbeat and writer-lease renewal); one call per host in flight.
//!
//! The desired state itself comes from the core; the driver only decides *when to send*,
//! owns the agent links (re-created on SIGHUP) and turns finished calls into core inputs.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;

use ha_config::MonitorConfig;
use ha_core::{Core, DesiredState, Input};

use crate::agents::{AgentError, AgentLink};
use crate::bridge;
use crate::tls::MonitorTls;

/// A finished agent call on its way back to the main loop.
pub(crate) struct AgentResult {
    host: String,
    /// The leadership term the call was made in.
    term: u64,
    result: Result<ha_proto::AgentStatus, AgentError>,
    took: Duration,
}

impl AgentResult {
    /// Host, duration and success of the call (for the metrics).
    pub(crate) fn measure(&self) -> (&str, Duration, bool) {
        (&self.host, self.took, self.result.is_ok())
    }
}

/// Per-host bookkeeping of the agent driver.
#[derive(Default)]
struct DriverSlot {
    in_flight: bool,
    last_sent: Option<DesiredState>,
    last_sent_at: u64,
}

/// Per-host driver slots, the agent links and where finished calls go.
pub(crate) struct AgentDriver {
    slots: HashMap<String, DriverSlot>,
    links: HashMap<String, AgentLink>,
    /// Finished calls go back to the main loop through here.
    results: mpsc::Sender<AgentResult>,
    agent_period_ms: u64,
    /// The deadline of every agent call (links re-created on SIGHUP keep it).
    agent_deadline: Duration,
    /// Each agent's last_error as last logged: logged once when it changes.
    agent_errors: HashMap<String, String>,
    /// The leadership term every request carries (0: a single monitor).
    term: u64,
}

impl AgentDriver {
    pub(crate) fn new(
        cfg: &MonitorConfig,
        links: HashMap<String, AgentLink>,
        agent_deadline: Duration,
        results: mpsc::Sender<AgentResult>,
    ) -> Self {
        AgentDriver {
            slots: HashMap::new(),
            links,
            results,
            agent_period_ms: cfg.monitor.agent_period.duration().as_millis() as u64,
            agent_deadline,
            agent_errors: HashMap::new(),
            term: 0,
        }
    }

    /// A new leadership term: every request carries it from now on, and every host is sent
    /// its desired state at once (the new leader's first orders). Replies to calls of an
    /// earlier term are dropped ([`AgentDriver::on_result`]).
    pub(crate) fn set_term(&mut self, term: u64) {
        self.term = term;
        for slot in self.slots.values_mut() {
            slot.last_sent = None;
            slot.last_sent_at = 0;
        }
    }

    /// The agent links (startup voting at a takeover queries the agents).
    pub(crate) fn links(&self) -> &HashMap<String, AgentLink> {
        &self.links
    }

    /// SIGHUP: re-reads the TLS material (see [`MonitorTls::reload`]); the links are replaced
    /// only when the new client certificate is usable.
    pub(crate) fn reload(&mut self, tls: &MonitorTls, cfg: &MonitorConfig) {
        tls.reload(cfg, self.agent_deadline, &mut self.links);
    }

    /// Sends each host its desired state when it changed, and at least every agent_period
    /// (heartbeat and writer-lease renewal).
    pub(crate) fn send_due(&mut self, core: &mut Core, cfg: &MonitorConfig, now: u64) {
        for h in &cfg.hosts {
            let Some(desired) = core.desired_state(&h.name, bridge::millis(now)) else {
                continue;
            };
            let slot = self.slots.entry(h.name.clone()).or_default();
            if slot.in_flight {
                continue;
            }
            let changed = desired.needs_send(slot.last_sent.as_ref());
            if !changed && now.saturating_sub(slot.last_sent_at) < self.agent_period_ms {
                continue;
            }
            let Some(link) = self.links.get(&h.name).cloned() else {
                continue;
            };
            core.note_sent(&h.name, &desired, bridge::millis(now));
            slot.in_flight = true;
            let req = bridge::apply_request(cfg, &h.name, &desired, self.term);
            slot.last_sent = Some(desired);
            slot.last_sent_at = now;
            let tx = self.results.clone();
            let host = h.name.clone();
            let term = self.term;
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let result = link.apply(req).await;
                let took = started.elapsed();
                let _ = tx
                    .send(AgentResult {
                        host,
                        term,
                        result,
                        took,
                    })
                    .await;
            });
        }
    }

    /// A finished agent call: frees the host's driver slot, logs a changed agent error, and
    /// turns the reply into the core's input. A reply to a call of an earlier leadership term
    /// is not this term's core's business: `None`.
    pub(crate) fn on_result(&mut self, a: AgentResult) -> Option<Input> {
        if let Some(slot) = self.slots.get_mut(&a.host) {
            slot.in_flight = false;
        }
        if a.term != self.term {
            return None;
        }
        log_agent_error(&mut self.agent_errors, &a.host, &a.result);
        Some(bridge::agent_input(&a.host, &a.result))
    }
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
