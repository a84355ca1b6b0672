//! Random YAML-ish text and random mutations of the shipped samples (etc/agent.yaml,
//! etc/monitor.yaml) through `AgentConfig::parse` / `MonitorConfig::parse`: never a panic,
//! always a bounded time, and every error is one `file: …` line per problem.
//!
//! 256 cases per property by default; a longer run:
//! `PROPTEST_CASES=20000 cargo test -p ha-config --test fuzz_yaml --release`

use std::time::{Duration, Instant};

use ha_config::{AgentConfig, ConfigErrors, MonitorConfig};
use proptest::prelude::*;

const AGENT: &str = include_str!("../../../etc/agent.yaml");
const MONITOR: &str = include_str!("../../../etc/monitor.yaml");

/// Generous bound for one parse (debug build, loaded 2-core machine): it catches a parse that
/// blows up on nesting or width, not a slow machine. 500 ms failed once while a chaos soak and
/// a release build shared the two cores.
const BOUND: Duration = Duration::from_secs(5);

/// 256 cases, or `PROPTEST_CASES` (proptest's default reads it); no failure files.
fn config() -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One edit of a text: delete, duplicate, replace or insert a piece, at a random place.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Duplicate(usize, usize),
    Insert(usize, String),
    ReplaceLine(usize, String),
}

fn piece() -> BoxedStrategy<String> {
    prop_oneof![
        Just(": ".to_string()),
        Just("\n  ".to_string()),
        Just("- ".to_string()),
        Just("[".to_string()),
        Just("{".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("!!binary ".to_string()),
        Just("~".to_string()),
        Just("0x".to_string()),
        Just("99999999999999999999".to_string()),
        Just("-1".to_string()),
        Just("1e308".to_string()),
        Just("nan".to_string()),
        Just("\"\\u0000\"".to_string()),
        Just("\t".to_string()),
        Just("'".to_string()),
        Just("10.0.60.300".to_string()),
        Just("[fd00::1]:3306".to_string()),
        ".{0,30}",
    ]
    .boxed()
}

fn edit() -> BoxedStrategy<Edit> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), 0usize..200).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        (any::<usize>(), piece()).prop_map(|(a, p)| Edit::Insert(a, p)),
        (any::<usize>(), piece()).prop_map(|(a, p)| Edit::ReplaceLine(a, p)),
    ]
    .boxed()
}

/// A char boundary of `s` derived from `at`.
fn boundary(s: &str, at: usize) -> usize {
    if s.is_empty() {
        return 0;
    }
    let mut i = at % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut s = text.to_string();
    for e in edits {
        match e {
            Edit::Delete(a, n) => {
                let i = boundary(&s, *a);
                let j = boundary(&s, i.saturating_add(*n).min(s.len()));
                if j > i {
                    s.replace_range(i..j, "");
                }
            }
            Edit::Duplicate(a, n) => {
                let i = boundary(&s, *a);
                let j = boundary(&s, i.saturating_add(*n).min(s.len()));
                if j > i {
                    let dup = s[i..j].to_string();
                    s.insert_str(j, &dup);
                }
            }
            Edit::Insert(a, p) => {
                let i = boundary(&s, *a);
                s.insert_str(i, p);
            }
            Edit::ReplaceLine(a, p) => {
                let mut lines: Vec<String> = s.lines().map(String::from).collect();
                if !lines.is_empty() {
                    let k = a % lines.len();
                    lines[k] = p.clone();
                }
                s = lines.join("\n");
            }
        }
    }
    s
}

fn timed<T>(f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    assert!(t.elapsed() < BOUND, "parse took {:?}", t.elapsed());
    r
}

/// Every error names the file and stays on its line.
fn well_formed(e: &ConfigErrors, file: &str) {
    assert!(!e.0.is_empty(), "an error without a problem");
    let shown = e.to_string();
    assert_eq!(shown.lines().count(), e.0.len(), "{shown}");
    for line in shown.lines() {
        assert!(line.starts_with(&format!("{file}: ")), "{line}");
    }
}

fn check_agent(text: &str) {
    if let Err(e) = timed(|| AgentConfig::parse(text, "agent.yaml")) {
        well_formed(&e, "agent.yaml");
    }
}

fn check_monitor(text: &str) {
    if let Err(e) = timed(|| MonitorConfig::parse(text, "monitor.yaml")) {
        well_formed(&e, "monitor.yaml");
    }
}

#[test]
fn the_samples_themselves_parse() {
    AgentConfig::parse(AGENT, "agent.yaml").expect("etc/agent.yaml is valid");
    MonitorConfig::parse(MONITOR, "monitor.yaml").expect("etc/monitor.yaml is valid");
    // The mutation machinery does change texts (a property over unchanged texts proves little).
    assert_ne!(apply(AGENT, &[Edit::Delete(10, 5)]), AGENT);
    assert!(AgentConfig::parse(&apply(AGENT, &[Edit::ReplaceLine(4, "[".into())]), "a").is_err());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_text(text in prop_oneof![".{0,200}", "[a-z_:{}\\[\\], \n\t-]{0,300}"]) {
        check_agent(&text);
        check_monitor(&text);
    }

    #[test]
    fn mutated_agent_yaml(edits in prop::collection::vec(edit(), 1..6)) {
        check_agent(&apply(AGENT, &edits));
    }

    #[test]
    fn mutated_monitor_yaml(edits in prop::collection::vec(edit(), 1..6)) {
        check_monitor(&apply(MONITOR, &edits));
    }

    /// Deep nesting and large repeated sections stay bounded too.
    #[test]
    fn deep_and_wide(depth in 0usize..200, width in 0usize..500) {
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        check_agent(&format!("this: {deep}\n"));
        let addr = |i: usize| format!("10.0.{}.{}", i / 250, i % 250);
        let hosts: String = (0..width).map(|i| format!("  h{i}: \"{}:3306\"\n", addr(i))).collect();
        check_agent(&format!("{AGENT}\ncluster_hosts:\n{hosts}"));
        check_agent(&AGENT.replace("cluster_hosts:\n", &format!("cluster_hosts:\n{hosts}")));
        let hosts: String = (0..width)
            .map(|i| format!("  h{i}: {{ ip: {}, mode: slave }}\n", addr(i)))
            .collect();
        check_monitor(&MONITOR.replace("hosts:\n", &format!("hosts:\n{hosts}")));
    }
}
