//! Hostile input: random ApplyState and ClearBadRoles requests (random strings with newlines,
//! huge and unicode ones, random IPs, hundreds of repeated entries, extreme epochs and lease
//! tokens) and random protobuf bytes go through the agent's real validation path
//! (`Policy::check_apply` / `check_clear`, as the gRPC service calls it). None may panic or take
//! long; whatever is admitted stays inside what agent.yaml allows, and a request naming a role
//! IP outside `role_ips` or a replication source outside `cluster_hosts` is refused.
//!
//! 256 cases per property by default; a longer run:
//! `PROPTEST_CASES=20000 cargo test -p ha-agent --test hostile_input --release`

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ha_agent::allow::{Policy, Rejection, MAX_ENTRIES, MAX_STR};
use ha_config::AgentConfig;
use ha_proto::{ApplyStateRequest, ClearBadRolesRequest, LeaseToken, MasterInfo, Role};
use proptest::prelude::*;
use prost::Message;

const CFG: &str = r#"
this: db1
listen: 10.0.0.11:9989
cluster_interface: eth0
role_ips: [10.0.0.100, 10.0.0.101, 10.0.0.102]
cluster_hosts: { db1: "10.0.0.11:3306", db2: "10.0.0.12:3306", db3: "10.0.0.13:3306" }
mysql: { user: agent }
replication: { user: repl }
tls: off
"#;

const ROLE_IPS: [&str; 3] = ["10.0.0.100", "10.0.0.101", "10.0.0.102"];
const HOSTS: [(&str, &str); 3] = [
    ("db1", "10.0.0.11"),
    ("db2", "10.0.0.12"),
    ("db3", "10.0.0.13"),
];

/// Generous bound for one validation (debug build, loaded 2-core machine).
const BOUND: Duration = Duration::from_millis(200);

/// 256 cases, or `PROPTEST_CASES` (proptest's default reads it); no failure files.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn policy() -> (AgentConfig, Policy) {
    let cfg = AgentConfig::parse(CFG, "agent.yaml").expect("test config is valid");
    let p = Policy::new(&cfg);
    (cfg, p)
}

/// Strings an attacker would try: plausible values, control characters, unicode, huge.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => Just("db1".to_string()),
        2 => prop::sample::select(vec!["reader", "writer", "db2", "db3", ""]).prop_map(String::from),
        2 => ".{0,40}",
        1 => "[a-z]{1,8}(\n|\r|\u{1b}|\u{202e}|\\(|\\))[a-z]{0,8}",
        1 => (0usize..2000).prop_map(|n| "x".repeat(n)),
    ]
    .boxed()
}

/// IPs: this host's role IPs, its own address, other addresses, garbage.
fn ip() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::sample::select(ROLE_IPS.to_vec()).prop_map(String::from),
        1 => Just("10.0.0.11".to_string()),
        2 => any::<u32>().prop_map(|v| Ipv4Addr::from(v).to_string()),
        1 => text(),
        1 => Just(" 10.0.0.100 ".to_string()),
    ]
    .boxed()
}

fn role() -> BoxedStrategy<Role> {
    (text(), ip())
        .prop_map(|(name, ip)| Role { name, ip })
        .boxed()
}

fn master() -> BoxedStrategy<MasterInfo> {
    let port = || prop_oneof![4 => Just(3306u32), 2 => 1u32..65536, 1 => any::<u32>()];
    let host_ip = prop_oneof![
        prop::sample::select(HOSTS.iter().map(|h| h.1).collect::<Vec<_>>()).prop_map(String::from),
        ip(),
    ];
    prop_oneof![
        // A configured host, sometimes with another host's address, a wrong port or garbage.
        4 => (prop::sample::select(HOSTS.to_vec()), prop::option::of(host_ip), port())
            .prop_map(|((n, i), other, port)| MasterInfo {
                name: n.into(),
                ip: other.unwrap_or_else(|| i.into()),
                port,
            }),
        2 => (text(), ip(), port()).prop_map(|(name, ip, port)| MasterInfo { name, ip, port }),
        1 => Just(MasterInfo::default()),
    ]
    .boxed()
}

/// Up to a few hundred entries, often repeats of one entry.
fn many<T: Clone + std::fmt::Debug + 'static>(s: BoxedStrategy<T>) -> BoxedStrategy<Vec<T>> {
    prop_oneof![
        3 => prop::collection::vec(s.clone(), 0..6),
        1 => prop::collection::vec(s.clone(), 0..300),
        1 => (s, 0usize..300).prop_map(|(x, n)| vec![x; n]),
    ]
    .boxed()
}

fn request() -> impl Strategy<Value = ApplyStateRequest> {
    (
        (text(), 0i32..10, many(role()), prop::option::of(master())),
        (
            prop_oneof![Just(0u64), Just(1), Just(u64::MAX), any::<u64>()],
            prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>()],
            prop_oneof![Just("writer".to_string()), text()],
            any::<bool>(),
        ),
        (
            many(role()),
            many(master()),
            prop::option::of((text(), any::<u64>())),
        ),
    )
        .prop_map(
            |((host, state, roles, am), (epoch, lease, writer_role, force), (all, hosts, tok))| {
                ApplyStateRequest {
                    leader_term: 0,
                    writer_peers: Vec::new(),
                    host,
                    state,
                    roles,
                    active_master: am,
                    epoch,
                    writer_lease_ms: lease,
                    writer_role,
                    force,
                    lease_token: tok.map(|(boot_id, at_ms)| LeaseToken { boot_id, at_ms }),
                    all_roles: all,
                    cluster_hosts: hosts,
                }
            },
        )
}

fn timed<T>(f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    assert!(t.elapsed() < BOUND, "validation took {:?}", t.elapsed());
    r
}

fn configured(m: &MasterInfo) -> bool {
    HOSTS
        .iter()
        .any(|(n, i)| m.name == *n && m.ip.trim() == *i && m.port == 3306)
}

/// Checks one request through the real path and the properties every outcome must have.
fn check(p: &Policy, req: &ApplyStateRequest) {
    let result = timed(|| p.check_apply(req));
    let role_ips: Vec<Ipv4Addr> = ROLE_IPS.iter().filter_map(|s| s.parse().ok()).collect();
    match result {
        Ok(a) => {
            let d = &a.desired;
            assert!(d.roles.len() <= MAX_ENTRIES && d.all_roles.len() <= MAX_ENTRIES);
            for r in d.roles.iter().chain(d.all_roles.iter()) {
                assert!(role_ips.contains(&r.ip), "admitted {r} outside role_ips");
                assert!(r.name.len() <= MAX_STR && !r.name.contains('\n'));
            }
            if let Some(m) = &d.active_master {
                assert!(
                    HOSTS
                        .iter()
                        .any(|(n, i)| m.name == *n && m.ip.to_string() == *i && m.port == 3306),
                    "admitted active master {m:?}"
                );
            }
            let names: Vec<&str> = d.cluster_hosts.iter().map(|h| h.name.as_str()).collect();
            assert_eq!(names, ["db1", "db2", "db3"], "the configured hosts, always");
            // Everything the request names had to be allowed.
            for r in &req.roles {
                assert!(
                    ROLE_IPS.contains(&r.ip.trim()),
                    "foreign role {r:?} admitted"
                );
            }
            if let Some(m) = req.active_master.as_ref().filter(|m| !m.name.is_empty()) {
                assert!(configured(m), "foreign master {m:?} admitted");
            }
            for h in req.cluster_hosts.iter().filter(|h| !h.name.is_empty()) {
                assert!(configured(h), "foreign cluster host {h:?} admitted");
            }
        }
        Err(r) => {
            let m = r.message();
            assert!(!m.is_empty());
            assert!(
                !m.contains('\n') && !m.contains('\r'),
                "a refusal message must stay on one line: {m:?}"
            );
            assert!(
                m.len() < 4 * MAX_STR + 400,
                "refusal message of {} bytes",
                m.len()
            );
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_apply_state_requests(req in request()) {
        let (_, p) = policy();
        check(&p, &req);
    }

    /// Mostly well-formed requests for this host, so the configuration checks are reached.
    #[test]
    fn a_foreign_role_ip_or_master_is_always_refused(
        extra in any::<u32>(),
        am in master(),
        epoch in any::<u64>(),
        hosts in prop::collection::vec(master(), 0..4),
    ) {
        let (_, p) = policy();
        let foreign = Ipv4Addr::from(extra);
        let foreign_role = !ROLE_IPS.contains(&foreign.to_string().as_str());
        let mut req = ApplyStateRequest {
            writer_peers: Vec::new(),
            host: "db1".into(),
            state: ha_proto::HostState::Online as i32,
            roles: vec![Role::new("reader", "10.0.0.101"), Role::new("reader", foreign.to_string())],
            active_master: Some(am.clone()),
            epoch,
            writer_role: "writer".into(),
            ..Default::default()
        };
        check(&p, &req);
        if foreign_role {
            prop_assert!(p.check_apply(&req).is_err());
        }
        req.roles.truncate(1);
        let r = p.check_apply(&req);
        let am_ok = configured(&am) || am.name.is_empty() && am.ip.is_empty();
        match (&r, am_ok) {
            (Ok(_), true) | (Err(Rejection::Invalid(_)), false) => {}
            (Ok(_), false) => prop_assert!(false, "foreign master {am:?} admitted"),
            (Err(Rejection::Denied(m)), false) => {
                prop_assert!(m.starts_with("active_master: "), "{m}")
            }
            (Err(e), true) => prop_assert!(false, "valid request refused: {e:?}"),
        }
        // The request's cluster hosts: all configured (or empty entries), or refused.
        req.active_master = None;
        req.cluster_hosts = hosts.clone();
        let all_ok = hosts
            .iter()
            .all(|h| configured(h) || h.name.is_empty() && h.ip.is_empty());
        match (p.check_apply(&req), all_ok) {
            (Ok(_), true) | (Err(Rejection::Invalid(_)), false) => {}
            (Ok(_), false) => prop_assert!(false, "foreign cluster host in {hosts:?} admitted"),
            (Err(Rejection::Denied(m)), false) => {
                prop_assert!(m.starts_with("cluster_hosts: "), "{m}")
            }
            (Err(e), true) => prop_assert!(false, "valid request refused: {e:?}"),
        }
    }

    #[test]
    fn random_bytes_decoded_then_validated(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let (_, p) = policy();
        if let Ok(req) = timed(|| ApplyStateRequest::decode(bytes.as_slice())) {
            check(&p, &req);
        }
        if let Ok(req) = timed(|| ClearBadRolesRequest::decode(bytes.as_slice())) {
            let _ = timed(|| p.check_clear(&req));
        }
    }

    #[test]
    fn clear_bad_roles_never_leaves_role_ips(
        host in prop_oneof![Just("db1".to_string()), text()],
        all in many(role()),
        writer_role in text(),
    ) {
        let (cfg, p) = policy();
        let req = ClearBadRolesRequest { host, all_roles: all, writer_role, leader_term: 0 };
        if let Ok((kept, _ignored)) = timed(|| p.check_clear(&req)) {
            let mut seen = std::collections::HashSet::new();
            for r in &kept {
                prop_assert!(cfg.role_ips.contains(&r.ip), "{r} outside role_ips");
                prop_assert!(ha_agent::allow::may_remove(&cfg, r.ip).is_ok());
                prop_assert!(seen.insert(r.ip), "{} twice", r.ip);
            }
        }
    }
}

/// The generators above do reach the admitted branch: a valid request is admitted.
#[test]
fn a_valid_request_is_admitted() {
    let (_, p) = policy();
    let req = ApplyStateRequest {
        writer_peers: Vec::new(),
        host: "db1".into(),
        state: ha_proto::HostState::Online as i32,
        roles: vec![Role::new("reader", "10.0.0.101")],
        active_master: Some(MasterInfo {
            name: "db2".into(),
            ip: "10.0.0.12".into(),
            port: 3306,
        }),
        epoch: u64::MAX,
        writer_role: "writer".into(),
        all_roles: vec![Role::new("reader", "10.0.0.101"); 64],
        ..Default::default()
    };
    let a = p.check_apply(&req).expect("admitted");
    assert_eq!(a.desired.all_roles.len(), 1, "deduplicated");
    let mut big = req.clone();
    big.all_roles = vec![Role::new("reader", "10.0.0.101"); 65];
    assert!(matches!(p.check_apply(&big), Err(Rejection::Invalid(_))));
}
