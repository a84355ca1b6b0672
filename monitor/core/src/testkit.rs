//! Test fixture: the lab cluster (db1/db2 masters of each other, db3 slave; writer + 3 readers)
//! driven through the public API with virtual time.

pub(crate) use crate::ids::HostId;
use crate::*;
use std::time::Duration;

pub(crate) const W: &str = "10.0.0.100";

/// The hosts of [`spec3`], in config order.
pub(crate) const DB1: HostId = HostId(0);
pub(crate) const DB2: HostId = HostId(1);
pub(crate) const DB3: HostId = HostId(2);

/// db1, db2 (masters, peers), db3 (slave). Trap periods 0 so one sample decides, which keeps
/// rule tests short; trap logic itself is tested in `traps.rs`.
pub(crate) fn spec3() -> ClusterSpec {
    let mut s = ClusterSpec::example();
    s.trap_periods = TrapPeriods::uniform(Duration::ZERO);
    s
}

pub(crate) struct Kit {
    pub core: Core,
    pub now: u64,
    pub queue: Vec<Input>,
    pub actions: Vec<Action>,
    next_id: u64,
    /// What obedient agents report about semi-sync, per host (default: nothing).
    pub semi_sync: Vec<(String, SemiSyncFacts)>,
}

impl Kit {
    pub fn new(spec: ClusterSpec) -> Kit {
        Kit {
            core: Core::new(spec),
            now: 0,
            queue: Vec::new(),
            actions: Vec::new(),
            next_id: 0,
            semi_sync: Vec::new(),
        }
    }

    /// All hosts healthy, agents obeying, set ONLINE; db1 is the confirmed writer.
    pub fn online(spec: ClusterSpec) -> Kit {
        let mut k = Kit::new(spec);
        let names: Vec<String> = k.core.spec().hosts.iter().map(|h| h.name.clone()).collect();
        for n in &names {
            k.checks(n, [true; 4]);
            k.report(
                n,
                AgentFacts {
                    read_only: true,
                    ..Default::default()
                },
            );
        }
        k.step();
        for n in &names {
            let r = k.cmd(AdminCommand::SetOnline(n.clone()));
            assert!(r.starts_with("OK"), "{r}");
        }
        k.obey_rounds(3);
        k
    }

    /// [`Kit::online`] with a writer lease of `lease`, two minutes on, after one renewal that
    /// every agent acknowledged: db1 holds a running lease.
    pub fn online_with_lease(lease: Duration) -> Kit {
        let mut spec = spec3();
        spec.writer_lease = lease;
        let mut k = Kit::online(spec);
        k.at(120);
        k.send_all();
        k.step();
        assert!(k.desired_has_writer("db1"));
        k
    }

    pub fn at(&mut self, secs: u64) -> &mut Kit {
        self.now += secs * 1000;
        self
    }

    pub fn now(&self) -> Millis {
        Millis(self.now)
    }

    /// Queues one sample of each check ([ping, mysql, rep_threads, rep_backlog]).
    pub fn checks(&mut self, h: &str, ok: [bool; 4]) {
        for (c, ok) in Check::ALL.into_iter().zip(ok) {
            self.check(
                h,
                c,
                if ok {
                    CheckOutcome::Ok
                } else {
                    CheckOutcome::Error
                },
            );
        }
    }

    pub fn check(&mut self, h: &str, check: Check, outcome: CheckOutcome) {
        self.queue.push(Input::CheckResult {
            host: h.into(),
            check,
            outcome,
            message: format!("{outcome:?}"),
        });
    }

    pub fn report(&mut self, h: &str, facts: AgentFacts) {
        self.queue.push(Input::AgentReport {
            host: h.into(),
            report: AgentReport::Status(facts),
        });
    }

    pub fn unreachable(&mut self, h: &str) {
        self.queue.push(Input::AgentReport {
            host: h.into(),
            report: AgentReport::Unreachable {
                error: "connection refused".into(),
            },
        });
    }

    /// One step; a `SaveStatus` is carried out at once (the daemon saves, then reports it).
    pub fn step(&mut self) -> &Vec<Action> {
        let inputs = std::mem::take(&mut self.queue);
        self.actions = self.core.step(inputs, Millis(self.now));
        if self.actions.contains(&Action::SaveStatus) {
            let saved = self.core.persisted();
            self.core.saved(&saved);
        }
        &self.actions
    }

    /// The lease token an agent on the kit's clock sends now.
    pub fn token(&self) -> ha_lease::LeaseToken {
        ha_lease::LeaseToken {
            boot_id: "kit".into(),
            at_ms: self.now,
        }
    }

    /// Runs one command in its own step and returns the reply text.
    pub fn cmd(&mut self, command: AdminCommand) -> String {
        self.next_id += 1;
        let id = self.next_id;
        self.queue.push(Input::Command { id, command });
        self.step();
        self.actions
            .iter()
            .find_map(|a| match a {
                Action::Reply { id: i, message, .. } if *i == id => Some(message.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Sends every host its desired state and queues an obedient agent's reply.
    pub fn send_all(&mut self) {
        let names: Vec<String> = self
            .core
            .spec()
            .hosts
            .iter()
            .map(|h| h.name.clone())
            .collect();
        for n in names {
            self.send(&n, true);
        }
    }

    /// Sends `h` its desired state; if `reply`, queues what an obedient, synced agent reports.
    pub fn send(&mut self, h: &str, reply: bool) -> Option<DesiredState> {
        let d = self.core.desired_state(h, self.now())?;
        self.core.note_sent(h, &d, self.now());
        if reply {
            // Like the real agent, it takes no writer lease without a token to count from.
            let no_token = !d.writer_lease.is_zero() && d.lease_token.is_none();
            let mut roles = d.roles.clone();
            if no_token {
                roles.retain(|r| r.name != "writer");
            }
            let writer = roles.iter().any(|r| r.name == "writer");
            // An obedient agent (fence budget 0): a granted writer runs its lease from the
            // echoed token (its clock is the kit's); a demotion ends it.
            let lease = d
                .lease_token
                .as_ref()
                .filter(|_| writer && !d.writer_lease.is_zero())
                .map(|t| {
                    let dl =
                        ha_lease::AgentDeadline::new(t.at_ms, d.writer_lease.as_millis() as u64, 0);
                    Duration::from_millis(dl.fence_at_ms.saturating_sub(self.now))
                });
            self.report(
                h,
                AgentFacts {
                    uptime_secs: 1000.0 + self.now as f64 / 1000.0,
                    epoch: d.epoch,
                    roles,
                    read_only: !writer,
                    writer_synced: writer,
                    io_running: true,
                    sql_running: true,
                    lease_token: Some(self.token()),
                    lease_remaining: lease,
                    semi_sync: self.semi_sync.iter().find(|(n, _)| n == h).map(|(_, s)| *s),
                    ..Default::default()
                },
            );
        }
        Some(d)
    }

    pub fn obey_rounds(&mut self, n: usize) {
        for _ in 0..n {
            self.send_all();
            self.step();
        }
    }

    pub fn logs(&self) -> Vec<String> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Log { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// The events of the last step.
    pub fn events(&self) -> Vec<Event> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn has_log(&self, needle: &str) -> bool {
        self.logs().iter().any(|l| l.contains(needle))
    }

    pub fn kills(&self) -> Vec<(String, bool)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Kill { host, ping_ok } => Some((host.clone(), *ping_ok)),
                _ => None,
            })
            .collect()
    }

    pub fn state(&self, h: &str) -> HostState {
        self.core.state(h).unwrap_or(HostState::Unknown)
    }

    pub fn roles(&self, h: &str) -> Vec<String> {
        self.core
            .host(h)
            .map(|v| v.roles.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default()
    }

    pub fn desired_roles(&self, h: &str) -> Vec<String> {
        self.core
            .desired_state(h, self.now())
            .map(|d| d.roles.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default()
    }

    pub fn desired_has_writer(&self, h: &str) -> bool {
        self.desired_roles(h)
            .iter()
            .any(|r| r.starts_with("writer"))
    }
}
