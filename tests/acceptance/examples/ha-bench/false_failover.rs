//! The false-failover check: packet loss on every link at the fast settings, nothing may move.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ha_acceptance::{Cluster, Show};
use ha_lab::{Error as LabError, Netem};

use crate::setting::setting;
use crate::{header, Args};

pub(crate) fn false_failover(args: &Args) -> Result<String, String> {
    let s = setting("fast")?;
    let mut out = header(args);
    let _ = writeln!(out, "# {}: {}", s.name, s.describe);
    eprint!("{out}");
    let c = Cluster::start_patient(s.opts.clone()).map_err(|e| format!("cluster: {e}"))?;
    let first = c.show()?;
    let writer = first.writer();
    let mut nodes = c.lab.host_names();
    nodes.push("mon".into());
    nodes.push("cli".into());

    // Jitter needs the netem qdisc; loss falls back to nftables without it.
    let (with_jitter, jitter) = match c.lab.netem(
        &nodes[0],
        Netem {
            loss_percent: args.loss,
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(20),
        },
    ) {
        Ok(_) => (true, "50 ms ± 20 ms (netem)".to_string()),
        Err(LabError::Unsupported(why)) => {
            eprintln!("latency/jitter: {why}");
            (
                false,
                "not supported on this kernel (no sch_netem): loss only".to_string(),
            )
        }
        Err(e) => return Err(format!("netem: {e}")),
    };
    let mut backend = None;
    for n in &nodes {
        let netem = if with_jitter {
            Netem {
                loss_percent: args.loss,
                delay: Duration::from_millis(50),
                jitter: Duration::from_millis(20),
            }
        } else {
            Netem::loss(args.loss)
        };
        backend = Some(
            c.lab
                .netem(n, netem)
                .map_err(|e| format!("netem on {n}: {e}"))?,
        );
    }
    let log_mark = c.monitor().map(|m| m.log().len()).unwrap_or(0);
    let agent_marks: Vec<(String, usize)> = c
        .lab
        .host_names()
        .into_iter()
        .map(|h| {
            let len = c.agent(&h).map(|a| a.log().len()).unwrap_or(0);
            (h, len)
        })
        .collect();
    let _ = writeln!(
        out,
        "# {:.0} % packet loss on every link ({} nodes, {:?}); latency/jitter: {jitter}; {} minute(s)\n",
        args.loss,
        nodes.len(),
        backend,
        args.minutes
    );
    eprintln!("== loss applied: watching for {} minute(s)", args.minutes);

    let until = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
    let mut prev: Option<Show> = None;
    let (mut samples, mut failed_polls, mut role_moves, mut left_online) = (0u64, 0u64, 0u64, 0u64);
    let mut events: Vec<String> = Vec::new();
    let t0 = Instant::now();
    while Instant::now() < until {
        let tick = Instant::now();
        match c.show() {
            Ok(s) => {
                samples += 1;
                if let Some(p) = &prev {
                    let owners = |x: &Show| {
                        x.roles
                            .iter()
                            .map(|r| (r.name.clone(), r.owners.clone()))
                            .collect::<Vec<_>>()
                    };
                    if owners(p) != owners(&s) {
                        role_moves += 1;
                        events.push(format!(
                            "+{:.1} s roles changed: {}",
                            t0.elapsed().as_secs_f64(),
                            s.brief().replace('\n', ";")
                        ));
                    }
                    for h in &s.hosts {
                        if h.state != "ONLINE" && p.state(&h.name) == "ONLINE" {
                            left_online += 1;
                            events.push(format!(
                                "+{:.1} s {} left ONLINE: {}",
                                t0.elapsed().as_secs_f64(),
                                h.name,
                                h.state
                            ));
                        }
                    }
                }
                prev = Some(s);
            }
            Err(_) => failed_polls += 1,
        }
        let spent = tick.elapsed();
        if spent < Duration::from_secs(1) {
            std::thread::sleep(Duration::from_secs(1) - spent);
        }
    }
    for n in &nodes {
        let _ = c.lab.clear_netem(n);
    }
    let log = c.monitor().map(|m| m.log()).unwrap_or_default();
    let log = log.get(log_mark..).unwrap_or(&log);
    let state_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("State of host"))
        .collect();
    // A writer whose renewals were lost long enough fences itself: no failover, but writes
    // stop until the monitor grants the role again. That is what the lease length buys.
    let self_fences: usize = agent_marks
        .iter()
        .map(|(h, mark)| {
            let log = c.agent(h).map(|a| a.log()).unwrap_or_default();
            log.get(*mark..)
                .unwrap_or("")
                .lines()
                .filter(|l| l.contains("writer lease expired"))
                .count()
        })
        .sum();
    let last = prev.as_ref();
    let writer_kept = last.and_then(Show::writer) == writer;
    let pass = role_moves == 0
        && left_online == 0
        && state_lines.is_empty()
        && writer_kept
        && self_fences == 0;

    let _ = writeln!(
        out,
        "{:<44} {samples} / {failed_polls}",
        "show polls (1/s) answered / failed"
    );
    let _ = writeln!(out, "{:<44} {role_moves}", "role changes seen by show");
    let _ = writeln!(
        out,
        "{:<44} {left_online}",
        "hosts leaving ONLINE seen by show"
    );
    let _ = writeln!(
        out,
        "{:<44} {}",
        "state changes in the monitor log",
        state_lines.len()
    );
    let _ = writeln!(
        out,
        "{:<44} {self_fences}",
        "writer lease expiries (self-fences)"
    );
    let _ = writeln!(
        out,
        "{:<44} {:?} -> {:?}",
        "writer before -> after",
        writer,
        last.and_then(Show::writer)
    );
    let _ = writeln!(
        out,
        "{:<44} {}",
        "verdict",
        if pass {
            "PASS (no false failover)"
        } else {
            "FAIL"
        }
    );
    for e in events.iter().take(20) {
        let _ = writeln!(out, "  {e}");
    }
    for l in state_lines.iter().take(20) {
        let _ = writeln!(out, "  log: {l}");
    }
    print!("{out}");
    Ok(out)
}
