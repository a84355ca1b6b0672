//! `agent <host>`: every agent answers `GetStatus` within the deadline, over the same links
//! (and, with TLS, the same certificates and identity checks) the monitor uses
//! ([`crate::tls::MonitorTls::links`]), and reaches its own MySQL server.

use std::time::{Duration, Instant};

use ha_config::{Host, MonitorConfig};
use ha_proto::AgentStatus;

use super::gather::addr;
use super::Line;
use crate::agents::AgentLink;

/// One agent's answer: how long the first call took (with connecting, and the TLS handshake)
/// and a second one on the open connection (what the monitor's calls take), and the status.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentAnswer {
    pub first: Duration,
    pub again: Duration,
    pub status: AgentStatus,
}

/// Every agent's answer in host order, or why no link could be built.
pub struct Answers {
    pub tls_off: bool,
    pub answers: Result<Vec<Result<AgentAnswer, String>>, String>,
}

/// Asks every agent at the same time; each call bounded by `deadline`.
pub async fn ask_all(cfg: &MonitorConfig, deadline: Duration) -> Answers {
    let tls_off = cfg.tls_on().is_none();
    let links = match crate::tls::MonitorTls::load(cfg) {
        Ok(tls) => tls.links(cfg, deadline),
        Err(e) => Err(format!("cannot load the monitor's TLS material: {e}")),
    };
    let links = match links {
        Ok(l) => l,
        Err(e) => {
            return Answers {
                tls_off,
                answers: Err(e),
            }
        }
    };
    let handles: Vec<_> = cfg
        .hosts
        .iter()
        .map(|h| {
            let link = links.get(&h.name).cloned();
            let name = h.name.clone();
            tokio::spawn(async move {
                match link {
                    Some(l) => ask(&l).await,
                    None => Err(format!("no agent link was built for host '{name}'")),
                }
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(handles.len());
    for h in handles {
        answers.push(
            h.await
                .unwrap_or_else(|e| Err(format!("the call task ended abnormally: {e}"))),
        );
    }
    Answers {
        tls_off,
        answers: Ok(answers),
    }
}

async fn ask(link: &AgentLink) -> Result<AgentAnswer, String> {
    let start = Instant::now();
    link.status().await?;
    let first = start.elapsed();
    let start = Instant::now();
    let status = link.status().await?;
    Ok(AgentAnswer {
        first,
        again: start.elapsed(),
        status,
    })
}

/// The agent lines of `cfg`'s hosts (and a warning when TLS is off).
pub fn lines(cfg: &MonitorConfig, answers: &Answers) -> Vec<Line> {
    let mut out = Vec::new();
    if answers.tls_off {
        out.push(Line::warn(
            "tls",
            "monitor.yaml says tls: off: the agents accept orders from anyone who reaches their port, and so does the control port",
            "configure tls: in monitor.yaml, agent.yaml and control.yaml (README, \"Security\")",
        ));
    }
    match &answers.answers {
        Err(e) => out.push(Line::fail(
            "agents",
            format!("not asked: {e}"),
            "correct monitor.yaml tls: (the files must exist and be readable; ha-control certs creates them) (docs/troubleshooting.md#tls-material)",
        )),
        Ok(list) => {
            let timeout = cfg.monitor.agent_timeout.duration();
            for (h, a) in cfg.hosts.iter().zip(list) {
                out.push(agent_line(h, a, timeout));
            }
        }
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// `agent <host>`: reachable, answering within `agent_timeout` on an open connection, and its
/// MySQL server reachable.
pub fn agent_line(h: &Host, answer: &Result<AgentAnswer, String>, agent_timeout: Duration) -> Line {
    let check = format!("agent {}", h.name);
    let a = match answer {
        Ok(a) => a,
        Err(e) => {
            return Line::fail(
                check,
                e.clone(),
                format!(
                    "start ha-agent on {name} (systemctl start ha-agent) and check that it listens on {at} (agent.yaml listen), that this host reaches that port, and with TLS that its certificate names {name} (docs/troubleshooting.md#agents)",
                    name = h.name,
                    at = addr(h.ip, h.agent_port)
                ),
            )
        }
    };
    if !a.status.mysql_reachable {
        return Line::fail(
            check,
            format!(
                "ha-agent {} answers but cannot reach its MySQL server: {}",
                a.status.agent_version,
                if a.status.last_error.is_empty() {
                    "no error recorded"
                } else {
                    &a.status.last_error
                }
            ),
            "check agent.yaml mysql: (host and port or socket, user, password) and the agent account's grants (docs/grants.md#agent-account-ha_agent)",
        );
    }
    let timing = format!(
        "answered GetStatus in {} ({} with connecting)",
        ms(a.again),
        ms(a.first)
    );
    if a.again > agent_timeout {
        return Line::warn(
            check,
            format!(
                "{timing}, longer than monitor.agent_timeout ({}): the monitor would count such calls as failed",
                ms(agent_timeout)
            ),
            "raise monitor.agent_timeout, or find out why the agent host or the network is slow",
        );
    }
    Line::ok(
        check,
        format!(
            "ha-agent {} {timing}; its MySQL is reachable (read_only={})",
            a.status.agent_version,
            u8::from(a.status.read_only)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preflight::Level;

    fn host() -> Host {
        Host {
            name: "db1".into(),
            ip: "10.0.0.11".parse().unwrap(),
            mode: ha_config::HostMode::Master,
            peer: None,
            mysql_port: 3306,
            agent_port: 9989,
        }
    }

    fn answer(again_ms: u64, mysql: bool) -> Result<AgentAnswer, String> {
        Ok(AgentAnswer {
            first: Duration::from_millis(30),
            again: Duration::from_millis(again_ms),
            status: AgentStatus {
                agent_version: "0.1.0".into(),
                mysql_reachable: mysql,
                read_only: true,
                ..AgentStatus::default()
            },
        })
    }

    const T: Duration = Duration::from_millis(500);

    #[test]
    fn a_quick_answer_is_ok() {
        assert_eq!(
            agent_line(&host(), &answer(3, true), T).to_string(),
            "OK   agent db1: ha-agent 0.1.0 answered GetStatus in 3 ms (30 ms with connecting); its MySQL is reachable (read_only=1)"
        );
    }

    #[test]
    fn an_unreachable_agent_fails_with_its_address() {
        let e = "GetStatus to agent on host 'db1' (10.0.0.11:9989) failed: Unavailable: tcp connect error";
        let l = agent_line(&host(), &Err(e.into()), T);
        assert_eq!(l.level, Level::Fail);
        assert!(l
            .to_string()
            .starts_with(&format!("FAIL agent db1: {e} — fix: start ha-agent on db1")));
        assert!(l
            .fix
            .unwrap_or_default()
            .contains("listens on 10.0.0.11:9989"));
    }

    #[test]
    fn an_agent_without_its_mysql_fails() {
        let l = agent_line(&host(), &answer(3, false), T);
        assert_eq!(l.level, Level::Fail);
        assert!(l.detail.contains("cannot reach its MySQL server"), "{l}");
    }

    #[test]
    fn a_slow_answer_warns() {
        let l = agent_line(&host(), &answer(700, true), T);
        assert_eq!(l.level, Level::Warn);
        assert!(
            l.detail
                .contains("longer than monitor.agent_timeout (500 ms)"),
            "{l}"
        );
    }
}
