//! `show` as text: what it must print for a state, and the check that it does.

use std::time::{Duration, Instant};

use ha_acceptance::golden::Golden;
use ha_acceptance::{Cluster, Show};

use super::{ctl, host_mode};

/// What `show` must print for the state in `s`, built from the lab's addresses and the role
/// table (`roles[].owners`), not from the host lines of the JSON.
fn expected_show(c: &Cluster, s: &Show) -> String {
    let mut out = String::new();
    if s.mode == "PASSIVE" {
        out.push_str("# --- Monitor is in PASSIVE MODE ---\n");
        out.push_str(&format!(
            "# Cause: {}\n",
            s.passive_cause.clone().unwrap_or_default()
        ));
    }
    let mut hosts: Vec<_> = c.lab.hosts().to_vec();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    for h in &hosts {
        if s.host(&h.name).is_some_and(|x| !x.agent_reachable) {
            out.push_str(&format!(
                "# Warning: agent on host {} is not reachable\n",
                h.name
            ));
        }
    }
    for h in &hosts {
        let mut roles: Vec<String> = Vec::new();
        for r in &s.roles {
            for (ip, owner) in r.ips.iter().zip(&r.owners) {
                if owner.as_deref() == Some(h.name.as_str()) {
                    roles.push(format!("{}({ip})", r.name));
                }
            }
        }
        roles.sort();
        out.push_str(&format!(
            "  {}({}) {}/{}. Roles: {}\n",
            h.name,
            h.ip,
            host_mode(&h.name),
            s.state(&h.name),
            roles.join(", ")
        ));
    }
    out.push('\n');
    out
}

/// `show` (text) equals [`expected_show`] of a JSON `show` taken around it with the same
/// content (retried while the cluster moves). Returns that state; on a timeout records the
/// mismatch and returns the last state seen.
pub fn assert_show(c: &Cluster, g: &mut Golden, what: &str) -> Show {
    let start = Instant::now();
    loop {
        let a = c.show().expect("show");
        let text = ctl(c, &["show"]);
        let b = c.show().expect("show");
        let stable = format!(
            "{:?}",
            (
                &a.mode,
                &a.hosts,
                &a.roles.iter().map(|r| &r.owners).collect::<Vec<_>>()
            )
        ) == format!(
            "{:?}",
            (
                &b.mode,
                &b.hosts,
                &b.roles.iter().map(|r| &r.owners).collect::<Vec<_>>()
            )
        );
        let want = expected_show(c, &a);
        if stable && text.code == 0 && text.stdout == want && text.stderr.is_empty() {
            return a;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let same = check_eq!(
                g,
                (text.code, text.stdout.as_str(), text.stderr.as_str()),
                (0, want.as_str(), ""),
                "show ({what}), stable={stable}"
            );
            if same {
                g.record(format!("show ({what}): the cluster did not hold still"));
            }
            return a;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The reader IP `host` holds (the first one).
pub fn reader_of(s: &Show, host: &str) -> Option<String> {
    s.roles
        .iter()
        .filter(|r| r.name == "reader")
        .flat_map(|r| r.ips.iter().zip(&r.owners))
        .find(|(_, o)| o.as_deref() == Some(host))
        .map(|(ip, _)| ip.clone())
}
