//! Peer promises between the simulated agents (issue 14, crate `ha-lease::promise`): every
//! tick the writer asks each other host eligible for the writer role to promise; requests and
//! replies cross host↔host links that fail in either direction, get lost, or arrive late (a
//! late request starts its promise late; a late reply carries an old token). A round extends
//! the writer's lease only once every eligible peer answered it.

use ha_lease::promise::PromiseRound;
use ha_lease::LeaseToken;

use super::host::{Rng, SimHost, TICK};
use super::world::Stats;

/// A promise request or reply in the network.
enum Message {
    Request {
        writer: usize,
        peer: usize,
        token: LeaseToken,
        epoch: u64,
        lease_ms: u64,
        budget_ms: u64,
    },
    Reply {
        writer: usize,
        peer: usize,
        token_at_ms: u64,
    },
    /// The demoted writer no longer needs the peer's promise.
    Release { writer: usize, peer: usize },
}

pub(crate) struct PeerNet {
    /// `up[a][b]`: what `a` sends reaches `b`.
    up: Vec<Vec<bool>>,
    flight: Vec<(u64, Message)>,
    /// Each writer's recent rounds (a late reply still counts for the round it answers).
    rounds: Vec<Vec<PromiseRound>>,
    /// Hosts eligible for the writer role.
    eligible: Vec<usize>,
}

impl PeerNet {
    pub(crate) fn new(hosts: usize, eligible: Vec<usize>) -> PeerNet {
        PeerNet {
            up: vec![vec![true; hosts]; hosts],
            flight: Vec::new(),
            rounds: vec![Vec::new(); hosts],
            eligible,
        }
    }

    /// Link faults: each direction of each pair fails and heals on its own.
    pub(crate) fn faults(&mut self, rng: &mut Rng) {
        for a in 0..self.up.len() {
            for b in 0..self.up.len() {
                if a != b && rng.permille(3) {
                    self.up[a][b] = !self.up[a][b];
                }
            }
        }
    }

    fn delivered(&self, from: &SimHost, a: usize, to: &SimHost, b: usize) -> bool {
        self.up[a][b] && from.powered && to.powered && to.agent_up
    }

    /// One tick: deliver what is due, then the writer (if any) starts a new round.
    pub(crate) fn tick(
        &mut self,
        hosts: &mut [SimHost],
        now: u64,
        rng: &mut Rng,
        stats: &mut Stats,
    ) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flight)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.flight = later;
        for (_, m) in due {
            self.deliver(hosts, m, now, rng, stats);
        }
        for w in self.eligible.clone() {
            if hosts[w].take_release(now) {
                for p in self.eligible.clone().into_iter().filter(|&p| p != w) {
                    self.send(Message::Release { writer: w, peer: p }, now, rng);
                }
            }
            let h = &hosts[w];
            // Only while its own server answers (the monitor reads promises as "alive").
            if !(h.powered
                && h.agent_up
                && h.mysql_up
                && h.holds_writer()
                && h.lease_ms > 0
                && !h.adopting)
            {
                self.rounds[w].clear();
                continue;
            }
            let token = h.token(now);
            let round = PromiseRound::new(token.clone(), h.lease_ms, h.budget_ms);
            self.rounds[w].push(round);
            if self.rounds[w].len() > 8 {
                self.rounds[w].remove(0);
            }
            let others: Vec<usize> = self.eligible.iter().copied().filter(|&p| p != w).collect();
            for p in others {
                let m = Message::Request {
                    writer: w,
                    peer: p,
                    token: token.clone(),
                    epoch: h.epoch,
                    lease_ms: h.lease_ms,
                    budget_ms: h.budget_ms,
                };
                self.send(m, now, rng);
            }
            // A writer with no other eligible host has nobody to vouch for it.
        }
    }

    fn send(&mut self, m: Message, now: u64, rng: &mut Rng) {
        if rng.permille(30) {
            return; // lost
        }
        let at = if rng.permille(50) {
            now + TICK * (1 + rng.below(12))
        } else {
            now
        };
        self.flight.push((at, m));
    }

    fn deliver(
        &mut self,
        hosts: &mut [SimHost],
        m: Message,
        now: u64,
        rng: &mut Rng,
        stats: &mut Stats,
    ) {
        match m {
            Message::Request {
                writer,
                peer,
                token,
                epoch,
                lease_ms,
                budget_ms,
            } => {
                if !self.delivered(&hosts[writer], writer, &hosts[peer], peer) {
                    return;
                }
                let name = hosts[writer].name.clone();
                if hosts[peer].promise(&name, epoch, lease_ms, budget_ms, now) {
                    stats.promises += 1;
                    let reply = Message::Reply {
                        writer,
                        peer,
                        token_at_ms: token.at_ms,
                    };
                    self.send(reply, now, rng);
                }
            }
            Message::Release { writer, peer } => {
                if self.delivered(&hosts[writer], writer, &hosts[peer], peer) {
                    let name = hosts[writer].name.clone();
                    if hosts[peer].release(&name, now) {
                        stats.releases += 1;
                    }
                }
            }
            Message::Reply {
                writer,
                peer,
                token_at_ms,
            } => {
                if !self.delivered(&hosts[peer], peer, &hosts[writer], writer) {
                    return;
                }
                let required: Vec<String> = self
                    .eligible
                    .iter()
                    .filter(|&&p| p != writer)
                    .map(|&p| hosts[p].name.clone())
                    .collect();
                let Some(round) = self.rounds[writer]
                    .iter_mut()
                    .find(|r| r.token.at_ms == token_at_ms)
                else {
                    return;
                };
                round.promised(&hosts[peer].name);
                if let Some(d) = round.deadline(&required) {
                    if hosts[writer].extend_by_peers(d, now, token_at_ms) {
                        stats.peer_renewals += 1;
                    }
                }
            }
        }
    }
}
