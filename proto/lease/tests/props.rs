//! Property test of the lease rule: under random reply and grant delays, duplicated and
//! reordered grants, arbitrary clock offsets and any drift within ρ, the instant the agent is
//! fenced never comes after the monitor's bound. The same worlds are run through the scheme
//! ha used before (the lease counted from the monitor's wall-clock send time, bound = last
//! send plus agent_timeout plus lease), and the test asserts that it *does* find a violation there: the
//! property is not vacuous.

use ha_lease::promise::{promise_until, PromiseRound};
use ha_lease::{bound_from_remaining, monitor_bound, AgentDeadline, LeaseToken, DRIFT_PPM};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A clock: `reading(t) = offset + t·(1 + ppm/10⁶)`, all in µs of real time `t ≥ 0`.
#[derive(Clone, Copy, Debug)]
struct Clock {
    offset_us: i128,
    ppm: i128,
}

impl Clock {
    fn reading_us(&self, t_us: i128) -> i128 {
        self.offset_us + t_us + t_us * self.ppm / 1_000_000
    }
    /// Millisecond reading (what the daemons see: truncated).
    fn ms(&self, t_us: i128) -> u64 {
        u64::try_from(self.reading_us(t_us).div_euclid(1000)).expect("non-negative clock")
    }
    /// The first real instant at which the clock reads at least `ms` milliseconds.
    fn real_when(&self, ms: u64) -> i128 {
        let target = i128::from(ms) * 1000 - self.offset_us;
        // reading is strictly increasing; binary search is exact and simple.
        let (mut lo, mut hi) = (-1i128, target.max(0) * 2 + 2_000_000);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if mid + mid * self.ppm / 1_000_000 >= target {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }
}

fn clock() -> impl Strategy<Value = Clock> {
    let half = (DRIFT_PPM / 2) as i128;
    (0i128..1_000_000_000_000, -half..=half).prop_map(|(offset_us, ppm)| Clock { offset_us, ppm })
}

/// One reply: the agent reads its clock at real `stamp`, the monitor receives it `delay` later.
#[derive(Clone, Copy, Debug)]
struct Reply {
    gap_us: i128,
    delay_us: i128,
}

/// One grant: echoes the newest token received by real time `send`, delivered `delay` later.
#[derive(Clone, Copy, Debug)]
struct Grant {
    send_after_us: i128,
    delay_us: i128,
}

#[derive(Clone, Debug)]
struct World {
    lease_ms: u64,
    budget_ms: u64,
    agent_timeout_ms: u64,
    monitor: Clock,
    agent: Clock,
    /// Wall clocks (only the old scheme reads them).
    monitor_wall: Clock,
    agent_wall: Clock,
    replies: Vec<Reply>,
    grants: Vec<Grant>,
}

fn world() -> impl Strategy<Value = World> {
    (
        (1u64..60_000, 0u64..10_000, 1u64..10_000),
        (clock(), clock(), clock(), clock()),
        prop::collection::vec(
            (0i128..5_000_000, 0i128..5_000_000)
                .prop_map(|(gap_us, delay_us)| Reply { gap_us, delay_us }),
            1..12,
        ),
        prop::collection::vec(
            (0i128..8_000_000, 0i128..30_000_000).prop_map(|(send_after_us, delay_us)| Grant {
                send_after_us,
                delay_us,
            }),
            1..12,
        ),
    )
        .prop_map(
            |((lease_ms, budget_ms, agent_timeout_ms), (m, a, mw, aw), replies, grants)| World {
                lease_ms,
                budget_ms,
                agent_timeout_ms,
                monitor: m,
                agent: a,
                monitor_wall: mw,
                agent_wall: aw,
                replies,
                grants,
            },
        )
}

/// Real times of each reply's token stamp and receipt.
fn replies(w: &World) -> Vec<(i128, i128)> {
    let mut t = 0;
    w.replies
        .iter()
        .map(|r| {
            t += r.gap_us;
            (t, t + r.delay_us)
        })
        .collect()
}

/// (real send time, real delivery time, index of the echoed reply) of every grant. Grants are
/// sent after the replies they echo; their delivery order is arbitrary (delays are independent),
/// which also models duplicates and reordering.
fn grants(w: &World, replies: &[(i128, i128)]) -> Vec<(i128, i128, usize)> {
    w.grants
        .iter()
        .enumerate()
        .map(|(j, g)| {
            let i = j % replies.len();
            let send = replies[i].1 + g.send_after_us;
            (send, send + g.delay_us, i)
        })
        .collect()
}

/// ha's rule: the agent is fenced by the real instant returned; the monitor's bound is the other.
fn token_scheme(w: &World) -> Result<(), String> {
    let rs = replies(w);
    let mut fenced = i128::MIN;
    let mut bound = i128::MIN;
    for (_, deliver, i) in grants(w, &rs) {
        let (stamp, receipt) = rs[i];
        let d = AgentDeadline::new(w.agent.ms(stamp), w.lease_ms, w.budget_ms);
        // The monitor records the bound when it sends; the agent takes the grant only if it is
        // still valid on arrival (an expired one changes nothing).
        bound = bound.max(w.monitor.real_when(monitor_bound(
            w.monitor.ms(receipt),
            w.lease_ms,
            w.budget_ms,
        )));
        if d.valid_at(w.agent.ms(deliver)) {
            fenced = fenced.max(w.agent.real_when(d.fenced_by_ms));
        }
    }
    if fenced > bound {
        return Err(format!(
            "agent fenced at {fenced} µs, monitor bound {bound} µs"
        ));
    }
    Ok(())
}

/// The scheme before "writer lease v2": the agent grants `lease − (its wall now − sent wall
/// time)` from receipt, on its monotonic clock; the monitor's bound is last send +
/// agent_timeout + lease on its own.
fn send_time_scheme(w: &World) -> Result<(), String> {
    let rs = replies(w);
    let mut fenced = i128::MIN;
    let mut bound = i128::MIN;
    for (send, deliver, _) in grants(w, &rs) {
        let sent_wall = w.monitor_wall.ms(send);
        let late = w.agent_wall.ms(deliver).saturating_sub(sent_wall);
        bound = bound.max(
            w.monitor
                .real_when(w.monitor.ms(send) + w.agent_timeout_ms + w.lease_ms),
        );
        if late < w.lease_ms {
            let left = w.lease_ms - late;
            fenced = fenced.max(w.agent.real_when(w.agent.ms(deliver) + left));
        }
    }
    if fenced > bound {
        return Err(format!(
            "agent fenced at {fenced} µs, monitor bound {bound} µs"
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 20_000, failure_persistence: None, ..Config::default() })]

    #[test]
    fn agent_is_fenced_before_the_monitors_bound(w in world()) {
        if let Err(e) = token_scheme(&w) {
            prop_assert!(false, "{e}\n{w:#?}");
        }
    }
}

proptest! {
    #![proptest_config(Config { cases: 20_000, failure_persistence: None, ..Config::default() })]

    /// An agent reports the lease it has left (e.g. to a monitor that just restarted): the bound
    /// the monitor derives from that report is never before the agent is fenced.
    #[test]
    fn a_reported_remaining_lease_is_bounded(
        (m, a) in (clock(), clock()),
        lead_permille in 0i128..980,
        stamp_us in 0i128..60_000_000,
        delay_us in 0i128..5_000_000,
        lease_ms in 1u64..60_000,
        budget_ms in 0u64..10_000,
    ) {
        // A grant counted from an earlier token, still running when the agent stamps the reply.
        let token_us = (stamp_us - i128::from(lease_ms) * lead_permille).max(0);
        let d = AgentDeadline::new(a.ms(token_us), lease_ms, budget_ms);
        let now = a.ms(stamp_us);
        prop_assume!(d.valid_at(now));
        let remaining = d.fence_at_ms - now;
        let fenced = a.real_when(d.fenced_by_ms);
        let bound = m.real_when(bound_from_remaining(m.ms(stamp_us + delay_us), remaining, budget_ms));
        prop_assert!(fenced <= bound, "fenced {fenced} > bound {bound}");
    }
}

/// One promise round: the writer reads its token at real `token_us`; each of its peers
/// receives the request `delay` later (in any order, each on its own clock).
fn promise_world() -> impl Strategy<Value = (Clock, Vec<(Clock, i128)>, i128, u64, u64)> {
    (
        clock(),
        proptest::collection::vec((clock(), 0i128..5_000_000), 1..4),
        0i128..60_000_000,
        1u64..60_000,
        0u64..10_000,
    )
}

/// The real instant the writer is fenced under the round, and the earliest real instant one
/// of its peers' promises ends (`early` moves the peer's promise start back by that many µs:
/// a peer counting from before it heard the request, to show the check can fail).
fn promise_round(
    (w, peers, token_us, lease_ms, budget_ms): &(Clock, Vec<(Clock, i128)>, i128, u64, u64),
    early_us: i128,
) -> (i128, i128) {
    let token = LeaseToken {
        boot_id: "w".into(),
        at_ms: w.ms(*token_us),
    };
    let mut round = PromiseRound::new(token, *lease_ms, *budget_ms);
    let names: Vec<String> = (0..peers.len()).map(|i| format!("p{i}")).collect();
    let mut earliest_end = i128::MAX;
    for ((clock, delay), name) in peers.iter().zip(&names) {
        let receipt = (token_us + delay - early_us).max(0);
        let until = promise_until(clock.ms(receipt), *lease_ms, *budget_ms);
        earliest_end = earliest_end.min(clock.real_when(until));
        round.promised(name);
    }
    let d = round.deadline(&names).expect("every peer promised");
    (w.real_when(d.fenced_by_ms), earliest_end)
}

proptest! {
    #![proptest_config(Config { cases: 20_000, failure_persistence: None, ..Config::default() })]

    /// Peer promises (issue 14): a writer whose lease rests on its peers' promises is fenced
    /// before the first of those promises ends, whatever the clocks and the delays.
    #[test]
    fn the_writer_is_fenced_before_any_peers_promise_ends(world in promise_world()) {
        let (fenced, earliest_end) = promise_round(&world, 0);
        prop_assert!(fenced <= earliest_end, "fenced {fenced} > promise end {earliest_end}");
    }
}

#[test]
fn a_peer_counting_its_promise_from_too_early_is_caught() {
    let mut runner = TestRunner::new(Config {
        cases: 20_000,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&promise_world(), |w| {
        let (fenced, end) = promise_round(&w, 1_000_000);
        if fenced <= end {
            Ok(())
        } else {
            Err(proptest::test_runner::TestCaseError::fail("violated"))
        }
    });
    assert!(
        result.is_err(),
        "a promise counted 1 s too early was never caught: the property would be vacuous"
    );
}

#[test]
fn the_send_time_scheme_is_caught() {
    let mut runner = TestRunner::new(Config {
        cases: 20_000,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&world(), |w| {
        send_time_scheme(&w).map_err(proptest::test_runner::TestCaseError::fail)
    });
    assert!(
        result.is_err(),
        "the property found no violation of the old scheme: it would not catch a broken lease"
    );
}

#[test]
fn clock_model_round_trips() {
    let c = Clock {
        offset_us: 123_456_789,
        ppm: -5000,
    };
    for t in [0i128, 1, 999, 1_000_000, 987_654_321] {
        let ms = c.ms(t);
        let back = c.real_when(ms);
        assert!(back <= t, "{t} -> {ms} -> {back}");
        assert_eq!(c.ms(back), ms);
        assert!(back == 0 || c.ms(back - 1) < ms);
    }
}
