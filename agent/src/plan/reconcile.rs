//! The end of a pass, decided without I/O: what the agent holds now, whether it converged,
//! what it reports about a promotion, and whether a demotion is complete (which ends the writer
//! lease). The converger gathers the facts (a second IP listing, the steps' results, a probe of
//! a stopped server) and applies the verdict.

use std::net::Ipv4Addr;

use super::{Held, MysqlActual};
use crate::desired::{Desired, RoleIp};

/// What running the steps of one pass found (filled in by the converger, read here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Some step failed or was refused.
    pub failed: bool,
    /// The pass stopped early: a newer desired state arrived, or the lease was not valid for a
    /// writer step.
    pub aborted: bool,
    /// A step of the writer-add group failed (sync gate, `read_only=0`, writer IP): this host
    /// is not the writer, and the rest of the group was skipped.
    pub writer_failed: bool,
    /// The relay-log sync gate passed in this pass (or was forced).
    pub synced: bool,
    /// The first writer step that failed, as "step: message".
    pub promotion_failure: Option<String>,
}

/// What to do with `promotion_error` (see `AgentStatus.promotion_error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionError {
    Clear,
    /// Leave it as it is (the pass was abandoned; the next one decides).
    Keep,
    Set(String),
}

/// The active master this host reports following.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Following {
    Unchanged,
    /// This host is the active master: it follows nobody, and its own name is verified.
    Nobody,
    Master(String),
}

/// The verdict at the end of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    pub held: Held,
    /// Everything is applied: `applied_state` advanced and `last_error` cleared.
    pub converged: bool,
    pub promotion_error: PromotionError,
    pub following: Following,
}

/// Reconciles what is held with what is really there after the steps ran.
///
/// * `held`: what the agent held when the steps ended (steps may have verified a master).
/// * `mysql`: the server as observed at the start of the pass.
/// * `ips_now`: the interface's IPv4 addresses after the steps (`None`: could not be listed;
///   the held roles are then left as they were).
pub fn reconcile(
    desired: &Desired,
    held: &Held,
    mysql: Option<&MysqlActual>,
    ips_now: Option<&[Ipv4Addr]>,
    run: &RunReport,
    this: &str,
) -> Reconciled {
    let writer_role = desired.writer_role.as_str();
    let mut next = held.clone();
    if let Some(now) = ips_now {
        let mut roles: Vec<RoleIp> = Vec::new();
        let known = desired
            .all_roles
            .iter()
            .chain(desired.roles.iter())
            .chain(held.roles.iter());
        // A role whose IP is on the interface is held (a failed removal stays visible), except
        // a wanted writer whose sync/read_only step failed: not writable, so not held.
        for r in known {
            if !now.contains(&r.ip) || roles.iter().any(|h| h.ip == r.ip) {
                continue;
            }
            let is_writer = !writer_role.is_empty() && r.name == writer_role;
            if is_writer && run.writer_failed && desired.roles.contains(r) {
                continue;
            }
            roles.push(r.clone());
        }
        roles.sort();
        next.roles = roles;
    }
    let writer_wanted = desired.writer().is_some();
    next.writer_synced = writer_wanted && (run.synced || mysql.is_some_and(|m| m.writable()));
    let converged = !run.failed && !run.aborted;
    if converged {
        next.applied_state = Some(desired.state);
    }
    let promotion_error = if !writer_wanted {
        PromotionError::Clear
    } else if run.aborted {
        // A sync abandoned because a newer desired state arrived is not a failed promotion: the
        // next pass tries again (reporting it made the monitor give the role to another host).
        PromotionError::Keep
    } else {
        match &run.promotion_failure {
            Some(f) => PromotionError::Set(f.clone()),
            None => PromotionError::Clear,
        }
    };
    let following = match (&desired.active_master, mysql) {
        (Some(am), Some(_)) if am.name == this => {
            next.verified_master = Some(this.to_string());
            Following::Nobody
        }
        (Some(am), Some(m))
            if m.slave
                .as_ref()
                .is_some_and(|s| s.is_from(&am.ip.to_string(), am.port)) =>
        {
            Following::Master(am.name.clone())
        }
        _ => Following::Unchanged,
    };
    Reconciled {
        held: next,
        converged,
        promotion_error,
        following,
    }
}

/// Facts after a pass, for the demotion decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemotionFacts {
    /// The pass's desired state gives this host the writer role (then nothing is demoted).
    pub writer_wanted: bool,
    /// The writer lease is still running (the monitor has not yet seen the demotion end).
    pub lease_running: bool,
    /// No newer desired state arrived during the pass.
    pub current: bool,
    /// The pass converged: `read_only=1`, connections killed, writer IP removed.
    pub converged: bool,
    /// Probed only when the pass did not converge: nothing listens on MySQL's address and no
    /// writer IP is on the interface (`None`: not probed, or the probe could not tell).
    pub stopped_and_no_writer_ip: Option<bool>,
}

/// How a demotion completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemotionEnd {
    /// The pass converged (`read_only=1`, writer IP gone).
    ReadOnly,
    /// MySQL is stopped and the writer IP is gone: nothing on this host can write (a stopped
    /// server starts read-only from my.cnf, and the converger keeps `read_only=1` once it
    /// answers). Without this, a dead mysqld (S1) would hold a failover until the lease ran out.
    ServerStopped,
}

/// Whether to probe for a stopped server: a demotion that did not converge.
pub fn probe_stopped(writer_wanted: bool, lease_running: bool, converged: bool) -> bool {
    !writer_wanted && lease_running && !converged
}

/// Is the demotion the monitor asked for complete? Then the lease ends with it, so the
/// monitor's next reply shows no lease and it can grant the writer elsewhere.
pub fn demotion_complete(f: DemotionFacts) -> Option<DemotionEnd> {
    if f.writer_wanted || !f.lease_running || !f.current {
        return None;
    }
    if f.converged {
        Some(DemotionEnd::ReadOnly)
    } else if f.stopped_and_no_writer_ip == Some(true) {
        Some(DemotionEnd::ServerStopped)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use ha_proto::HostState;

    use super::super::fixtures::*;
    use super::*;

    fn mysql(ro: bool, follow: Option<&str>) -> MysqlActual {
        use crate::sqltext::Thread::Running;
        MysqlActual {
            read_only: ro,
            super_read_only: None,
            slave: follow.map(|ip| slave_of(ip, Running, Running)),
        }
    }
    fn ips(roles: &[RoleIp]) -> Vec<Ipv4Addr> {
        roles.iter().map(|r| r.ip).collect()
    }
    fn ok() -> RunReport {
        RunReport::default()
    }

    #[test]
    fn held_roles_are_what_is_on_the_interface() {
        // Wanted r1; r2 failed to leave; an unknown IP on the interface is not a role.
        let d = desired(HostState::Online, vec![r1()], None);
        let mut on = ips(&[r1(), r2()]);
        on.push(Ipv4Addr::new(10, 0, 0, 7));
        let r = reconcile(
            &d,
            &held(vec![r2()], false, None),
            None,
            Some(&on),
            &ok(),
            "db2",
        );
        assert_eq!(r.held.roles, vec![r1(), r2()]);
        assert!(r.converged);
        assert_eq!(r.held.applied_state, Some(HostState::Online));
    }

    #[test]
    fn unlisted_interface_keeps_the_held_roles() {
        let d = desired(HostState::Online, vec![], None);
        let h = held(vec![r1()], false, Some(HostState::Online));
        let r = reconcile(&d, &h, None, None, &ok(), "db2");
        assert_eq!(r.held.roles, vec![r1()]);
    }

    #[test]
    fn a_failed_writer_step_means_the_writer_ip_is_not_held() {
        let d = desired(HostState::Online, vec![w()], None);
        let run = RunReport {
            failed: true,
            writer_failed: true,
            promotion_failure: Some("relay-log sync: timeout".into()),
            ..ok()
        };
        let r = reconcile(
            &d,
            &held(vec![], false, Some(HostState::Online)),
            Some(&mysql(true, None)),
            Some(&ips(&[w()])),
            &run,
            "db1",
        );
        assert!(r.held.roles.is_empty());
        assert!(!r.held.writer_synced);
        assert!(!r.converged);
        assert_eq!(r.held.applied_state, Some(HostState::Online)); // unchanged
        assert_eq!(
            r.promotion_error,
            PromotionError::Set("relay-log sync: timeout".into())
        );
    }

    #[test]
    fn an_aborted_promotion_is_not_reported_as_failed() {
        let d = desired(HostState::Online, vec![w()], None);
        let run = RunReport {
            failed: true,
            aborted: true,
            writer_failed: true,
            promotion_failure: Some("relay-log sync: abandoned".into()),
            ..ok()
        };
        let r = reconcile(&d, &Held::default(), None, Some(&[]), &run, "db1");
        assert_eq!(r.promotion_error, PromotionError::Keep);
        assert!(!r.converged);
    }

    #[test]
    fn writer_synced_needs_the_writer_role_and_a_sync_or_a_writable_server() {
        let wd = desired(HostState::Online, vec![w()], None);
        let synced = RunReport {
            synced: true,
            ..ok()
        };
        let on = ips(&[w()]);
        let r = |d: &Desired, m: Option<&MysqlActual>, run: &RunReport| {
            reconcile(d, &Held::default(), m, Some(&on), run, "db1")
                .held
                .writer_synced
        };
        assert!(r(&wd, Some(&mysql(true, None)), &synced));
        assert!(r(&wd, Some(&mysql(false, None)), &ok()));
        assert!(!r(&wd, Some(&mysql(true, None)), &ok()));
        let rd = desired(HostState::Online, vec![r1()], None);
        assert!(!r(&rd, Some(&mysql(false, None)), &synced));
        assert_eq!(
            reconcile(&rd, &Held::default(), None, None, &ok(), "db1").promotion_error,
            PromotionError::Clear
        );
    }

    #[test]
    fn following_the_active_master() {
        let am = master("db1", 11);
        let d = desired(HostState::Online, vec![r1()], Some(am.clone()));
        let h = Held::default();
        let on: &[Ipv4Addr] = &[];
        let f = |m: Option<&MysqlActual>, this: &str| reconcile(&d, &h, m, Some(on), &ok(), this);
        let r = f(Some(&mysql(true, Some("10.0.0.11"))), "db2");
        assert_eq!(r.following, Following::Master("db1".into()));
        assert_eq!(r.held.verified_master, None); // verified only by a step
        assert_eq!(
            f(Some(&mysql(true, Some("10.0.0.12"))), "db2").following,
            Following::Unchanged
        );
        assert_eq!(f(None, "db2").following, Following::Unchanged);
        let me = f(Some(&mysql(false, None)), "db1");
        assert_eq!(me.following, Following::Nobody);
        assert_eq!(me.held.verified_master.as_deref(), Some("db1"));
    }

    #[test]
    fn demotion_completes_when_read_only_or_when_the_server_is_stopped() {
        let base = DemotionFacts {
            writer_wanted: false,
            lease_running: true,
            current: true,
            converged: true,
            stopped_and_no_writer_ip: None,
        };
        assert_eq!(demotion_complete(base), Some(DemotionEnd::ReadOnly));
        let not_converged = DemotionFacts {
            converged: false,
            ..base
        };
        assert_eq!(demotion_complete(not_converged), None);
        for (probe, want) in [
            (Some(true), Some(DemotionEnd::ServerStopped)),
            (Some(false), None),
            (None, None),
        ] {
            let f = DemotionFacts {
                stopped_and_no_writer_ip: probe,
                ..not_converged
            };
            assert_eq!(demotion_complete(f), want, "{f:?}");
        }
        // Still the writer, no lease to end, or a newer state arrived: nothing completes here.
        for f in [
            DemotionFacts {
                writer_wanted: true,
                ..base
            },
            DemotionFacts {
                lease_running: false,
                ..base
            },
            DemotionFacts {
                current: false,
                ..base
            },
        ] {
            assert_eq!(demotion_complete(f), None, "{f:?}");
        }
        assert!(probe_stopped(false, true, false));
        assert!(!probe_stopped(false, true, true));
        assert!(!probe_stopped(false, false, false));
        assert!(!probe_stopped(true, true, false));
    }
}
