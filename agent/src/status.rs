//! Records of the steps the agent took, and the last error of each kind of step.

use std::collections::BTreeMap;
use std::time::Duration;

use ha_proto::OperationResult;

/// Outcome of one executed step.
pub(crate) struct Outcome {
    pub(crate) ok: bool,
    pub(crate) message: String,
}

impl Outcome {
    pub(crate) fn ok(m: impl Into<String>) -> Outcome {
        Outcome {
            ok: true,
            message: m.into(),
        }
    }
    pub(crate) fn err(m: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            message: m.into(),
        }
    }
    pub(crate) fn from<E: Into<String>>(r: Result<String, E>) -> Outcome {
        match r {
            Ok(m) => Outcome::ok(m),
            Err(e) => Outcome::err(e),
        }
    }
}

/// One finished (or failed) step.
pub fn op(
    operation: impl Into<String>,
    ok: bool,
    message: impl Into<String>,
    took: Duration,
) -> OperationResult {
    OperationResult {
        operation: operation.into(),
        ok,
        message: message.into(),
        duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
    }
}

/// The kind of an operation for the `last_errors` table: the text before the first space of
/// its name's argument list, e.g. `add ip 10.0.0.5` → `add ip`.
pub fn kind(operation: &str) -> String {
    let words: Vec<&str> = operation.split_whitespace().collect();
    match words.as_slice() {
        ["add", "ip", ..] => "add ip".into(),
        ["remove", "ip", ..] => "remove ip".into(),
        ["gratuitous", "arp", ..] => "gratuitous arp".into(),
        ["change", "master", ..] => "change master".into(),
        _ => operation.to_string(),
    }
}

/// Last failure of each operation kind, kept until the same kind succeeds again.
#[derive(Debug, Default, Clone)]
pub struct LastErrors {
    by_kind: BTreeMap<String, OperationResult>,
}

impl LastErrors {
    pub fn record(&mut self, r: &OperationResult) {
        let k = kind(&r.operation);
        if r.ok {
            self.by_kind.remove(&k);
        } else {
            self.by_kind.insert(k, r.clone());
        }
    }

    pub fn list(&self) -> Vec<OperationResult> {
        self.by_kind.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_errors_track_kinds() {
        let mut l = LastErrors::default();
        l.record(&op("add ip 10.0.0.1", false, "boom", Duration::ZERO));
        l.record(&op("read_only=1", false, "x", Duration::ZERO));
        assert_eq!(l.list().len(), 2);
        l.record(&op("add ip 10.0.0.2", true, "", Duration::ZERO));
        assert_eq!(l.list().len(), 1);
        assert_eq!(l.list()[0].operation, "read_only=1");
    }
}
