//! `ha-control import-mmm`: converts mysql-mmm 2.2.1 configuration files into ha's
//! `monitor.yaml` and one `agent-<host>.yaml` per host (docs/migrating-from-mmm.md).
//!
//! * [`parse`] reads mmm's format (includes, sections, templates) keeping file and line.

pub mod parse;
mod rules;
