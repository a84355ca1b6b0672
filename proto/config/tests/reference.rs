//! The configuration references `docs/monitor.yaml.md`, `docs/agent.yaml.md` and
//! `docs/control.yaml.md` (also the source of the man pages, `packaging/md2man.py`) cannot
//! drift from the code:
//!
//! - every key of a loaded config (the shipped samples in `etc/`, serialized back with
//!   serde_yaml) is documented as a bold entry `- **key.path** — …`;
//! - every documented key is real: it is in that serialized tree, or the loader accepts it (a
//!   key the loader rejects as unknown is an error);
//! - every entry has the strict shape the man page script expects;
//! - a documented `default: `v`` is what the loader fills in when the key is left out, and a
//!   key documented `required` cannot be left out;
//! - the EXAMPLE of each page is a valid configuration.
//!
//! Every mismatch is collected and reported in one failure. Adding a field to a config struct
//! without documenting it fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Map keys the user chooses, and how the references write them. `checks` has fixed names
/// (`default`, `ping`, …) but one entry documents all of them.
const NAMED: &[(&str, &str)] = &[
    ("hosts", "<name>"),
    ("roles", "<name>"),
    ("cluster_hosts", "<name>"),
    ("checks", "<check>"),
    ("hooks", "<name>"),
];

/// A key no config knows, to show the loader rejects unknown keys where a documented key is
/// tried (otherwise "accepted by the loader" would prove nothing).
const BOGUS: &str = "no_such_key_in_any_config";

#[derive(Clone, Copy, Debug)]
enum Kind {
    Monitor,
    Agent,
    Control,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Monitor => "monitor.yaml",
            Kind::Agent => "agent.yaml",
            Kind::Control => "control.yaml",
        }
    }

    /// Loads `path` with the daemons' loader and serializes the result.
    fn load(self, path: &Path) -> Result<Value, String> {
        let value = match self {
            Kind::Monitor => ha_config::load_monitor(path).map(serde_yaml::to_value),
            Kind::Agent => ha_config::load_agent(path).map(serde_yaml::to_value),
            Kind::Control => ha_config::load_control(path).map(serde_yaml::to_value),
        };
        match value {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => panic!("serializing a loaded {} failed: {e}", self.name()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Parses text (no file, no permission check), for the pages' examples.
    fn parse(self, text: &str) -> Result<(), String> {
        let file = format!("docs/{}.md EXAMPLE", self.name());
        match self {
            Kind::Monitor => ha_config::MonitorConfig::parse(text, &file).map(drop),
            Kind::Agent => ha_config::AgentConfig::parse(text, &file).map(drop),
            Kind::Control => ha_config::ControlConfig::parse(text, &file).map(drop),
        }
        .map_err(|e| e.to_string())
    }

    /// The shipped sample with the optional sections it leaves commented out filled in: an
    /// absent `Option` section serializes as `null`, which would hide its keys from the walk.
    fn full_sample(self) -> Value {
        let mut v = sample_value(self);
        let mysql_tls = || {
            yaml(
                "{mode: verify-ca, ca_file: /etc/ha/mysql-ca.crt, \
                  cert_file: /etc/ha/mysql-client.crt, key_file: /etc/ha/mysql-client.key}",
            )
        };
        match self {
            Kind::Monitor => {
                set(&mut v, &["credentials", "monitor_tls"], mysql_tls());
                set(&mut v, &["metrics"], yaml("127.0.0.1:9104"));
                set(
                    &mut v,
                    &["history", "path"],
                    yaml("/var/lib/ha/history.jsonl"),
                );
                set(
                    &mut v,
                    &["hooks"],
                    yaml("{proxy: {command: /usr/local/bin/ha-hook, events: [role_move]}}"),
                );
            }
            Kind::Agent => {
                set(&mut v, &["mysql", "tls"], mysql_tls());
                set(&mut v, &["replication", "tls"], mysql_tls());
            }
            Kind::Control => {}
        }
        v
    }
}

/// What a reference says about one key.
#[derive(Debug, Clone, PartialEq)]
enum Spec {
    Required,
    /// `default: `v``, the text between the backticks.
    Default(String),
    /// `default: none`: absent means not set.
    NoDefault,
}

struct Doc {
    /// Bold keys in file order, with what each entry says.
    keys: Vec<(String, Spec)>,
    /// The first code block under `## EXAMPLE`.
    example: Option<String>,
}

/// Reads `docs/<kind>.md`; malformed entries and duplicate keys go to `problems`.
fn read_doc(kind: Kind, problems: &mut Vec<String>) -> Doc {
    let file = format!("docs/{}.md", kind.name());
    let text = std::fs::read_to_string(format!("{ROOT}/{file}"))
        .unwrap_or_else(|e| panic!("cannot read {file}: {e}"));
    let lines: Vec<&str> = text.lines().collect();
    let mut keys: Vec<(String, Spec)> = Vec::new();
    let mut example = None;
    let mut section = "";
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if let Some(h) = line.strip_prefix("## ") {
            section = h.trim();
        } else if line.starts_with("```") {
            let mut block = String::new();
            while i < lines.len() && !lines[i].starts_with("```") {
                block.push_str(lines[i]);
                block.push('\n');
                i += 1;
            }
            i += 1;
            if section == "EXAMPLE" && example.is_none() {
                example = Some(block);
            }
        } else if line.starts_with("- **") {
            let lineno = i;
            let mut entry = line.to_string();
            while i < lines.len() && lines[i].starts_with("  ") && !lines[i].trim().is_empty() {
                entry.push(' ');
                entry.push_str(lines[i].trim());
                i += 1;
            }
            match parse_entry(&entry) {
                Ok((key, spec)) => {
                    if keys.iter().any(|(k, _)| *k == key) {
                        problems.push(format!("{file}:{lineno}: `{key}` is documented twice"));
                    }
                    keys.push((key, spec));
                }
                Err(why) => {
                    problems.push(format!("{file}:{lineno}: malformed entry ({why}): {line}"))
                }
            }
        }
    }
    if !text.starts_with(&format!("# {}(5)\n", kind.name())) {
        problems.push(format!("{file}:1: must start with `# {}(5)`", kind.name()));
    }
    Doc { keys, example }
}

/// `- **key** — default: `v` | default: none | required [; unit: u]. text`
fn parse_entry(entry: &str) -> Result<(String, Spec), &'static str> {
    let rest = entry.strip_prefix("- **").ok_or("no bold key")?;
    let (key, rest) = rest
        .split_once("** \u{2014} ")
        .ok_or("no `** — ` after the key")?;
    if key.is_empty() || key.contains(char::is_whitespace) || key.contains('*') {
        return Err("the key must be one dotted path");
    }
    let (spec, rest) = if let Some(r) = rest.strip_prefix("required") {
        (Spec::Required, r)
    } else if let Some(r) = rest.strip_prefix("default: none") {
        (Spec::NoDefault, r)
    } else if let Some(r) = rest.strip_prefix("default: `") {
        let (v, r) = r.split_once('`').ok_or("unclosed default")?;
        (Spec::Default(v.to_string()), r)
    } else {
        return Err("expected `required`, `default: `v`` or `default: none`");
    };
    let rest = match rest.strip_prefix("; unit: ") {
        Some(r) => r
            .split_once('.')
            .map(|(_, r)| r)
            .ok_or("unit not ended by `.`")?,
        None => rest
            .strip_prefix('.')
            .ok_or("expected `.` or `; unit: ` after the default")?,
    };
    if !rest.starts_with(' ') || rest.trim().is_empty() {
        return Err("no text after the default and unit");
    }
    Ok((key.to_string(), spec))
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).expect("test YAML")
}

fn sample_value(kind: Kind) -> Value {
    let text = std::fs::read_to_string(format!("{ROOT}/etc/{}", kind.name())).expect("sample");
    serde_yaml::from_str(&text).expect("sample is YAML")
}

/// Sets `path` in a mapping tree, creating mappings on the way.
fn set(v: &mut Value, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().expect("a path");
    let mut cur = v;
    for p in parents {
        let m = cur.as_mapping_mut().expect("a mapping");
        cur = m
            .entry(Value::String(p.to_string()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    cur.as_mapping_mut()
        .expect("a mapping")
        .insert(Value::String(last.to_string()), value);
}

fn placeholder(parent: &str) -> Option<&'static str> {
    NAMED.iter().find(|(p, _)| *p == parent).map(|(_, ph)| *ph)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Walks a serialized config: every key path as the file writes it (user-chosen names replaced
/// by their placeholder) with the values found there.
fn walk(
    v: &Value,
    prefix: &str,
    out: &mut BTreeMap<String, Vec<Value>>,
    problems: &mut Vec<String>,
) {
    match v {
        // `TlsSetting` derives Serialize as an externally tagged enum: `tls: !On {ca_file: …}`
        // and `tls: Off`, where the file writes the bare mapping and `off`. The tag is not a key.
        Value::Tagged(t) if t.tag == "On" => walk(&t.value, prefix, out, problems),
        Value::Tagged(t) => problems.push(format!(
            "{prefix}: serialized with tag !{} that the test does not know: teach it how the \
             file writes this value",
            t.tag
        )),
        Value::Mapping(m) => {
            let ph = placeholder(prefix);
            for (k, child) in m {
                let Some(k) = k.as_str() else {
                    problems.push(format!("{prefix}: non-string key {k:?}"));
                    continue;
                };
                let path = join(prefix, ph.unwrap_or(k));
                out.entry(path.clone()).or_default().push(child.clone());
                walk(child, &path, out, problems);
            }
        }
        Value::Sequence(items) => {
            // `hosts` and `roles` are maps in the file but `Vec<Host>` / `Vec<Role>` with a
            // `name` field in the config: the `name` is the map key, not a key of its own.
            if let Some(ph) = placeholder(prefix) {
                for item in items {
                    let Some(m) = item.as_mapping() else {
                        problems.push(format!("{prefix}: expected named sections"));
                        continue;
                    };
                    let path = join(prefix, ph);
                    out.entry(path.clone()).or_default().push(item.clone());
                    for (k, child) in m {
                        if k.as_str() == Some("name") {
                            continue;
                        }
                        let child_path = join(&path, k.as_str().unwrap_or("?"));
                        out.entry(child_path.clone())
                            .or_default()
                            .push(child.clone());
                        walk(child, &child_path, out, problems);
                    }
                }
            } else if items
                .iter()
                .any(|i| matches!(i, Value::Mapping(_) | Value::Sequence(_) | Value::Tagged(_)))
            {
                problems.push(format!(
                    "{prefix}: a list of sections that the test does not know how to name: add \
                     it to NAMED (or teach the walk)"
                ));
            }
        }
        _ => {}
    }
}

fn keys_of(v: &Value, problems: &mut Vec<String>) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    walk(v, "", &mut out, problems);
    out
}

/// The mappings that hold the last segment of `path` in an input tree: every instance of a
/// placeholder segment (`all`) or only the first.
fn parents_mut<'a>(v: &'a mut Value, segs: &[&str], all: bool) -> Vec<&'a mut Mapping> {
    let Value::Mapping(m) = v else {
        return Vec::new();
    };
    let Some((first, rest)) = segs.split_first() else {
        return vec![m];
    };
    if first.starts_with('<') {
        let mut out = Vec::new();
        for (_, child) in m.iter_mut() {
            out.extend(parents_mut(child, rest, all));
            if !all && !out.is_empty() {
                break;
            }
        }
        out
    } else {
        let child = m
            .entry(Value::String(first.to_string()))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        parents_mut(child, rest, all)
    }
}

/// Writes `v` as a config file the way the package installs it (0640: files with passwords
/// that everyone may read are refused) and loads it.
struct Files {
    dir: tempfile::TempDir,
    n: std::cell::Cell<u32>,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().expect("tempdir"),
            n: std::cell::Cell::new(0),
        }
    }

    fn install(&self, text: &str, name: &str) -> PathBuf {
        self.n.set(self.n.get() + 1);
        let path = self.dir.path().join(format!("{}-{name}", self.n.get()));
        std::fs::write(&path, text).expect("write config");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        path
    }

    fn load(&self, kind: Kind, v: &Value) -> Result<Value, String> {
        let text = serde_yaml::to_string(v).expect("to YAML");
        kind.load(&self.install(&text, kind.name()))
    }
}

/// Numbers compare by value (`5` in a page, `5.0` for a serialized duration).
fn same(doc: &Value, loaded: &Value) -> bool {
    match (doc.as_f64(), loaded.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => doc == loaded,
    }
}

fn check_reference(kind: Kind, files: &Files, problems: &mut Vec<String>) {
    let page = format!("docs/{}.md", kind.name());
    let doc = read_doc(kind, problems);
    let documented: BTreeSet<&str> = doc.keys.iter().map(|(k, _)| k.as_str()).collect();

    // The samples as shipped, and with their optional sections filled in.
    let sample = std::fs::read_to_string(format!("{ROOT}/etc/{}", kind.name())).expect("sample");
    let shipped = kind
        .load(&files.install(&sample, kind.name()))
        .unwrap_or_else(|e| panic!("etc/{} does not load: {e}", kind.name()));
    let full = kind.full_sample();
    let full_loaded = files.load(kind, &full).unwrap_or_else(|e| {
        panic!(
            "etc/{} with its optional sections does not load: {e}",
            kind.name()
        )
    });
    let mut tree = keys_of(&shipped, problems);
    for (k, v) in keys_of(&full_loaded, problems) {
        tree.entry(k).or_default().extend(v);
    }

    // (a) Every key of the loaded config is documented.
    for key in tree.keys() {
        if !documented.contains(key.as_str()) {
            problems.push(format!(
                "{page}: `{key}` is a key of the config but not documented"
            ));
        }
    }

    for (key, spec) in &doc.keys {
        let segs: Vec<&str> = key.split('.').collect();
        let (last, parents) = segs.split_last().expect("non-empty");
        if let Some(bad) = segs
            .iter()
            .find(|s| s.starts_with('<') && !NAMED.iter().any(|(_, ph)| ph == *s))
        {
            problems.push(format!("{page}: `{key}`: unknown placeholder {bad}"));
            continue;
        }

        // (b) Every documented key is real: serialized, or accepted by the loader.
        if !tree.contains_key(key) {
            if last.starts_with('<') {
                problems.push(format!("{page}: `{key}` is not a key of the config"));
                continue;
            }
            let try_key = |name: &str| {
                let mut v = full.clone();
                for m in parents_mut(&mut v, parents, false) {
                    m.insert(Value::String(name.to_string()), Value::Null);
                }
                files.load(kind, &v)
            };
            let unknown = |r: &Result<Value, String>, name: &str| {
                r.as_ref()
                    .err()
                    .is_some_and(|e| e.contains(&format!("unknown field `{name}`")))
            };
            if !unknown(&try_key(BOGUS), BOGUS) {
                problems.push(format!(
                    "{page}: `{key}` is not in the loaded config, and the loader does not reject \
                     unknown keys next to it, so the test cannot tell whether it is real"
                ));
            } else if unknown(&try_key(last), last) {
                problems.push(format!(
                    "{page}: `{key}` is documented but the loader rejects it as unknown"
                ));
            }
            continue;
        }

        match spec {
            // A documented default is what the loader fills in: leave the key out everywhere
            // and look at the loaded value (sections, like `checks: {}`, are not compared).
            Spec::Default(text) => {
                let want: Value = match serde_yaml::from_str(text) {
                    Ok(v) => v,
                    Err(e) => {
                        problems.push(format!(
                            "{page}: `{key}`: default `{text}` is not YAML: {e}"
                        ));
                        continue;
                    }
                };
                if want.is_mapping() {
                    continue;
                }
                let without = |keep_required_only: bool| {
                    let mut v = full.clone();
                    for m in parents_mut(&mut v, parents, true) {
                        m.shift_remove(*last);
                        if keep_required_only {
                            // A default can be invalid next to the sample's other settings
                            // (`mode: disabled` with files given): keep only the required ones.
                            let parent = parents.join(".");
                            m.retain(|k, _| {
                                let sibling = join(&parent, k.as_str().unwrap_or(""));
                                doc.keys
                                    .iter()
                                    .any(|(d, s)| *d == sibling && *s == Spec::Required)
                            });
                        }
                    }
                    files.load(kind, &v)
                };
                let loaded = match without(false).or_else(|_| without(true)) {
                    Ok(v) => v,
                    Err(e) => {
                        problems.push(format!(
                            "{page}: `{key}`: the config does not load without it, so its \
                             default cannot be checked: {e}"
                        ));
                        continue;
                    }
                };
                let got = keys_of(&loaded, problems).remove(key).unwrap_or_default();
                if got.is_empty() || got.iter().any(|g| !same(&want, g)) {
                    problems.push(format!(
                        "{page}: `{key}`: documented default `{text}`, the loader gives {}",
                        if got.is_empty() {
                            "nothing".to_string()
                        } else {
                            got.iter()
                                .map(|g| {
                                    serde_yaml::to_string(g)
                                        .unwrap_or_default()
                                        .trim()
                                        .to_string()
                                })
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ));
                }
            }
            // A required key cannot be left out (user-chosen names are not keys to leave out).
            Spec::Required if !last.starts_with('<') => {
                let mut v = full.clone();
                for m in parents_mut(&mut v, parents, false) {
                    m.shift_remove(*last);
                }
                match files.load(kind, &v) {
                    Ok(_) => problems.push(format!(
                        "{page}: `{key}` is documented as required but the config loads without it"
                    )),
                    Err(e) if !e.contains(last) => problems.push(format!(
                        "{page}: `{key}`: leaving it out fails, but the error does not name it: {e}"
                    )),
                    Err(_) => {}
                }
            }
            _ => {}
        }
    }

    match &doc.example {
        None => problems.push(format!("{page}: no code block under ## EXAMPLE")),
        Some(text) => {
            if let Err(e) = kind.parse(text) {
                problems.push(format!("{page}: the EXAMPLE is not a valid config: {e}"));
            }
        }
    }
}

#[test]
fn references_document_every_key_and_only_real_keys() {
    let files = Files::new();
    let mut problems = Vec::new();
    for kind in [Kind::Monitor, Kind::Agent, Kind::Control] {
        check_reference(kind, &files, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "the configuration references (docs/*.yaml.md) disagree with the code in {} place(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_walk_sees_through_the_serialized_form() {
    // hosts/roles serialize as lists with a `name`, tls as `!On {…}`; both come out as the
    // file writes them.
    let mut problems = Vec::new();
    let v = yaml("{hosts: [{name: db1, ip: 10.0.0.1}], tls: !On {ca_file: /ca}, checks: {ping: {timeout: 1}}}");
    let keys: Vec<String> = keys_of(&v, &mut problems).into_keys().collect();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        keys,
        [
            "checks",
            "checks.<check>",
            "checks.<check>.timeout",
            "hosts",
            "hosts.<name>",
            "hosts.<name>.ip",
            "tls",
            "tls.ca_file"
        ]
    );
    let entry = "- **a.b** \u{2014} default: `0.5`; unit: seconds (fractions allowed). Text.";
    assert_eq!(
        parse_entry(entry),
        Ok(("a.b".to_string(), Spec::Default("0.5".into())))
    );
    assert!(parse_entry("- **a.b** \u{2014} default 5. Text.").is_err());
    assert!(parse_entry("- **a b** \u{2014} required. Text.").is_err());
    assert!(parse_entry("- **a.b** \u{2014} required; unit: seconds").is_err());
}
