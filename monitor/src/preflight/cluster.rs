//! The checks across hosts: server_id, read_only (one writable host at most),
//! auto_increment. Pure: the hosts of monitor.yaml with what was read from each.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{HostFacts, Line};

/// One host of monitor.yaml and what was read from it (`None`: it could not be read; its
/// `connect` line says why).
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub name: &'a str,
    pub ip: IpAddr,
    pub port: u16,
    /// In the active master role's hosts: may become the writer.
    pub candidate: bool,
    pub peer: Option<&'a str>,
    pub facts: Option<&'a HostFacts>,
}

/// `(not checked: db2)` for hosts that could not be read, or nothing.
pub(super) fn unread_note(members: &[Member]) -> String {
    let unread: Vec<&str> = members
        .iter()
        .filter(|m| m.facts.is_none())
        .map(|m| m.name)
        .collect();
    if unread.is_empty() {
        String::new()
    } else {
        format!(
            " (not checked: {}, see its connect line)",
            unread.join(", ")
        )
    }
}

/// The hosts whose `@@read_only` is 0.
pub(super) fn writable<'m, 'a>(members: &'m [Member<'a>]) -> Vec<&'m Member<'a>> {
    members
        .iter()
        .filter(|m| m.facts.and_then(HostFacts::read_only) == Some(false))
        .collect()
}

/// `server_id`: unique, and not 0, across the hosts.
pub fn server_id_line(members: &[Member]) -> Line {
    let mut by_id: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for m in members {
        if let Some(id) = m.facts.and_then(|f| f.number("server_id")) {
            by_id.entry(id).or_default().push(m.name);
        }
    }
    let mut problems: Vec<String> = by_id
        .iter()
        .filter(|(_, hosts)| hosts.len() > 1)
        .map(|(id, hosts)| format!("{} have the same server_id {id}", hosts.join(" and ")))
        .collect();
    if let Some(hosts) = by_id.get(&0) {
        problems.push(format!(
            "server_id 0 on {}: such a server refuses to replicate",
            hosts.join(", ")
        ));
    }
    let note = unread_note(members);
    if !problems.is_empty() {
        return Line::fail(
            "server_id",
            format!("{}{note}", problems.join("; ")),
            "give every server its own server_id (1, 2, 3, …) in my.cnf; SET GLOBAL server_id=N applies it until the next restart (docs/mycnf.md#server_id-unique)",
        );
    }
    let mut ids: Vec<(&str, u64)> = by_id
        .iter()
        .flat_map(|(id, hosts)| hosts.iter().map(move |h| (*h, *id)))
        .collect();
    let order = |n: &str| members.iter().position(|m| m.name == n);
    ids.sort_by_key(|(h, _)| order(h));
    let list: Vec<String> = ids.iter().map(|(h, id)| format!("{h}={id}")).collect();
    Line::ok("server_id", format!("unique: {}{note}", list.join(", ")))
}

/// `read_only`: at most one host writable, and that one a writer candidate. The file setting
/// (`read_only = 1` in my.cnf, which must hold on every host, docs/mycnf.md) cannot be read
/// over the network: this is the live `@@read_only`.
pub fn read_only_line(members: &[Member], role: &str) -> Line {
    const DOC: &str = "docs/mycnf.md#read_only--1-at-start";
    let note = unread_note(members);
    let w = writable(members);
    let names = |ms: &[&Member]| ms.iter().map(|m| m.name).collect::<Vec<_>>().join(", ");
    let others: Vec<&Member> = members
        .iter()
        .filter(|m| m.facts.is_some() && !w.iter().any(|x| x.name == m.name))
        .collect();
    match w.as_slice() {
        [] => Line::ok(
            "read_only",
            format!(
                "no host is writable (read_only=1 on {}){note}: before ha's first start that is expected, ha-monitor makes a host of roles.{role} writable; on a running cluster it means there is no writer (ha-control show)",
                names(&others)
            ),
        ),
        [one] if one.candidate => Line::ok(
            "read_only",
            format!(
                "{} is the only writable host; read_only=1 on {}{note}. my.cnf must say read_only = 1 on every host, the writer too ({DOC})",
                one.name,
                if others.is_empty() { "no other host".to_string() } else { names(&others) }
            ),
        ),
        [one] => Line::fail(
            "read_only",
            format!(
                "{} is writable but is not in roles.{role}.hosts: ha will never keep it the writer{note}",
                one.name
            ),
            format!(
                "SET GLOBAL read_only=1 on {} once the applications write elsewhere (and read_only = 1 in its my.cnf, {DOC}), or add it to roles.{role}.hosts",
                one.name
            ),
        ),
        many => Line::fail(
            "read_only",
            format!(
                "{} hosts are writable: {}{note}: two writers diverge, and ha would fence all but one",
                many.len(),
                names(many)
            ),
            format!(
                "SET GLOBAL read_only=1 on every host but the one the applications write to, and read_only = 1 in every my.cnf ({DOC})"
            ),
        ),
    }
}

/// `auto_increment`: with two or more writer candidates, `auto_increment_increment` at least
/// their number and distinct `auto_increment_offset`s, so keys generated on two of them never
/// collide (ha makes one host writable at a time; this protects writes that bypass it).
pub fn auto_increment_line(members: &[Member]) -> Line {
    let candidates: Vec<(&str, Option<u64>, Option<u64>)> = members
        .iter()
        .filter(|m| m.candidate)
        .filter_map(|m| {
            let f = m.facts?;
            Some((
                m.name,
                f.number("auto_increment_increment"),
                f.number("auto_increment_offset"),
            ))
        })
        .collect();
    let n = members.iter().filter(|m| m.candidate).count() as u64;
    if n < 2 {
        return Line::ok(
            "auto_increment",
            "one writer candidate: keys cannot collide between masters",
        );
    }
    let settings: Vec<String> = candidates
        .iter()
        .map(|(h, inc, off)| {
            let show = |v: &Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
            format!("{h} increment {} offset {}", show(inc), show(off))
        })
        .collect();
    let mut offsets: Vec<Option<u64>> = candidates.iter().map(|(_, _, o)| *o).collect();
    offsets.sort();
    offsets.dedup();
    let small = candidates.iter().any(|(_, inc, _)| inc.unwrap_or(1) < n);
    let clash = offsets.len() < candidates.len();
    let candidates_only: Vec<Member> = members.iter().filter(|m| m.candidate).copied().collect();
    let note = unread_note(&candidates_only);
    if !small && !clash {
        return Line::ok("auto_increment", format!("{}{note}", settings.join(", ")));
    }
    Line::warn(
        "auto_increment",
        format!(
            "{}{note}: two masters can generate the same AUTO_INCREMENT keys; harmless while only ha makes a host writable (one at a time), a replication stop if anything writes on the other master directly",
            settings.join(", ")
        ),
        format!(
            "auto_increment_increment = {n} on the {n} writer candidates with auto_increment_offset 1 to {n}, one each, in my.cnf (SET GLOBAL for now; docs/mycnf.md#what-ha-does-not-need)"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preflight::testdata::lab;
    use crate::preflight::Level;

    fn members(facts: &[HostFacts]) -> Vec<Member<'_>> {
        let names = ["db1", "db2", "db3", "db4"];
        facts
            .iter()
            .enumerate()
            .map(|(i, f)| Member {
                name: names[i],
                ip: format!("10.0.0.{}", 11 + i).parse().unwrap(),
                port: 3306,
                candidate: i < 2,
                peer: None,
                facts: Some(f),
            })
            .collect()
    }

    fn set(f: &mut HostFacts, k: &str, v: &str) {
        f.vars.insert(k.into(), v.into());
    }

    #[test]
    fn unique_server_ids_are_listed_in_host_order() {
        let facts = lab();
        assert_eq!(
            server_id_line(&members(&facts)).to_string(),
            "OK   server_id: unique: db1=1, db2=2, db3=3"
        );
    }

    #[test]
    fn a_duplicate_or_zero_server_id_fails() {
        let mut facts = lab();
        set(&mut facts[2], "server_id", "1");
        let l = server_id_line(&members(&facts));
        assert_eq!(l.level, Level::Fail);
        assert!(l
            .to_string()
            .starts_with("FAIL server_id: db1 and db3 have the same server_id 1 — fix: "));
        let mut facts = lab();
        set(&mut facts[1], "server_id", "0");
        let l = server_id_line(&members(&facts));
        assert!(l.detail.contains("server_id 0 on db2"), "{l}");
    }

    #[test]
    fn hosts_not_read_are_named_not_judged() {
        let facts = lab();
        let mut m = members(&facts);
        m[1].facts = None;
        let l = server_id_line(&m);
        assert_eq!(
            l.to_string(),
            "OK   server_id: unique: db1=1, db3=3 (not checked: db2, see its connect line)"
        );
    }

    #[test]
    fn one_writable_candidate_is_ok() {
        let facts = lab();
        let l = read_only_line(&members(&facts), "writer");
        assert_eq!(l.level, Level::Ok);
        assert!(
            l.detail
                .starts_with("db1 is the only writable host; read_only=1 on db2, db3."),
            "{l}"
        );
        assert!(l.detail.contains("docs/mycnf.md"), "{l}");
    }

    #[test]
    fn two_writable_hosts_fail() {
        let mut facts = lab();
        set(&mut facts[1], "read_only", "OFF");
        let l = read_only_line(&members(&facts), "writer");
        assert_eq!(l.level, Level::Fail);
        assert!(
            l.to_string()
                .starts_with("FAIL read_only: 2 hosts are writable: db1, db2"),
            "{l}"
        );
    }

    #[test]
    fn a_writable_host_outside_the_writer_role_fails() {
        let mut facts = lab();
        set(&mut facts[0], "read_only", "ON");
        set(&mut facts[2], "read_only", "OFF");
        let l = read_only_line(&members(&facts), "writer");
        assert_eq!(l.level, Level::Fail);
        assert!(
            l.detail
                .contains("db3 is writable but is not in roles.writer.hosts"),
            "{l}"
        );
    }

    #[test]
    fn no_writable_host_is_ok_before_the_first_start() {
        let mut facts = lab();
        set(&mut facts[0], "read_only", "ON");
        let l = read_only_line(&members(&facts), "writer");
        assert_eq!(l.level, Level::Ok);
        assert!(
            l.detail
                .starts_with("no host is writable (read_only=1 on db1, db2, db3)"),
            "{l}"
        );
    }

    #[test]
    fn auto_increment_needs_room_for_every_candidate() {
        // The lab: defaults on both masters.
        let facts = lab();
        let l = auto_increment_line(&members(&facts));
        assert_eq!(l.level, Level::Warn);
        assert!(
            l.detail
                .starts_with("db1 increment 1 offset 1, db2 increment 1 offset 1: "),
            "{l}"
        );
        assert!(l
            .fix
            .unwrap_or_default()
            .starts_with("auto_increment_increment = 2"));
        // Set up as mysql-mmm recommended.
        let mut facts = lab();
        set(&mut facts[0], "auto_increment_increment", "2");
        set(&mut facts[1], "auto_increment_increment", "2");
        set(&mut facts[1], "auto_increment_offset", "2");
        assert_eq!(auto_increment_line(&members(&facts)).level, Level::Ok);
        // Room enough but the same offset.
        set(&mut facts[1], "auto_increment_offset", "1");
        assert_eq!(auto_increment_line(&members(&facts)).level, Level::Warn);
        // A replica that cannot be read is not named: it generates no keys.
        let mut m = members(&facts);
        m[2].facts = None;
        assert!(!auto_increment_line(&m).detail.contains("not checked"));
        // One candidate only: nothing to collide with.
        let mut m = members(&facts);
        m[1].candidate = false;
        assert_eq!(auto_increment_line(&m).level, Level::Ok);
    }
}
