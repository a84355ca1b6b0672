//! Recording a desired state: the term and epoch rules, and the writer lease it grants.

use super::{ms, Agent};
use crate::desired::Desired;
use crate::lease::{clock, Lease};

/// Why an ApplyState was refused before anything was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    StaleEpoch {
        got: u64,
        highest: u64,
    },
    /// An epoch absurdly far above the highest applied one (corrupt or hostile): accepting it
    /// would lock the real monitor out.
    AbsurdEpoch {
        got: u64,
        highest: u64,
    },
    /// A leadership term older than the highest accepted: the sender is a deposed monitor
    /// (issue 18), whatever its epoch says.
    DeposedLeader {
        got: u64,
        highest: u64,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::StaleEpoch { got, highest } => write!(
                f,
                "stale epoch {got} < {highest}: a stale monitor must not win (this agent holds epoch {highest})"
            ),
            Refusal::AbsurdEpoch { got, highest } => write!(
                f,
                "epoch {got} is absurdly far above the {highest} this agent holds (more than {} ahead); refused",
                ha_lease::EPOCH_JUMP_LIMIT
            ),
            Refusal::DeposedLeader { got, highest } => write!(
                f,
                "leader term {got} < {highest}: this request comes from a deposed monitor \
                 (this agent obeys term {highest} or newer)"
            ),
        }
    }
}

/// Pure epoch rule: an epoch older than the highest applied one is refused; equal is a re-send;
/// an absurd jump is refused too (crate ha-lease, `plausible_epoch`).
pub fn check_epoch(got: u64, highest: u64) -> Result<(), Refusal> {
    if got < highest {
        Err(Refusal::StaleEpoch { got, highest })
    } else if !ha_lease::plausible_epoch(highest, got) {
        Err(Refusal::AbsurdEpoch { got, highest })
    } else {
        Ok(())
    }
}

/// Pure term rule: a term older than the highest accepted one is refused; equal or newer is
/// obeyed (terms are etcd revisions: they jump, so no plausibility bound applies; only a caller
/// holding the monitor's certificate gets this far).
pub fn check_term(got: u64, highest: u64) -> Result<(), Refusal> {
    if got < highest {
        Err(Refusal::DeposedLeader { got, highest })
    } else {
        Ok(())
    }
}

impl Agent {
    /// Admits a request of leadership term `term` that records nothing else (ClearBadRoles):
    /// refused when older than the highest term, which it raises otherwise.
    pub fn admit_term(&self, term: u64) -> Result<(), Refusal> {
        let raised = {
            let mut g = self.lock();
            check_term(term, g.max_term)?;
            let raised = term > g.max_term;
            g.max_term = term;
            raised
        };
        if raised {
            // Kept before acting: a restart must not forget that an older term is deposed.
            let _ = self.persist();
        }
        Ok(())
    }

    /// Records a validated desired state. Returns the sequence number to wait for.
    pub fn accept(&self, mut d: Desired) -> Result<u64, Refusal> {
        let now = clock::now_ms();
        let mut g = self.lock();
        check_term(d.leader_term, g.max_term)?;
        check_epoch(d.epoch, g.max_epoch)?;
        if d.leader_term > g.max_term {
            // Redundant monitors: a new leader's first order (the takeover benchmark reads it).
            tracing::info!(
                "obeying leadership term {} from now on (was {}): requests of older terms are refused",
                d.leader_term,
                g.max_term
            );
        }
        g.max_term = d.leader_term;
        g.max_epoch = d.epoch;
        let writer_ips: Vec<std::net::Ipv4Addr> = d
            .all_roles
            .iter()
            .filter(|r| !d.writer_role.is_empty() && r.name == d.writer_role)
            .map(|r| r.ip)
            .collect();
        if !writer_ips.is_empty() {
            g.writer_ips = writer_ips;
        }
        // A writer grant is refused, forced or not, while this agent has promised a peer writer
        // not to take it (ARCHITECTURE.md "Peer promises"); the host stays as it is otherwise.
        // Renewals for the writer this agent already is are not grants.
        let promised = d
            .writer()
            .filter(|w| g.lease.role() != Some(*w))
            .and_then(|_| g.promise.refuses_writer(now));
        if let Some(why) = &promised {
            if g.promise_refusal.is_none() {
                tracing::warn!("writer role not taken: {why}");
            }
            d = d.without_writer();
        }
        g.promise_refusal = promised;
        if let Some(w) = d.writer().cloned() {
            if d.writer_lease_ms == 0 {
                g.lease.clear();
            } else {
                let budget = ms(self.cfg.fence_budget.duration());
                match Lease::deadline_for(
                    d.lease_token.as_ref(),
                    &self.boot_id,
                    now,
                    d.writer_lease_ms,
                    budget,
                ) {
                    Ok(deadline) => {
                        if g.lease.adopting() {
                            tracing::info!("the monitor granted the writer role to the adopted writer: its lease replaces the adoption");
                        }
                        g.lease.grant(&w, deadline, d.writer_lease_ms);
                        g.writer_peers = d.writer_peers.clone();
                    }
                    Err(why) if g.lease.adopting() && g.lease.valid_at(now) => {
                        // Recorded, this request would demote the adopted writer (the role
                        // without a lease is stripped). Wait for one that carries a token.
                        tracing::info!("writer role requested for the adopted writer but not granted ({why}); keeping the host as it is until a request carries a usable lease token");
                        let seq = g.desired_seq;
                        drop(g);
                        let _ = self.persist(); // an error is logged
                        return Ok(seq);
                    }
                    Err(why) if g.lease.role() == Some(&w) && g.lease.valid_at(now) => {
                        tracing::debug!("writer lease not renewed by this request ({why}); the running lease stays");
                    }
                    Err(why) => {
                        if why == crate::lease::NoGrant::NoToken {
                            tracing::info!("writer role requested without a lease token (the monitor's first contact); staying read-only until a request carries one");
                        } else {
                            tracing::warn!("writer role not taken: {why}; staying read-only");
                        }
                        d = d.without_writer();
                    }
                }
            }
        } else if g.lease.role().is_none() {
            if g.lease.adopting() {
                tracing::warn!("the monitor does not give the adopted writer the writer role: the adoption ends and this host is demoted");
            }
            g.lease.clear();
        }
        let same = g.desired.as_ref().is_some_and(|old| old.same_target(&d));
        if !same {
            // A new attempt: an earlier promotion failure no longer describes it.
            g.promotion_error.clear();
            g.target_seq += 1;
            self.target_tx.send_replace(g.target_seq);
            tracing::info!(
                epoch = d.epoch,
                state = d.state.mmm_name(),
                roles = %d.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(","),
                active_master = %d.active_master.as_ref().map(|m| m.name.as_str()).unwrap_or(""),
                "new desired state"
            );
        }
        g.desired = Some(d);
        g.desired_seq += 1;
        // Not applied yet: a reply sent before its pass ends must not claim convergence.
        g.converged = false;
        let seq = g.desired_seq;
        drop(g);
        // On disk before anything happens on the host: a restart must know of the lease.
        let _ = self.persist(); // an error is logged
        self.lease_changed.notify_one();
        self.wake.notify_one();
        Ok(seq)
    }

    /// Highest epoch applied (tests, Ping).
    pub fn epoch(&self) -> u64 {
        self.lock().max_epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs() {
        assert!(check_epoch(5, 5).is_ok());
        assert!(check_epoch(6, 5).is_ok());
        let e = check_epoch(4, 5).unwrap_err();
        assert_eq!(
            e.to_string(),
            "stale epoch 4 < 5: a stale monitor must not win (this agent holds epoch 5)"
        );
        assert!(matches!(
            check_epoch(u64::MAX, 5),
            Err(Refusal::AbsurdEpoch { .. })
        ));
        assert!(check_epoch(5 + ha_lease::EPOCH_JUMP_LIMIT, 5).is_ok());
    }

    #[test]
    fn terms() {
        assert!(check_term(0, 0).is_ok(), "a single monitor");
        assert!(check_term(7, 7).is_ok(), "the same leader again");
        assert!(
            check_term(1_000_000, 7).is_ok(),
            "a new leader: revisions jump"
        );
        let e = check_term(6, 7).unwrap_err();
        assert_eq!(e, Refusal::DeposedLeader { got: 6, highest: 7 });
        assert_eq!(
            e.to_string(),
            "leader term 6 < 7: this request comes from a deposed monitor (this agent obeys term 7 or newer)"
        );
        assert!(
            check_term(0, 7).is_err(),
            "a monitor without coordination is not obeyed once a coordinated leader was"
        );
    }
}
