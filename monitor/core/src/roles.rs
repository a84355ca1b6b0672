//! The role table (docs/mmm-behaviour.md §4): which host owns each (role, ip) pair, and the pure
//! distribution algorithm (orphans → preferences → balancing).
//!
//! The table records *decisions*. Whether an agent is already told about a decision is a
//! separate question answered by the failover gate (`failover.rs`): a pair moved in the table is
//! only handed to its new owner once the old owner has let go of it (F9, F10).

use crate::ids::{EntryId, HostId, IdVec, RoleId};
use crate::spec::{ClusterSpec, RoleInstance, RoleMode};

/// One (role, ip) pair and its owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub role: RoleId,
    pub ip: String,
    /// `None` = orphaned.
    pub owner: Option<HostId>,
}

/// Why a pair changed owner during distribution (selects the log line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MoveWhy {
    Orphan,
    Prefer,
    Balance,
}

/// One owner change made by [`RoleTable::distribute`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Move {
    pub entry: EntryId,
    pub from: Option<HostId>,
    pub to: HostId,
    pub why: MoveWhy,
}

/// All (role, ip) pairs in config order (roles in config order, IPs in config order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RoleTable {
    pub entries: IdVec<EntryId, Entry>,
    /// The active master role, if configured.
    writer_role: Option<RoleId>,
}

/// Upper bound on balancing iterations; the loop provably terminates much earlier, this only
/// guarantees it even if that proof were wrong.
const BALANCE_GUARD: usize = 10_000;

impl RoleTable {
    /// All pairs orphaned. Exclusive roles contribute only their first IP (F5: more is a
    /// config error the daemon rejects; the core must not crash on it either).
    pub fn new(spec: &ClusterSpec) -> RoleTable {
        let mut entries = Vec::new();
        for (r, role) in spec.roles_with_ids() {
            let ips: &[String] = match role.mode {
                RoleMode::Exclusive => role.ips.get(..1).unwrap_or(&[]),
                RoleMode::Balanced => &role.ips,
            };
            for ip in ips {
                entries.push(Entry {
                    role: r,
                    ip: ip.clone(),
                    owner: None,
                });
            }
        }
        RoleTable {
            entries: entries.into(),
            writer_role: spec.writer_role(),
        }
    }

    /// The pair of role `name` with IP `ip`.
    pub fn find(&self, spec: &ClusterSpec, name: &str, ip: &str) -> Option<EntryId> {
        self.entries
            .position(|e| e.ip == ip && spec.role(e.role).is_some_and(|r| r.name == name))
    }

    /// The pair holding IP `ip` (IPs are unique across roles in a valid spec).
    pub fn find_ip(&self, ip: &str) -> Option<EntryId> {
        self.entries.position(|e| e.ip == ip)
    }

    /// The active master role's pair.
    pub fn writer_entry(&self) -> Option<EntryId> {
        let w = self.writer_role?;
        self.first_entry(w)
    }

    /// The first pair of role `r` (an exclusive role has only this one).
    pub fn first_entry(&self, r: RoleId) -> Option<EntryId> {
        self.entries.position(|e| e.role == r)
    }

    /// Owner of the active master role ("the active master").
    pub fn active_master(&self) -> Option<HostId> {
        self.writer_entry().and_then(|e| self.entries[e].owner)
    }

    pub fn is_writer(&self, entry: EntryId) -> bool {
        self.entries
            .get(entry)
            .is_some_and(|e| Some(e.role) == self.writer_role)
    }

    pub fn instance(&self, spec: &ClusterSpec, entry: EntryId) -> RoleInstance {
        match self.entries.get(entry) {
            Some(e) => RoleInstance {
                name: spec
                    .role(e.role)
                    .map(|r| r.name.clone())
                    .unwrap_or_default(),
                ip: e.ip.clone(),
            },
            None => RoleInstance::new("", ""),
        }
    }

    /// Pairs owned by `host`, in table order.
    pub fn owned_by(&self, host: HostId) -> Vec<EntryId> {
        self.entries
            .iter_enumerated()
            .filter(|(_, e)| e.owner == Some(host))
            .map(|(i, _)| i)
            .collect()
    }

    /// Roles of `host`, sorted by name then IP.
    pub fn roles_of(&self, spec: &ClusterSpec, host: HostId) -> Vec<RoleInstance> {
        let mut v: Vec<RoleInstance> = self
            .owned_by(host)
            .into_iter()
            .map(|e| self.instance(spec, e))
            .collect();
        v.sort();
        v
    }

    /// Load of a host in half units (§4.2): an active-master pair counts 1 (= 0.5), any other
    /// pair 2 (= 1). Half units keep the arithmetic exact.
    pub fn load(&self, host: HostId) -> u32 {
        self.entries
            .iter()
            .filter(|e| e.owner == Some(host))
            .map(|e| {
                if Some(e.role) == self.writer_role {
                    1
                } else {
                    2
                }
            })
            .sum()
    }

    /// Picks one host for role `r` (§4.3): the preferred host if eligible, else the eligible host
    /// with the lowest load, ties to the host listed first in the role's `hosts`.
    fn pick(
        &self,
        spec: &ClusterSpec,
        r: RoleId,
        eligible: &dyn Fn(RoleId, HostId) -> bool,
    ) -> Option<HostId> {
        let role = spec.role(r)?;
        if role.mode == RoleMode::Exclusive {
            if let Some(p) = role.prefer.as_deref().and_then(|p| spec.host_id(p)) {
                if eligible(r, p) {
                    return Some(p);
                }
            }
        }
        let mut best: Option<(u32, HostId)> = None;
        for h in role.hosts.iter().filter_map(|h| spec.host_id(h)) {
            if !eligible(r, h) {
                continue;
            }
            let load = self.load(h);
            if best.is_none_or(|(l, _)| load < l) {
                best = Some((load, h));
            }
        }
        best.map(|(_, h)| h)
    }

    /// Clears every pair of `host`; returns the pairs that became orphaned.
    #[cfg(test)]
    pub fn clear_host(&mut self, host: HostId) -> Vec<EntryId> {
        let owned = self.owned_by(host);
        for &e in &owned {
            self.entries[e].owner = None;
        }
        owned
    }

    /// The distribution step (§4.4 steps 2–4). `eligible(role, host)` must include "listed in the
    /// role's hosts"; `preferences` is true only in ACTIVE mode. Returns the moves in the order
    /// they were made.
    pub fn distribute(
        &mut self,
        spec: &ClusterSpec,
        eligible: &dyn Fn(RoleId, HostId) -> bool,
        preferences: bool,
    ) -> Vec<Move> {
        let mut moves = Vec::new();
        // Orphans: exclusive roles first, then balanced roles; config order within each.
        for mode in [RoleMode::Exclusive, RoleMode::Balanced] {
            for (r, _) in spec.roles_with_ids().filter(|(_, role)| role.mode == mode) {
                for e in self.entries.ids() {
                    if self.entries[e].role != r || self.entries[e].owner.is_some() {
                        continue;
                    }
                    // No eligible host: the rest of this role's IPs stay orphaned too.
                    let Some(h) = self.pick(spec, r, eligible) else {
                        break;
                    };
                    self.entries[e].owner = Some(h);
                    moves.push(Move {
                        entry: e,
                        from: None,
                        to: h,
                        why: MoveWhy::Orphan,
                    });
                }
            }
        }
        if preferences {
            for (r, role) in spec.roles_with_ids() {
                if role.mode != RoleMode::Exclusive {
                    continue;
                }
                let Some(p) = role.prefer.as_deref().and_then(|p| spec.host_id(p)) else {
                    continue;
                };
                let Some(e) = self.first_entry(r) else {
                    continue;
                };
                if self.entries[e].owner != Some(p) && eligible(r, p) {
                    let from = self.entries[e].owner.replace(p);
                    moves.push(Move {
                        entry: e,
                        from,
                        to: p,
                        why: MoveWhy::Prefer,
                    });
                }
            }
        }
        for (r, role) in spec.roles_with_ids() {
            if role.mode == RoleMode::Balanced {
                self.balance(spec, r, eligible, &mut moves);
            }
        }
        moves
    }

    /// Moves IPs of balanced role `r` from the most to the least loaded eligible host until the
    /// loads differ by at most one (2 half units). Ties go to the host listed first.
    fn balance(
        &mut self,
        spec: &ClusterSpec,
        r: RoleId,
        eligible: &dyn Fn(RoleId, HostId) -> bool,
        moves: &mut Vec<Move>,
    ) {
        let Some(role) = spec.role(r) else {
            return;
        };
        // Eligible hosts with their loads; `max_i` / `min_i` below are positions in this list.
        let mut hosts: Vec<(HostId, u32)> = role
            .hosts
            .iter()
            .filter_map(|h| spec.host_id(h))
            .filter(|&h| eligible(r, h))
            .map(|h| (h, self.load(h)))
            .collect();
        if hosts.len() < 2 {
            return;
        }
        for _ in 0..BALANCE_GUARD {
            let (mut max_i, mut min_i) = (0, 0);
            for (i, &(_, load)) in hosts.iter().enumerate() {
                if load > hosts[max_i].1 {
                    max_i = i;
                }
                if load < hosts[min_i].1 {
                    min_i = i;
                }
            }
            if hosts[max_i].1 - hosts[min_i].1 <= 2 {
                return;
            }
            let (from, to) = (hosts[max_i].0, hosts[min_i].0);
            if let Some(e) = self
                .entries
                .position(|en| en.role == r && en.owner == Some(from))
            {
                self.entries[e].owner = Some(to);
                moves.push(Move {
                    entry: e,
                    from: Some(from),
                    to,
                    why: MoveWhy::Balance,
                });
            }
            // Adjusted even when nothing moved (as mmm does); this is what ends the loop.
            hosts[max_i].1 -= 2;
            hosts[min_i].1 += 2;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The role-table cases of mmm's `Monitor/t/Roles.t` (docs/mmm-behaviour.md §9.2) with the
    //! 0.5-weighted expectations.
    use super::*;
    use crate::ids::Id;
    use crate::spec::{HostMode, HostSpec, RoleSpec};

    const DB1: HostId = HostId(0);
    const DB2: HostId = HostId(1);
    const DB3: HostId = HostId(2);

    pub(crate) fn roles_t_spec() -> ClusterSpec {
        let host = |n: &str, ip: &str| HostSpec {
            name: n.into(),
            ip: ip.into(),
            mode: HostMode::Master,
            peer: None,
        };
        ClusterSpec::with_defaults(
            vec![
                host("db1", "192.168.0.11"),
                host("db2", "192.168.0.12"),
                host("db3", "192.168.0.13"),
            ],
            vec![
                RoleSpec {
                    name: "writer".into(),
                    mode: RoleMode::Exclusive,
                    hosts: vec!["db1".into(), "db2".into()],
                    ips: vec!["192.168.0.100".into()],
                    prefer: None,
                },
                RoleSpec {
                    name: "reader".into(),
                    mode: RoleMode::Balanced,
                    hosts: vec!["db1".into(), "db2".into(), "db3".into()],
                    ips: vec![
                        "192.168.0.1".into(),
                        "192.168.0.2".into(),
                        "192.168.0.3".into(),
                    ],
                    prefer: None,
                },
            ],
            "writer",
        )
    }

    fn names(t: &RoleTable, spec: &ClusterSpec, h: HostId) -> Vec<String> {
        t.roles_of(spec, h).iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn roles_t_1_to_4_active_master_follows_the_writer_pair() {
        let spec = roles_t_spec();
        let mut t = RoleTable::new(&spec);
        assert_eq!(t.entries.len(), 4);
        assert_eq!(t.active_master(), None);
        let w = t
            .find(&spec, "writer", "192.168.0.100")
            .expect("writer pair");
        t.entries[w].owner = Some(DB1);
        assert_eq!(t.active_master(), Some(DB1));
        t.clear_host(DB1);
        assert_eq!(t.active_master(), None);
    }

    #[test]
    fn roles_t_5_to_11_counts_are_weighted_and_lists_sorted() {
        let spec = roles_t_spec();
        let mut t = RoleTable::new(&spec);
        let w = t.writer_entry().expect("writer");
        t.entries[w].owner = Some(DB2);
        t.entries[w].owner = Some(DB1);
        assert_eq!(t.load(DB1), 1, "case 5: db1 counts 0.5");
        assert_eq!(t.load(DB2), 0, "case 6");
        assert_eq!(names(&t, &spec, DB1), ["writer(192.168.0.100)"], "case 7");
        t.entries[w].owner = Some(DB2);
        assert_eq!(t.load(DB1), 0, "case 8");
        assert_eq!(t.load(DB2), 1, "case 9: db2 counts 0.5");
        for ip in ["192.168.0.1", "192.168.0.2", "192.168.0.3"] {
            let e = t.find(&spec, "reader", ip).expect("reader");
            t.entries[e].owner = Some(DB2);
        }
        assert_eq!(t.load(DB2), 7, "case 10: 3.5");
        assert_eq!(
            names(&t, &spec, DB2),
            [
                "reader(192.168.0.1)",
                "reader(192.168.0.2)",
                "reader(192.168.0.3)",
                "writer(192.168.0.100)"
            ],
            "case 11: sorted"
        );
    }

    #[test]
    fn roles_t_12_to_14_balancing_and_orphans() {
        let spec = roles_t_spec();
        let mut t = RoleTable::new(&spec);
        for e in t.entries.iter_mut() {
            e.owner = Some(DB2);
        }
        // db1, db2 ONLINE, db3 UNKNOWN.
        let online = [true, true, false];
        let elig = |r: RoleId, h: HostId| online[h.index()] && spec.can_hold(r, h);
        let moves = t.distribute(&spec, &elig, true);
        assert_eq!(t.load(DB1), 4, "case 12: db1 has 2");
        assert_eq!(t.load(DB2), 3, "case 13: db2 has 1.5");
        assert!(moves.iter().all(|m| m.why == MoveWhy::Balance));
        // db2 HARD_OFFLINE: clear its roles, process orphans.
        t.clear_host(DB2);
        let online = [true, false, false];
        let elig = |r: RoleId, h: HostId| online[h.index()] && spec.can_hold(r, h);
        t.distribute(&spec, &elig, true);
        assert_eq!(t.load(DB1), 7, "case 14: db1 has 3.5");
    }

    #[test]
    fn typical_distribution_two_masters_one_slave() {
        let spec = roles_t_spec();
        let mut t = RoleTable::new(&spec);
        let elig = |r: RoleId, h: HostId| spec.can_hold(r, h);
        t.distribute(&spec, &elig, true);
        // The writer (0.5) goes first, so db1 is the most loaded when readers are handed out.
        assert_eq!(
            names(&t, &spec, DB1),
            ["reader(192.168.0.3)", "writer(192.168.0.100)"]
        );
        assert_eq!(names(&t, &spec, DB2), ["reader(192.168.0.1)"]);
        assert_eq!(names(&t, &spec, DB3), ["reader(192.168.0.2)"]);
    }

    #[test]
    fn orphan_assignment_stops_for_a_role_without_eligible_host() {
        let spec = roles_t_spec();
        let mut t = RoleTable::new(&spec);
        let moves = t.distribute(&spec, &|_, _| false, true);
        assert!(moves.is_empty());
        assert!(t.entries.iter().all(|e| e.owner.is_none()));
    }

    #[test]
    fn preferred_host_pulls_the_role_back_only_with_preferences() {
        let mut spec = roles_t_spec();
        spec.roles[0].prefer = Some("db2".into());
        let mut t = RoleTable::new(&spec);
        let w = t.writer_entry().expect("writer");
        t.entries[w].owner = Some(DB1);
        let elig = |r: RoleId, h: HostId| spec.can_hold(r, h);
        t.distribute(&spec, &elig, false);
        assert_eq!(t.active_master(), Some(DB1), "no fail-back in manual modes");
        let moves = t.distribute(&spec, &elig, true);
        assert_eq!(t.active_master(), Some(DB2));
        assert!(moves.contains(&Move {
            entry: w,
            from: Some(DB1),
            to: DB2,
            why: MoveWhy::Prefer
        }));
    }
}
