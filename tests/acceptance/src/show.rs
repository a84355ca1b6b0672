//! `ha-control --json show`, typed, with the questions tests ask of it.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `ha-control --json show`, typed (control/JSON.md).
#[derive(Debug, Clone, Deserialize)]
pub struct Show {
    pub mode: String,
    #[serde(default)]
    pub passive_cause: Option<String>,
    #[serde(default)]
    pub active_master: Option<String>,
    pub epoch: u64,
    pub hosts: Vec<ShowHost>,
    pub roles: Vec<ShowRole>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShowHost {
    pub name: String,
    pub ip: String,
    pub mode: String,
    pub state: String,
    pub roles: Vec<String>,
    pub agent_reachable: bool,
    pub flapping: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShowRole {
    pub name: String,
    pub ips: Vec<String>,
    pub owners: Vec<Option<String>>,
}

impl Show {
    pub fn host(&self, name: &str) -> Option<&ShowHost> {
        self.hosts.iter().find(|h| h.name == name)
    }

    pub fn state(&self, name: &str) -> &str {
        self.host(name).map(|h| h.state.as_str()).unwrap_or("?")
    }

    /// Owner of the `writer` role.
    pub fn writer(&self) -> Option<String> {
        self.roles
            .iter()
            .find(|r| r.name == "writer")
            .and_then(|r| r.owners.first().cloned().flatten())
    }

    /// Number of reader IPs each host holds.
    pub fn readers(&self) -> BTreeMap<String, usize> {
        let mut m: BTreeMap<String, usize> =
            self.hosts.iter().map(|h| (h.name.clone(), 0)).collect();
        for r in self.roles.iter().filter(|r| r.name == "reader") {
            for o in r.owners.iter().flatten() {
                *m.entry(o.clone()).or_default() += 1;
            }
        }
        m
    }

    pub fn all_online(&self) -> bool {
        self.hosts.iter().all(|h| h.state == "ONLINE")
    }

    /// Every reader IP has an owner.
    pub fn readers_assigned(&self) -> bool {
        self.roles
            .iter()
            .filter(|r| r.name == "reader")
            .all(|r| r.owners.iter().all(Option::is_some))
    }

    /// One line per host, for failure messages.
    pub fn brief(&self) -> String {
        let mut s = format!(
            "mode {} epoch {} writer {:?}",
            self.mode,
            self.epoch,
            self.writer()
        );
        for h in &self.hosts {
            s.push_str(&format!(
                "\n  {} {}{} roles [{}]",
                h.name,
                h.state,
                if h.agent_reachable {
                    ""
                } else {
                    " (agent unreachable)"
                },
                h.roles.join(", ")
            ));
        }
        s
    }
}
