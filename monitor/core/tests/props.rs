//! Property tests over random input sequences (not necessarily physically consistent ones):
//! at most one writer (table and desired states), roles only to ONLINE hosts, determinism,
//! no panic.

use ha_core::*;
use proptest::prelude::*;
use std::time::Duration;

const HOSTS: [&str; 4] = ["db1", "db2", "db3", "dbx"]; // dbx is unknown to the spec
const W: &str = "10.0.0.100";

fn spec(lease: u64, kill: bool, mode: Mode) -> ClusterSpec {
    // The example topology with two reader IPs and a (balanced, so ignored) prefer.
    let mut s = ClusterSpec::example();
    s.roles[1].ips.truncate(2);
    s.roles[1].prefer = Some("db3".into());
    s.trap_periods = TrapPeriods::uniform(Duration::from_secs(1));
    s.writer_lease = Duration::from_secs(lease);
    s.kill_host_configured = kill;
    s.auto_set_online = Duration::from_secs(5);
    s.initial_mode = mode;
    s
}

fn host() -> impl Strategy<Value = String> {
    (0..HOSTS.len()).prop_map(|i| HOSTS[i].to_string())
}

fn role() -> impl Strategy<Value = RoleInstance> {
    prop_oneof![
        Just(RoleInstance::new("writer", W)),
        Just(RoleInstance::new("reader", "10.0.0.101")),
        Just(RoleInstance::new("reader", "10.0.0.102")),
        Just(RoleInstance::new("bogus", "1.2.3.4")),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    let outcome = prop_oneof![
        Just(CheckOutcome::Ok),
        Just(CheckOutcome::Ok),
        Just(CheckOutcome::Error),
        Just(CheckOutcome::Unknown)
    ];
    let check = (0..4usize).prop_map(|i| Check::ALL[i]);
    let mode = prop_oneof![
        Just(Mode::Active),
        Just(Mode::Manual),
        Just(Mode::Passive),
        Just(Mode::Wait)
    ];
    let facts = (
        0u64..6,
        prop::collection::vec(role(), 0..3),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        (
            0u32..200,
            prop::option::of(0u64..100_000),
            prop::option::of(0u64..20_000),
        ),
    )
        .prop_map(
            |(epoch, roles, read_only, synced, err, (up, token, left))| AgentFacts {
                uptime_secs: f64::from(up),
                epoch,
                roles,
                read_only,
                writer_synced: synced,
                promotion_error: err.then(|| "sync failed".into()),
                lease_token: token.map(|at_ms| ha_lease::LeaseToken {
                    boot_id: "b".into(),
                    at_ms,
                }),
                lease_remaining: left.map(Duration::from_millis),
                ..Default::default()
            },
        );
    let command = prop_oneof![
        Just(AdminCommand::Ping),
        host().prop_map(AdminCommand::SetOnline),
        host().prop_map(AdminCommand::SetOffline),
        (
            prop_oneof![Just("writer"), Just("reader"), Just("nope")],
            host(),
            any::<bool>()
        )
            .prop_map(|(r, h, force)| AdminCommand::MoveRole {
                role: r.into(),
                host: h,
                force
            }),
        (
            prop_oneof![Just(W), Just("10.0.0.101"), Just("9.9.9.9")],
            host()
        )
            .prop_map(|(ip, h)| AdminCommand::SetIp {
                ip: ip.into(),
                host: h
            }),
        mode.prop_map(AdminCommand::SetMode),
    ];
    prop_oneof![
        6 => (host(), check, outcome).prop_map(|(host, check, outcome)| Input::CheckResult { host, check, outcome, message: "m".into() }),
        1 => any::<bool>().prop_map(|reachable| Input::Network { reachable }),
        3 => (host(), facts).prop_map(|(host, f)| Input::AgentReport { host, report: AgentReport::Status(f) }),
        1 => host().prop_map(|host| Input::AgentReport { host, report: AgentReport::Unreachable { error: "e".into() } }),
        1 => (host(), any::<bool>()).prop_map(|(host, ok)| Input::KillResult { host, ok, output: String::new() }),
        2 => (0u64..1000, command).prop_map(|(id, command)| Input::Command { id, command }),
    ]
}

/// One pass: inputs, time advance (ms), and whether the daemon sends afterwards.
fn pass() -> impl Strategy<Value = (Vec<Input>, u64, bool)> {
    (
        prop::collection::vec(input(), 0..8),
        0u64..4000,
        any::<bool>(),
    )
}

fn run(spec: ClusterSpec, passes: &[(Vec<Input>, u64, bool)]) -> Vec<Vec<Action>> {
    let mut core = Core::new(spec);
    let mut now = 0;
    let mut trace = Vec::new();
    for (inputs, dt, send) in passes {
        now += dt;
        let before = core.role_table();
        let mode_before = core.mode();
        let actions = core.step(inputs.clone(), Millis(now));
        if actions.contains(&Action::SaveStatus) {
            let saved = core.persisted();
            core.saved(&saved);
        }
        let after = core.role_table();
        for ((inst, old), (_, new)) in before.iter().zip(&after) {
            if let Some(n) = new {
                if old.as_ref() != Some(n) {
                    assert_eq!(
                        core.state(n),
                        Some(HostState::Online),
                        "{inst} gained by non-ONLINE {n}"
                    );
                }
            }
        }
        assert!(
            after
                .iter()
                .filter(|(i, o)| i.name == "writer" && o.is_some())
                .count()
                <= 1
        );
        let desired: Vec<DesiredState> = ["db1", "db2", "db3"]
            .iter()
            .filter_map(|h| core.desired_state(h, Millis(now)))
            .collect();
        assert!(
            desired
                .iter()
                .filter(|d| d.roles.iter().any(|r| r.name == "writer"))
                .count()
                <= 1,
            "two desired writers"
        );
        for d in &desired {
            assert!(
                d.roles.windows(2).all(|w| w[0] < w[1]),
                "desired roles sorted and unique"
            );
        }
        if *send {
            for h in ["db1", "db2", "db3"] {
                if let Some(d) = core.desired_state(h, Millis(now)) {
                    core.note_sent(h, &d, Millis(now));
                }
            }
        }
        let replies = actions
            .iter()
            .filter(|a| matches!(a, Action::Reply { .. }))
            .count();
        let commands = inputs
            .iter()
            .filter(|i| matches!(i, Input::Command { .. }))
            .count();
        assert_eq!(replies, commands, "one reply per command");
        let mode_cmd = inputs.iter().any(|i| {
            matches!(
                i,
                Input::Command {
                    command: AdminCommand::SetMode(_),
                    ..
                }
            )
        });
        if matches!(mode_before, Mode::Manual | Mode::Passive) && !mode_cmd {
            assert!(
                !actions.iter().any(|a| matches!(a, Action::Kill { .. })),
                "kill in {mode_before:?} (F3)"
            );
        }
        trace.push(actions);
    }
    let p = core.persisted();
    let restored = Core::restore(core.spec().clone(), &p, Millis(now));
    assert_eq!(
        restored.role_table(),
        core.role_table(),
        "restore changes no roles"
    );
    trace
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_and_runs_are_deterministic(
        lease in prop_oneof![Just(0u64), Just(10)],
        kill in any::<bool>(),
        mode in prop_oneof![Just(Mode::Active), Just(Mode::Manual), Just(Mode::Wait), Just(Mode::Passive)],
        passes in prop::collection::vec(pass(), 1..40),
    ) {
        let a = run(spec(lease, kill, mode), &passes);
        let b = run(spec(lease, kill, mode), &passes);
        prop_assert_eq!(a, b);
    }
}
