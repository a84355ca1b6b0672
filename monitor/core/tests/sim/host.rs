//! A simulated MySQL host with its agent: clock, fence, lease and what it obeys; and the
//! seeded random source.

use ha_core::*;
use ha_lease::promise::{after_boot_until, promise_until, refusal, PeerView};
use ha_lease::{AgentDeadline, LeaseToken, ADOPT_WINDOW_MS, DRIFT_PPM};
use std::time::Duration;

/// splitmix64: tiny, seedable, good enough to pick faults.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(1000) < percent * 10
    }
    pub(crate) fn permille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }
    /// A clock: random offset, drift within ±ρ/2.
    pub(crate) fn clock(&mut self) -> Clock {
        let half = DRIFT_PPM / 2;
        Clock {
            offset: self.below(1_000_000_000),
            ppm: self.below(2 * half + 1) as i64 - half as i64,
        }
    }
}

/// A machine's monotonic clock in ms: `offset + t·(1 + ppm/10⁶)` for real time `t`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub(crate) offset: u64,
    pub(crate) ppm: i64,
}

impl Clock {
    pub(crate) fn ms(&self, t: u64) -> u64 {
        let drift = (t as i128 * self.ppm as i128).div_euclid(1_000_000);
        (self.offset as i128 + t as i128 + drift) as u64
    }
}

pub(crate) const TICK: u64 = 250;
pub(crate) const WRITER_IP: &str = "10.0.0.100";

#[derive(Clone, Debug)]
pub(crate) struct SimHost {
    pub(crate) name: String,
    pub(crate) powered: bool,
    pub(crate) mysql_up: bool,
    pub(crate) partitioned: bool,
    pub(crate) agent_up: bool,
    pub(crate) io_ok: bool,
    pub(crate) lag: u64,
    pub(crate) boot_ms: u64,
    pub(crate) boot: u64,
    pub(crate) clock: Clock,
    pub(crate) budget_ms: u64,
    // agent (persisted in its state file: epoch, lease) / server state
    pub(crate) epoch: u64,
    pub(crate) roles: Vec<RoleInstance>,
    pub(crate) read_only: bool,
    pub(crate) writer_synced: bool,
    pub(crate) promotion_error: Option<String>,
    /// `promotion_error` is a refusal because of a promise to a peer.
    pub(crate) promise_refusal: bool,
    /// The active master the latest desired state named (the simulated replica follows it).
    pub(crate) master: Option<String>,
    pub(crate) lease: Option<AgentDeadline>,
    /// `lease` is an adoption (`ha-agent --adopt-writer`): no monitor granted it.
    pub(crate) adopting: bool,
    /// The adopted server became the granted writer without being demoted in between.
    pub(crate) kept_adopted: bool,
    /// A promotion under way (relay-log sync): the host becomes writable at this real time if
    /// it is still wanted and its lease still valid. Replies meanwhile say read_only=1.
    pub(crate) promotion: Option<u64>,
    pub(crate) wants_writer: bool,
    /// Changes with every boot and agent restart (connections to the agent are reset).
    pub(crate) incarnation: u64,
    /// The lease the monitor last granted (ms): what the writer asks its peers to promise.
    pub(crate) lease_ms: u64,
    /// The deadline of the monitor's own grants only (to count ticks kept by peers alone).
    pub(crate) granted: Option<AgentDeadline>,
    /// Peer promises (persisted in the state file): no writer grant accepted before this
    /// instant on this host's clock, and the longest span ever promised.
    pub(crate) promised_until: Option<u64>,
    pub(crate) promise_span: u64,
    /// The latest promise given on this boot: to whom, at which real time (reported to the
    /// monitor, which holds a writer its peers vouch for: rule O0).
    pub(crate) last_promise: Option<(String, u64)>,
    /// Who the running promise was given to, and whether to more than one writer (then no
    /// single writer may release it).
    pub(crate) promised_to: Option<String>,
    pub(crate) promise_mixed: bool,
    /// The monitor demoted this host and its peers have not been told yet (agent memory).
    pub(crate) release_due: bool,
    /// Rounds asked before this instant (host clock) extend nothing: they were released.
    pub(crate) released_before: u64,
}

impl SimHost {
    pub(crate) fn new(name: &str, rng: &mut Rng) -> SimHost {
        SimHost {
            name: name.into(),
            powered: true,
            mysql_up: true,
            partitioned: false,
            agent_up: true,
            io_ok: true,
            lag: 0,
            boot_ms: 0,
            boot: rng.next(),
            clock: rng.clock(),
            budget_ms: rng.below(600),
            epoch: 0,
            roles: Vec::new(),
            read_only: true,
            writer_synced: false,
            promotion_error: None,
            promise_refusal: false,
            master: None,
            lease: None,
            adopting: false,
            kept_adopted: false,
            promotion: None,
            wants_writer: false,
            incarnation: 0,
            lease_ms: 0,
            granted: None,
            promised_until: None,
            promise_span: 0,
            last_promise: None,
            promised_to: None,
            promise_mixed: false,
            release_due: false,
            released_before: 0,
        }
    }
    pub(crate) fn holds_writer(&self) -> bool {
        self.roles.iter().any(|r| r.name == "writer")
    }
    pub(crate) fn writable(&self) -> bool {
        self.powered && self.mysql_up && !self.read_only
    }
    pub(crate) fn demote(&mut self) {
        self.roles.retain(|r| r.name != "writer");
        self.read_only = true;
        self.writer_synced = false;
        self.lease = None;
        self.granted = None;
        self.adopting = false;
        self.promotion = None;
    }
    /// Another HA tool left this server writable (with the writer IP) and the agent starts
    /// with the permission to adopt it: writable, under a lease without a role that ends
    /// [`ADOPT_WINDOW_MS`] after now (real time `now`) on the host's clock.
    pub(crate) fn adopt(&mut self, now: u64) {
        self.read_only = false;
        self.adopting = true;
        self.lease = Some(AgentDeadline::new(
            self.clock.ms(now),
            ADOPT_WINDOW_MS,
            self.budget_ms,
        ));
    }
    pub(crate) fn crash(&mut self) {
        self.powered = false;
        self.roles.clear();
        self.demote();
    }
    /// Power on: a new boot (new boot id: a lease from before means nothing), my.cnf starts
    /// read-only. The agent's state file is on disk: its epoch survives.
    pub(crate) fn boot(&mut self, now: u64, rng: &mut Rng) {
        self.powered = true;
        self.mysql_up = true;
        self.agent_up = true;
        self.boot_ms = now;
        self.boot = rng.next();
        self.incarnation += 1;
        self.roles.clear();
        self.demote();
        self.promotion_error = None;
        self.promise_refusal = false;
        self.last_promise = None;
        self.release_due = false;
        // A promise recorded on the old boot cannot be read on the new clock: a whole span.
        if self.promise_span > 0 {
            self.promise_mixed = true;
            self.promised_until = Some(after_boot_until(self.clock.ms(now), self.promise_span));
        }
    }
    /// The agent process restarts: it keeps its persisted epoch and lease (same boot); with no
    /// valid lease it fences at once (read_only=1, writer IP dropped).
    pub(crate) fn agent_restart(&mut self, now: u64) {
        self.agent_up = true;
        self.incarnation += 1;
        self.release_due = false;
        let valid = self.lease.is_some_and(|d| d.valid_at(self.clock.ms(now)));
        if !valid && (self.holds_writer() || !self.read_only) {
            self.demote();
        }
    }
    /// A promise to a peer holds at `at_ms` on this host's clock.
    pub(crate) fn promised_at(&self, at_ms: u64) -> bool {
        self.promised_until.is_some_and(|u| at_ms < u)
    }

    /// How long the promise still runs at `at_ms` (this host's clock).
    fn promise_left(&self, at_ms: u64) -> u64 {
        self.promised_until.map_or(0, |u| u.saturating_sub(at_ms))
    }

    /// A writer's promise request (`epoch`, `lease_ms`, `budget_ms`) arrives at real time
    /// `now`; whether this host promised. A newer epoch is learnt as from the monitor.
    pub(crate) fn promise(
        &mut self,
        writer: &str,
        epoch: u64,
        lease_ms: u64,
        budget_ms: u64,
        now: u64,
    ) -> bool {
        let me = PeerView {
            epoch: self.epoch,
            writer: self.holds_writer() || !self.read_only,
            promoting: self.promotion.is_some() || self.wants_writer,
        };
        if refusal(me, epoch, lease_ms, budget_ms).is_some() {
            return false;
        }
        self.epoch = epoch;
        let running = self.promised_at(self.clock.ms(now));
        self.promise_mixed =
            running && (self.promise_mixed || self.promised_to.as_deref() != Some(writer));
        self.promised_to = Some(writer.to_string());
        let until = promise_until(self.clock.ms(now), lease_ms, budget_ms);
        self.promised_until = Some(self.promised_until.map_or(until, |u| u.max(until)));
        self.promise_span = self.promise_span.max(lease_ms + budget_ms);
        self.last_promise = Some((writer.to_string(), now));
        true
    }

    /// Every peer answered a round, which gives deadline `d`: the lease is extended as by a
    /// grant, but only while it still runs (fencing, once started, is never undone).
    pub(crate) fn extend_by_peers(&mut self, d: AgentDeadline, now: u64, asked_ms: u64) -> bool {
        let at = self.clock.ms(now);
        let running = self.lease.is_some_and(|l| l.valid_at(at));
        if !running || !self.holds_writer() || self.adopting || asked_ms <= self.released_before {
            return false;
        }
        self.lease = self.lease.map(|l| l.later(d));
        true
    }

    /// The demoted writer `writer` releases this host's promise: it ends if given to it alone.
    pub(crate) fn release(&mut self, writer: &str, now: u64) -> bool {
        let mine = self.promised_to.as_deref() == Some(writer) && !self.promise_mixed;
        if mine && self.promised_at(self.clock.ms(now)) {
            self.promised_until = None;
            return true;
        }
        false
    }

    /// The monitor's demotion completed and the peers may be told (the agent's
    /// `take_demotion`): from now on, rounds asked earlier extend nothing.
    pub(crate) fn take_release(&mut self, now: u64) -> bool {
        let due = std::mem::take(&mut self.release_due);
        if !due || !self.powered || !self.agent_up || self.lease.is_some() || !self.read_only {
            return false;
        }
        self.released_before = self.clock.ms(now);
        true
    }

    /// Writable although the monitor's grants alone would have fenced it by now.
    pub(crate) fn kept_by_peers(&self, now: u64) -> bool {
        let at = self.clock.ms(now);
        self.writable() && !self.adopting && self.granted.is_some_and(|g| at >= g.fence_at_ms)
    }

    pub(crate) fn reachable(&self) -> bool {
        self.powered && !self.partitioned
    }
    pub(crate) fn token(&self, now: u64) -> LeaseToken {
        LeaseToken {
            boot_id: format!("{:x}", self.boot),
            at_ms: self.clock.ms(now),
        }
    }
    /// The agent's lease watchdog: the host is fenced once the whole budget after the start of
    /// fencing has passed (the slowest fence the agent declares).
    pub(crate) fn watchdog(&mut self, now: u64) {
        if self
            .lease
            .is_some_and(|d| self.clock.ms(now) >= d.fenced_by_ms)
        {
            self.demote();
        }
        // A promotion finishing: only while wanted, under a valid lease (or none configured).
        if self.promotion.is_some_and(|t| now >= t) {
            self.promotion = None;
            let at = self.clock.ms(now);
            let lease_ok = self.lease.is_none_or(|l| l.valid_at(at));
            if self.wants_writer && lease_ok && self.powered && self.mysql_up {
                self.read_only = false;
                self.writer_synced = true;
                self.roles.push(RoleInstance::new("writer", WRITER_IP));
                self.roles.sort();
                self.roles.dedup();
            }
        }
    }
    pub(crate) fn facts(&self, now: u64) -> AgentFacts {
        let at = self.clock.ms(now);
        AgentFacts {
            uptime_secs: (now - self.boot_ms) as f64 / 1000.0 + 100.0,
            epoch: self.epoch,
            roles: self.roles.clone(),
            read_only: self.read_only,
            writer_synced: self.writer_synced,
            promotion_error: self.promotion_error.clone(),
            refused_for_promise: self
                .promise_refusal
                .then(|| Duration::from_millis(self.promise_left(at).max(1))),
            replicating_from: self.master.clone().filter(|m| *m != self.name),
            io_running: self.io_ok,
            sql_running: self.io_ok,
            lease_token: Some(self.token(now)),
            fence_budget: Duration::from_millis(self.budget_ms),
            lease_remaining: self
                .lease
                .map(|d| Duration::from_millis(d.fence_at_ms.saturating_sub(at))),
            promise_given: self
                .last_promise
                .as_ref()
                .map(|(w, t)| (w.clone(), Duration::from_millis(now.saturating_sub(*t)))),
            // The simulated agent always reaches its server when it answers at all.
            ..Default::default()
        }
    }

    /// An obedient agent applying a desired state that arrives at real time `receipt`; a new
    /// promotion finishes at `defer` when given (the relay-log sync takes a while).
    pub(crate) fn apply(
        &mut self,
        d: &DesiredState,
        receipt: u64,
        defer: Option<u64>,
    ) -> Option<AgentReport> {
        if d.epoch < self.epoch {
            return Some(AgentReport::StaleEpoch { held: self.epoch });
        }
        self.master.clone_from(&d.active_master);
        self.epoch = d.epoch;
        self.promotion_error = None;
        self.promise_refusal = false;
        let want_writer = d.roles.iter().any(|r| r.name == "writer");
        // The lease this grant gives, if any: counted from the echoed token on our own clock.
        let now_ms = self.clock.ms(receipt);
        let grant = match (&d.lease_token, d.writer_lease.is_zero()) {
            (_, true) => None,
            (Some(t), false) if t.boot_id == format!("{:x}", self.boot) && t.at_ms <= now_ms => {
                Some(AgentDeadline::new(
                    t.at_ms,
                    d.writer_lease.as_millis() as u64,
                    self.budget_ms,
                ))
            }
            _ => Some(AgentDeadline::new(0, 0, 0)), // no usable token: nothing
        };
        if self.adopting {
            // The agent's accept(): a grant replaces the adoption; a writer request without a
            // usable grant is not recorded; anything else ends it and demotes the host.
            let usable = grant.is_none_or(|g| g.valid_at(now_ms));
            let adoption_valid = self.lease.is_some_and(|l| l.valid_at(now_ms));
            if want_writer && !usable && adoption_valid {
                return None;
            }
            self.adopting = false;
            self.lease = None;
            if want_writer && usable && self.writable() {
                // Already writable: nothing to promote, the grant's lease takes over.
                self.lease = grant;
                self.writer_synced = true;
                self.wants_writer = true;
                self.roles.retain(|r| d.roles.contains(r));
                self.roles.extend(d.roles.iter().cloned());
                self.roles.sort();
                self.roles.dedup();
                self.kept_adopted = true;
                return None;
            }
            self.demote();
        }
        let lease_ok = grant.is_none_or(|g| g.valid_at(now_ms))
            || self.lease.is_some_and(|l| l.valid_at(now_ms));
        self.wants_writer = want_writer && lease_ok;
        // The lease starts when the grant is accepted, before the promotion's steps run; not
        // while a promise to a peer holds (the grant is refused below).
        let promised = !self.holds_writer() && self.promised_at(now_ms);
        if let Some(g) = grant.filter(|g| want_writer && g.valid_at(now_ms) && !promised) {
            self.lease = Some(self.lease.map_or(g, |l| l.later(g)));
            self.granted = Some(self.granted.map_or(g, |l| l.later(g)));
            self.lease_ms = d.writer_lease.as_millis() as u64;
        }
        // Remove first, then add (remove-before-add on the host too).
        if (!want_writer || !lease_ok) && self.holds_writer() {
            self.demote();
            // Demoted by the monitor (not by an expired grant): the peers are told.
            self.release_due = !want_writer;
        }
        self.roles.retain(|r| d.roles.contains(r));
        for r in &d.roles {
            if r.name == "writer" {
                if !lease_ok {
                    continue;
                }
                if !self.holds_writer() && self.promised_at(now_ms) {
                    self.promotion_error = Some("promised a peer: no writer grant yet".into());
                    self.promise_refusal = true;
                    self.wants_writer = false;
                    continue;
                }
                let synced = self.mysql_up && self.io_ok && self.lag <= 5;
                if !self.holds_writer() && !synced && !d.force {
                    self.promotion_error = Some("relay log not applied before the deadline".into());
                    continue;
                }
                if !self.mysql_up {
                    continue;
                }
                if !self.holds_writer() {
                    if let Some(t) = defer {
                        self.promotion = self.promotion.or(Some(t));
                        continue;
                    }
                }
                self.read_only = false;
                self.writer_synced = true;
            }
            if !self.roles.contains(r) {
                self.roles.push(r.clone());
            }
        }
        self.roles.sort();
        if !want_writer {
            self.promotion = None;
            if self.roles.iter().all(|r| r.name != "writer") && self.read_only {
                // The demotion is complete: the lease ends with it.
                self.lease = None;
            }
        }
        None
    }
}
