//! What the main loop publishes for readers after every step: the control service's answers
//! (`show`, `checks`, `explain`) and the metrics' present state are read from it, so they never
//! wait for the loop.

use std::sync::Arc;

use ha_proto::ShowReply;

/// What the main loop publishes for readers after every step.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub show: ShowReply,
    pub checks: Vec<ha_proto::CheckStatus>,
    /// The core as of this snapshot and its instant, for `explain` (computed on request: it
    /// steps copies of the core, which is not worth doing after every main-loop pass).
    pub core: Option<(Arc<ha_core::Core>, ha_core::Millis)>,
    /// Who leads among redundant monitors (`Solo` without `coordination:`).
    pub leadership: Leadership,
}

impl Snapshot {
    /// Every role instance's what-if (`Core::explain`), config order.
    pub fn explain(&self) -> Vec<ha_proto::RoleExplanation> {
        self.core
            .as_ref()
            .map(|(core, at)| core.explain(*at).iter().map(explanation).collect())
            .unwrap_or_default()
    }
}

fn explanation(x: &ha_core::RoleExplanation) -> ha_proto::RoleExplanation {
    let reason = |host: &str, why: &str| ha_proto::HostReason {
        host: host.to_string(),
        why: why.to_string(),
    };
    ha_proto::RoleExplanation {
        role: x.role.name.clone(),
        ip: x.role.ip.clone(),
        owner: x.owner.clone().unwrap_or_default(),
        successors: x
            .successors
            .iter()
            .map(|s| reason(&s.host, &s.why))
            .collect(),
        passed_over: x
            .passed_over
            .iter()
            .map(|p| reason(&p.host, &p.why))
            .collect(),
        notes: x.notes.clone(),
    }
}

/// Who leads, as ha-control is told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Leadership {
    /// One monitor, no coordination configured.
    #[default]
    Solo,
    /// This monitor (control address `me`) leads in `term`.
    Leading { me: String, term: u64 },
    /// Another monitor leads (its control address and term), or nobody does right now.
    Standby {
        me: String,
        leader: Option<(String, u64)>,
    },
}
