//! How the outcomes of executed steps are recorded (`operations`, `last_error`, the log).

use std::time::Duration;

use super::Agent;
use crate::status::{op, Outcome};

impl Agent {
    /// Records a step that was not attempted (its cause is already recorded): listed in
    /// `operations`, but it neither replaces `last_error` nor counts as its kind's last error.
    pub(super) fn record_skipped(&self, name: &str, why: &str) {
        tracing::warn!(operation = name, "{why}");
        self.lock()
            .operations
            .push(op(name, false, why.to_string(), Duration::ZERO));
    }

    pub(crate) fn record(&self, name: &str, o: &Outcome, took: Duration) {
        let r = op(name, o.ok, o.message.clone(), took);
        if o.ok {
            tracing::info!(operation = name, "{}", o.message);
        } else {
            tracing::warn!(operation = name, "failed: {}", o.message);
        }
        let mut g = self.lock();
        g.last_errors.record(&r);
        if !o.ok {
            g.last_error = format!("{name}: {}", o.message);
        }
        g.operations.push(r);
    }

    /// Records a refusal to replicate into a divergence: logged when its text changes (passes
    /// run on every ApplyState, the finding is the same every time).
    pub(super) fn record_refusal(&self, name: &str, message: String, took: Duration) {
        let r = op(name, false, message.clone(), took);
        let mut g = self.lock();
        let new = !g.last_error.ends_with(&message);
        g.last_errors.record(&r);
        g.last_error = format!("{name}: {message}");
        g.operations.push(r);
        drop(g);
        if new {
            tracing::error!(operation = name, "refused: {message}");
        }
    }
}
