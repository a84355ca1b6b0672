//! # ha-acceptance: the whole system on the lab
//!
//! [`Cluster`] brings up a lab (MariaDB hosts in network namespaces, see `ha-lab`), starts
//! `ha-agent` in every DB namespace and `ha-monitor` in the monitor namespace, and waits until
//! the cluster converged (every host ONLINE, a writer writable on the writer IP). Tests then
//! inject faults through [`Cluster::lab`] and observe the outcome the way an operator would:
//! through `ha-control --json` ([`Cluster::show`]) and on the hosts themselves (read_only, IPs,
//! replication).
//!
//! [`Invariants`] samples the hosts continuously during a scenario (docs/product.md §4):
//! I1 — never two hosts with read_only=0, never two holders of the writer IP.
//!
//! Binaries are taken from the cargo target directory next to the test executable
//! (`target/debug/ha-agent` …); `tests/run.sh` builds them first.
//!
//! Modules, by concept: `cluster` (the fixture: binaries, options, daemons, `ha-control`),
//! `converge` (waiting for convergence, I3), `fence` (the lab's fencing helper socket), `show` (`ha-control --json show`, typed),
//! `invariants` (the I1 sampler and [`i1_violations`], the pure judgement of one sample),
//! [`golden`] (tables of `ha-control` cases that report every mismatch).

pub mod chaos;
mod cluster;
mod converge;
mod fence;
pub mod golden;
mod invariants;
mod metrics;
pub mod redundant;
mod show;

pub use ha_lab;

pub use cluster::{Bins, Cluster, ClusterOptions, ControlOutput, Result};
pub use invariants::{i1_violations, quick_read_only, veth_up, HostSample, Invariants};
pub use metrics::{metric_value, METRICS_ADDR};
pub use show::{Show, ShowHost, ShowRole};
