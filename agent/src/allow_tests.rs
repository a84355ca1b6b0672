use super::*;
use ha_proto::{HostState, LeaseToken};

const CFG: &str = r#"
this: db1
listen: 10.0.0.11:9989
cluster_interface: eth0
role_ips: [10.0.0.100, 10.0.0.101]
cluster_hosts: { db1: "10.0.0.11:3306", db2: "10.0.0.12:3306", db3: "10.0.0.13:3307" }
mysql: { user: agent }
replication: { user: repl }
tls: off
"#;

fn cfg() -> AgentConfig {
    AgentConfig::parse(CFG, "agent.yaml").expect("test config is valid")
}

fn policy() -> Policy {
    Policy::new(&cfg())
}

fn master(name: &str, ip: &str, port: u32) -> MasterInfo {
    MasterInfo {
        name: name.into(),
        ip: ip.into(),
        port,
    }
}

fn req() -> ApplyStateRequest {
    ApplyStateRequest {
        leader_term: 0,
        writer_peers: Vec::new(),
        host: "db1".into(),
        state: HostState::Online as i32,
        roles: vec![Role::new("reader", "10.0.0.101")],
        active_master: Some(master("db2", "10.0.0.12", 3306)),
        epoch: 5,
        writer_lease_ms: 0,
        writer_role: "writer".into(),
        force: false,
        lease_token: None,
        all_roles: vec![
            Role::new("writer", "10.0.0.100"),
            Role::new("reader", "10.0.0.101"),
            Role::new("reader", "10.0.0.102"),
        ],
        cluster_hosts: vec![
            master("db1", "10.0.0.11", 3306),
            master("db2", "10.0.0.12", 3306),
        ],
    }
}

fn admit(r: &ApplyStateRequest) -> Result<Admitted, Rejection> {
    let d = Desired::from_request(r, "db1").map_err(Rejection::Invalid)?;
    policy().admit(d)
}

fn denied(r: &ApplyStateRequest) -> String {
    match admit(r) {
        Err(Rejection::Denied(m)) => m,
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

#[test]
fn a_request_within_the_configuration_is_admitted() {
    let a = admit(&req()).expect("admitted");
    assert_eq!(a.desired.roles.len(), 1);
    // all_roles narrowed to role_ips: 10.0.0.102 is another host's and never touched here.
    let kept: Vec<String> = a.desired.all_roles.iter().map(|r| r.to_string()).collect();
    assert_eq!(kept, ["reader(10.0.0.101)", "writer(10.0.0.100)"]);
    assert_eq!(a.ignored.len(), 1);
    assert_eq!(a.ignored[0].ip, Ipv4Addr::new(10, 0, 0, 102));
    // The configured cluster hosts replace the request's (db3 was not in the request).
    let names: Vec<&str> = a
        .desired
        .cluster_hosts
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(names, ["db1", "db2", "db3"]);
}

#[test]
fn a_role_ip_outside_role_ips_is_refused() {
    let mut r = req();
    r.all_roles.push(Role::new("reader", "10.0.0.102"));
    r.roles = vec![Role::new("reader", "10.0.0.102")];
    let m = denied(&r);
    assert_eq!(
        m,
        "roles: 10.0.0.102 is not in role_ips of agent.yaml on host 'db1': this host may not hold it"
    );
    // The host's own address, offered as a role, is refused the same way.
    let mut r = req();
    r.all_roles = vec![];
    r.roles = vec![Role::new("reader", "10.0.0.11")];
    assert!(denied(&r).starts_with("roles: 10.0.0.11 is not in role_ips"));
}

#[test]
fn all_roles_cannot_make_the_agent_remove_foreign_addresses() {
    let mut r = req();
    r.roles = vec![];
    r.all_roles = vec![
        Role::new("reader", "10.0.0.11"), // the host's own address
        Role::new("reader", "192.168.1.1"),
        Role::new("writer", "10.0.0.100"),
    ];
    let a = admit(&r).expect("admitted");
    let managed: Vec<Ipv4Addr> = a.desired.all_roles.iter().map(|r| r.ip).collect();
    assert_eq!(managed, [Ipv4Addr::new(10, 0, 0, 100)]);
    // What the planner would remove is a subset of role_ips.
    let held = crate::plan::Held::default();
    let actual = crate::plan::Actual {
        ips: Some(vec![
            Ipv4Addr::new(10, 0, 0, 11),
            Ipv4Addr::new(192, 168, 1, 1),
            Ipv4Addr::new(10, 0, 0, 100),
        ]),
        mysql: None,
    };
    let steps = crate::plan::plan(&a.desired, &held, &actual, "db1");
    let removed: Vec<Ipv4Addr> = steps
        .iter()
        .filter_map(|s| match s {
            crate::plan::Step::RemoveIp(r) => Some(r.ip),
            _ => None,
        })
        .collect();
    assert_eq!(removed, [Ipv4Addr::new(10, 0, 0, 100)]);
}

#[test]
fn replication_sources_must_be_configured_hosts() {
    let mut r = req();
    r.active_master = Some(master("evil", "10.6.6.6", 3306));
    assert_eq!(
        denied(&r),
        "active_master: host 'evil' (10.6.6.6:3306) is not one of cluster_hosts in agent.yaml on host 'db1'"
    );
    let mut r = req();
    r.active_master = Some(master("db2", "10.6.6.6", 3306));
    assert_eq!(
        denied(&r),
        "active_master: host 'db2' is 10.6.6.6:3306 in the request but 10.0.0.12:3306 in cluster_hosts of agent.yaml on host 'db1'"
    );
    let mut r = req();
    r.active_master = Some(master("db3", "10.0.0.13", 3306));
    assert!(denied(&r).contains("10.0.0.13:3307 in cluster_hosts"));
    // This host named as the active master is fine (it is the master), at its own address only.
    let mut r = req();
    r.active_master = Some(master("db1", "10.0.0.11", 3306));
    assert!(admit(&r).is_ok());
    r.active_master = Some(master("db1", "10.0.0.12", 3306));
    assert!(denied(&r).contains("host 'db1' is 10.0.0.12:3306 in the request"));
    // A request's cluster host that does not match the configuration is refused too.
    let mut r = req();
    r.cluster_hosts.push(master("db9", "10.0.0.19", 3306));
    assert!(denied(&r).starts_with("cluster_hosts: host 'db9'"));
    let mut r = req();
    r.cluster_hosts[1].port = 3307;
    assert!(denied(&r).starts_with("cluster_hosts: host 'db2' is 10.0.0.12:3307"));
}

#[test]
fn another_name_for_this_hosts_own_server_is_refused() {
    let text = CFG.replace("db3: \"10.0.0.13:3307\"", "alias: \"10.0.0.11:3306\"");
    let p = Policy::new(&AgentConfig::parse(&text, "agent.yaml").expect("valid"));
    let mut r = req();
    r.active_master = Some(master("alias", "10.0.0.11", 3306));
    let d = Desired::from_request(&r, "db1").expect("well-formed");
    match p.admit(d) {
        Err(Rejection::Denied(m)) => assert!(
            m.contains("is this host's own MySQL server; a host cannot replicate from itself"),
            "{m}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn limits_name_the_field_and_the_limit() {
    let mut r = req();
    r.all_roles = (0..65)
        .map(|i| Role::new("reader", format!("10.1.0.{i}")))
        .collect();
    assert_eq!(
        check_apply_limits(&r),
        Err(Rejection::Invalid(
            "all_roles: 65 entries, at most 64 are accepted".into()
        ))
    );
    let mut r = req();
    r.roles = vec![Role::new("r".repeat(256), "10.0.0.101")];
    assert_eq!(
        check_apply_limits(&r),
        Err(Rejection::Invalid(
            "roles[0].name: 256 bytes, at most 255 are accepted".into()
        ))
    );
    let mut r = req();
    r.host = "h".repeat(MAX_STR);
    assert!(check_apply_limits(&r).is_ok(), "255 bytes are accepted");
    r.host.push('h');
    assert!(check_apply_limits(&r)
        .unwrap_err()
        .message()
        .starts_with("host: 256 bytes"));
    let mut r = req();
    r.cluster_hosts = vec![master("db1", "10.0.0.11", 3306); 65];
    assert!(check_apply_limits(&r)
        .unwrap_err()
        .message()
        .starts_with("cluster_hosts: 65 entries"));
    let mut r = req();
    r.active_master = Some(master(&"m".repeat(300), "10.0.0.12", 3306));
    assert!(check_apply_limits(&r)
        .unwrap_err()
        .message()
        .starts_with("active_master.name: 300 bytes"));
    let mut r = req();
    r.lease_token = Some(LeaseToken {
        boot_id: "b".repeat(1000),
        at_ms: u64::MAX,
    });
    assert!(check_apply_limits(&r)
        .unwrap_err()
        .message()
        .starts_with("lease_token.boot_id: 1000 bytes"));
    let c = ClearBadRolesRequest {
        leader_term: 0,
        host: "db1".into(),
        all_roles: vec![Role::new("reader", "10.0.0.101"); 65],
        writer_role: "writer".into(),
    };
    assert!(check_clear_limits(&c)
        .unwrap_err()
        .message()
        .starts_with("all_roles: 65 entries"));
}

#[test]
fn removal_is_bounded_by_the_configuration() {
    let c = cfg();
    assert!(may_remove(&c, Ipv4Addr::new(10, 0, 0, 100)).is_ok());
    assert_eq!(
        may_remove(&c, Ipv4Addr::new(10, 0, 0, 11)),
        Err(
            "refused to remove 10.0.0.11: it is this host's own address (listen in agent.yaml)"
                .into()
        )
    );
    assert_eq!(
        may_remove(&c, Ipv4Addr::new(10, 0, 0, 102)),
        Err(
            "refused to remove 10.0.0.102: it is not in role_ips of agent.yaml on host 'db1'"
                .into()
        )
    );
}

#[test]
fn clear_bad_roles_only_ever_touches_role_ips() {
    let roles = Desired::parse_roles(
        &[
            Role::new("writer", "10.0.0.100"),
            Role::new("reader", "10.0.0.11"),
            Role::new("reader", "10.0.0.102"),
            Role::new("other", "10.0.0.100"),
        ],
        "all_roles",
    )
    .expect("well-formed");
    let (kept, ignored) = policy().clear_list(roles);
    let kept: Vec<String> = kept.iter().map(|r| r.to_string()).collect();
    assert_eq!(kept, ["writer(10.0.0.100)"], "each IP once, role_ips only");
    let ignored: Vec<String> = ignored.iter().map(|r| r.to_string()).collect();
    assert_eq!(ignored, ["reader(10.0.0.11)", "reader(10.0.0.102)"]);
}

#[test]
fn request_strings_are_escaped() {
    assert_eq!(q("db1"), "'db1'");
    let forged = q("db2\nERROR fake line\r'");
    assert!(!forged.contains('\n') && !forged.contains('\r'), "{forged}");
    assert_eq!(forged, "'db2\\nERROR fake line\\r\\''");
    // A master name with a newline is refused, and the message stays on one line.
    let mut r = req();
    r.active_master = Some(master("db2\nINFO forged", "10.0.0.12", 3306));
    let m = denied(&r);
    assert!(
        !m.contains('\n') && m.contains("'db2\\nINFO forged'"),
        "{m}"
    );
    let mut r = req();
    r.writer_role = "writer\n".into();
    assert!(admit(&r).is_ok(), "surrounding whitespace is trimmed");
    r.writer_role = "wri\nter".into();
    match admit(&r) {
        Err(Rejection::Invalid(m)) => {
            assert_eq!(m, "writer_role: 'wri\\nter' contains invalid characters")
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// Peer promises: a writer is told its peers, which must be other hosts of cluster_hosts at
/// their own IPs; a replica is told none.
#[test]
fn writer_peers_are_other_cluster_hosts_at_their_ips() {
    let peer = |name: &str, address: &str| ha_proto::PeerAgent {
        name: name.into(),
        address: address.into(),
    };
    let mut w = req();
    w.roles = vec![Role::new("writer", "10.0.0.100")];
    w.active_master = Some(master("db1", "10.0.0.11", 3306));
    w.writer_peers = vec![peer("db2", "10.0.0.12:9989")];
    let a = admit(&w).expect("admitted");
    assert_eq!(a.desired.writer_peers.len(), 1);
    assert_eq!(a.desired.writer_peers[0].addr.to_string(), "10.0.0.12:9989");
    // Without the writer role the list means nothing and is dropped.
    let mut r = req();
    r.writer_peers = w.writer_peers.clone();
    assert!(admit(&r).expect("admitted").desired.writer_peers.is_empty());
    // Another IP than cluster_hosts says, or an unknown host: refused.
    w.writer_peers = vec![peer("db2", "10.9.9.9:9989")];
    assert!(denied(&w).contains("writer_peers"));
    w.writer_peers = vec![peer("db7", "10.0.0.12:9989")];
    assert!(denied(&w).contains("writer_peers"));
    // Itself, twice, or garbage: invalid.
    for bad in [
        vec![peer("db1", "10.0.0.11:9989")],
        vec![peer("db2", "10.0.0.12:9989"), peer("db2", "10.0.0.12:9989")],
        vec![peer("db2", "not an address")],
    ] {
        w.writer_peers = bad;
        assert!(
            matches!(admit(&w), Err(Rejection::Invalid(_))),
            "{:?}",
            w.writer_peers
        );
    }
}
