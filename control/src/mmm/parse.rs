//! Reader of mysql-mmm 2.2.1 configuration files (docs/mmm-behaviour.md §8.2), keeping the file
//! and line of every value so that each finding can name its source.
//!
//! The grammar is mmm's (`MMM::Common::Config::parse`): blank and `#` lines are skipped; a line is
//! a closing tag `</type>`, `include FILE` (top level only), an opening tag `<type>`,
//! `<type/>`, `<type name>` or `<type name/>`, or `name value` (the rest of the line is the
//! value, trailing blanks removed; there are no trailing comments). List values are split on
//! commas. Repeating a variable overrides it; re-opening a named section merges into it. The
//! named section `default` of `host`, `check` and `copy_method` is a template: its variables fill
//! in those the other sections of its type leave unset, then it disappears ([`MmmConfig::finish`]).
//!
//! Where mmm is lax, this reader refuses with the file and line instead of guessing: an
//! unterminated section (mmm silently accepts it at the end of a file), a closing tag outside a
//! section (mmm silently ignores the rest of the file), a section opened inside another, and
//! `include` inside a section (mmm crashes). A relative `include` is looked up next to the
//! including file (mmm looks in /etc, /etc/mmm and /etc/mysql-mmm, where these files normally
//! are anyway), with `.conf` appended when missing, as mmm does.

use std::fmt;
use std::path::{Path, PathBuf};

pub use super::rules::CHECK_NAMES;
use super::rules::{kind, KINDS, TOP_KEYS};

/// Where a value or a section came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Loc {
    pub file: String,
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A problem that stops the import: `file:line: message`, or `file: message` when no line
/// applies (a file that cannot be read, something missing from the whole file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl Problem {
    pub fn at(loc: &Loc, message: impl Into<String>) -> Problem {
        Problem {
            file: loc.file.clone(),
            line: Some(loc.line),
            message: message.into(),
        }
    }

    pub fn in_file(file: &str, message: impl Into<String>) -> Problem {
        Problem {
            file: file.to_string(),
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file, l, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// One variable's value as written, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub text: String,
    pub loc: Loc,
}

impl Value {
    /// A list value split as mmm does (`split /\s*,\s*/`: items trimmed, trailing empty items
    /// dropped, other empty items kept so that the mapping can refuse them).
    pub fn list(&self) -> Vec<String> {
        let mut items: Vec<String> = self.text.split(',').map(|s| s.trim().to_string()).collect();
        while items.last().is_some_and(String::is_empty) {
            items.pop();
        }
        items
    }
}

/// The variables of one section (or of the top level), in the order first set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// The first opening tag (`None` for the top level and for sections created empty).
    pub loc: Option<Loc>,
    pub vars: Vec<(String, Value)>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.vars.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn set(&mut self, key: &str, value: Value) {
        match self.vars.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value,
            None => self.vars.push((key.to_string(), value)),
        }
    }
}

/// A named section (`<host db1>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub section: Section,
}

/// A whole configuration as one program of mmm sees it (mmm_mon.conf with its includes, or an
/// mmm_agent.conf with its includes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MmmConfig {
    pub globals: Section,
    pub monitor: Option<Section>,
    pub socket: Option<Section>,
    pub hosts: Vec<Named>,
    pub roles: Vec<Named>,
    pub checks: Vec<Named>,
    pub copy_methods: Vec<Named>,
    /// Accepted oddities worth a line (a closing tag that names another section).
    pub warnings: Vec<(Loc, String, String)>,
}

impl MmmConfig {
    pub fn host(&self, name: &str) -> Option<&Section> {
        find(&self.hosts, name)
    }

    pub fn role(&self, name: &str) -> Option<&Section> {
        find(&self.roles, name)
    }

    pub fn check(&self, name: &str) -> Option<&Section> {
        find(&self.checks, name)
    }

    fn unique_mut(&mut self, kind: &str) -> &mut Option<Section> {
        if kind == "monitor" {
            &mut self.monitor
        } else {
            &mut self.socket
        }
    }

    fn named_mut(&mut self, kind: &str) -> &mut Vec<Named> {
        match kind {
            "role" => &mut self.roles,
            "host" => &mut self.hosts,
            "check" => &mut self.checks,
            _ => &mut self.copy_methods,
        }
    }

    /// What mmm does after reading, before validating: creates the missing `<check>` sections
    /// and applies the `default` templates of host, check and copy_method.
    pub fn finish(&mut self) {
        for name in CHECK_NAMES {
            if find(&self.checks, name).is_none() {
                self.checks.push(Named {
                    name: name.to_string(),
                    section: Section::default(),
                });
            }
        }
        for list in [&mut self.hosts, &mut self.checks, &mut self.copy_methods] {
            let Some(i) = list.iter().position(|n| n.name == "default") else {
                continue;
            };
            let template = list.remove(i).section;
            for n in list.iter_mut() {
                for (k, v) in &template.vars {
                    if n.section.get(k).is_none() {
                        n.section.vars.push((k.clone(), v.clone()));
                    }
                }
            }
        }
    }
}

fn find<'a>(list: &'a [Named], name: &str) -> Option<&'a Section> {
    list.iter().find(|n| n.name == name).map(|n| &n.section)
}

/// The section a line is in.
enum Current {
    Top,
    Unique {
        kind: &'static str,
        opened: Loc,
    },
    Named {
        kind: &'static str,
        name: String,
        opened: Loc,
    },
}

impl Current {
    fn tag(&self) -> String {
        match self {
            Current::Top => String::new(),
            Current::Unique { kind, .. } => format!("<{kind}>"),
            Current::Named { kind, name, .. } => format!("<{kind} {name}>"),
        }
    }
}

/// Reads files into one [`MmmConfig`], following includes.
#[derive(Default)]
pub struct Reader {
    pub config: MmmConfig,
    /// Canonical paths of the files being read (include loop detection).
    stack: Vec<PathBuf>,
    /// Display names of the same files, for the loop message.
    names: Vec<String>,
}

impl Reader {
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Reads `path` (shown as `path.display()` in messages) into the configuration.
    pub fn read(&mut self, path: &Path) -> Result<(), Problem> {
        let display = path.display().to_string();
        self.read_file(path, display, None)
    }

    fn read_file(
        &mut self,
        path: &Path,
        display: String,
        from: Option<&Loc>,
    ) -> Result<(), Problem> {
        let problem = |what: String| match from {
            Some(loc) => Problem::at(loc, what),
            None => Problem::in_file(&display, what),
        };
        // An include names the file; a file given on the command line is the subject already.
        let unreadable = |e: std::io::Error| match from {
            Some(_) => problem(format!("cannot read {display}: {e}")),
            None => problem(format!("cannot read the file: {e}")),
        };
        let canonical = std::fs::canonicalize(path).map_err(unreadable)?;
        if let Some(i) = self.stack.iter().position(|p| *p == canonical) {
            let mut chain: Vec<&str> = self.names[i..].iter().map(String::as_str).collect();
            chain.push(&display);
            return Err(problem(format!(
                "include loop: {}",
                chain.join(" includes ")
            )));
        }
        let bytes = std::fs::read(path).map_err(unreadable)?;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        self.stack.push(canonical);
        self.names.push(display.clone());
        let result = self.parse_text(&text, path, &display);
        self.stack.pop();
        self.names.pop();
        result
    }

    fn parse_text(&mut self, text: &str, path: &Path, file: &str) -> Result<(), Problem> {
        let mut current = Current::Top;
        for (i, raw) in text.lines().enumerate() {
            let loc = Loc {
                file: file.to_string(),
                line: i + 1,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(tag) = line.strip_prefix('<') {
                current = self.tag(tag, current, &loc)?;
                continue;
            }
            let (var, value) = match line.split_once(|c: char| c.is_whitespace()) {
                Some((var, value)) => (var, value.trim()),
                None => {
                    return Err(Problem::at(
                        &loc,
                        format!("'{line}' is not a line of mysql-mmm's configuration (expected `name value`, a section tag or `include FILE`)"),
                    ))
                }
            };
            if var == "include" {
                if !matches!(current, Current::Top) {
                    return Err(Problem::at(
                        &loc,
                        format!(
                            "include inside {}: mysql-mmm only reads includes at the top level",
                            current.tag()
                        ),
                    ));
                }
                if value.split_whitespace().count() != 1 {
                    return Err(Problem::at(
                        &loc,
                        format!("include needs one file name, got '{value}'"),
                    ));
                }
                self.include(value, path, &loc)?;
                continue;
            }
            self.variable(&current, var, value, &loc)?;
        }
        match current {
            Current::Top => Ok(()),
            Current::Unique { kind, ref opened }
            | Current::Named {
                kind, ref opened, ..
            } => Err(Problem::at(
                opened,
                format!(
                    "section {} is not closed: </{kind}> missing before the end of {file}",
                    current.tag()
                ),
            )),
        }
    }

    fn include(&mut self, name: &str, including: &Path, loc: &Loc) -> Result<(), Problem> {
        let mut name = name.to_string();
        if !name.ends_with(".conf") {
            name.push_str(".conf");
        }
        let target = Path::new(&name);
        let path = if target.is_absolute() {
            target.to_path_buf()
        } else {
            including
                .parent()
                .unwrap_or_else(|| Path::new(""))
                .join(target)
        };
        if !path.is_file() {
            return Err(Problem::at(
                loc,
                format!(
                    "include {name}: {} not found (a relative include is looked up next to the including file)",
                    path.display()
                ),
            ));
        }
        self.read_file(&path, path.display().to_string(), Some(loc))
    }

    /// A line starting with `<` (the `<` already removed).
    fn tag(&mut self, tag: &str, current: Current, loc: &Loc) -> Result<Current, Problem> {
        let malformed = || {
            Problem::at(
                loc,
                format!("malformed section tag '<{tag}' (mysql-mmm allows `<type>`, `<type name>`, `<type/>`, `<type name/>` and `</type>`, nothing after them)"),
            )
        };
        let body = tag.strip_suffix('>').ok_or_else(malformed)?.trim();
        if let Some(closing) = body.strip_prefix('/') {
            let closing = closing.trim();
            if !is_word(closing) {
                return Err(malformed());
            }
            return match current {
                Current::Top => Err(Problem::at(
                    loc,
                    format!("</{closing}> outside a section: mysql-mmm would silently ignore the rest of the file from here"),
                )),
                Current::Unique { kind, .. } | Current::Named { kind, .. } => {
                    if closing != kind {
                        self.config.warnings.push((
                            loc.clone(),
                            format!("</{closing}>"),
                            format!("closes {} (mysql-mmm accepts any closing tag)", current.tag()),
                        ));
                    }
                    Ok(Current::Top)
                }
            };
        }
        let (body, empty) = match body.strip_suffix('/') {
            Some(b) => (b.trim_end(), true),
            None => (body, false),
        };
        let mut words = body.split_whitespace();
        let (Some(type_name), name, None) = (words.next(), words.next(), words.next()) else {
            return Err(malformed());
        };
        if !is_word(type_name) || name.is_some_and(|n| !is_name(n)) {
            return Err(malformed());
        }
        if !matches!(current, Current::Top) {
            return Err(Problem::at(
                loc,
                format!(
                    "<{body}> inside {}: sections cannot be nested (is a closing tag missing?)",
                    current.tag()
                ),
            ));
        }
        let Some(k) = kind(type_name) else {
            return Err(Problem::at(
                loc,
                format!(
                    "unknown section type <{type_name}> (mysql-mmm knows {})",
                    KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        match (k.named, name) {
            (true, None) => Err(Problem::at(
                loc,
                format!("<{type_name}> needs a name, e.g. <{type_name} NAME>"),
            )),
            (false, Some(_)) => Err(Problem::at(loc, format!("<{type_name}> takes no name"))),
            (false, None) => {
                let s = self
                    .config
                    .unique_mut(k.name)
                    .get_or_insert_with(Section::default);
                s.loc.get_or_insert_with(|| loc.clone());
                Ok(if empty {
                    Current::Top
                } else {
                    Current::Unique {
                        kind: k.name,
                        opened: loc.clone(),
                    }
                })
            }
            (true, Some(name)) => {
                if k.name == "check" && name != "default" && !CHECK_NAMES.contains(&name) {
                    return Err(Problem::at(
                        loc,
                        format!(
                            "unknown check '{name}' (mysql-mmm knows default, {})",
                            CHECK_NAMES.join(", ")
                        ),
                    ));
                }
                let list = self.config.named_mut(k.name);
                match list.iter_mut().find(|n| n.name == name) {
                    Some(n) => {
                        n.section.loc.get_or_insert_with(|| loc.clone());
                    }
                    None => list.push(Named {
                        name: name.to_string(),
                        section: Section {
                            loc: Some(loc.clone()),
                            vars: Vec::new(),
                        },
                    }),
                }
                Ok(if empty {
                    Current::Top
                } else {
                    Current::Named {
                        kind: k.name,
                        name: name.to_string(),
                        opened: loc.clone(),
                    }
                })
            }
        }
    }

    fn variable(
        &mut self,
        current: &Current,
        var: &str,
        value: &str,
        loc: &Loc,
    ) -> Result<(), Problem> {
        let keys = match current {
            Current::Top => TOP_KEYS,
            Current::Unique { kind, .. } | Current::Named { kind, .. } => kind_keys(kind),
        };
        if !keys.contains(&var) {
            let hint = if kind(var).is_some() {
                format!(" ('{var}' is a section: <{var} ...>)")
            } else {
                String::new()
            };
            let place = match current {
                Current::Top => "at the top level".to_string(),
                c => format!("in {}", c.tag()),
            };
            return Err(Problem::at(
                loc,
                format!("unknown variable '{var}' {place}{hint}"),
            ));
        }
        let v = Value {
            text: value.to_string(),
            loc: loc.clone(),
        };
        let section = match current {
            Current::Top => &mut self.config.globals,
            Current::Unique { kind, .. } => self
                .config
                .unique_mut(kind)
                .get_or_insert_with(Section::default),
            Current::Named { kind, name, .. } => {
                let list = self.config.named_mut(kind);
                let i = match list.iter().position(|n| n.name == *name) {
                    Some(i) => i,
                    None => {
                        list.push(Named {
                            name: name.clone(),
                            section: Section::default(),
                        });
                        list.len() - 1
                    }
                };
                &mut list[i].section
            }
        };
        section.set(var, v);
        Ok(())
    }
}

fn kind_keys(name: &str) -> &'static [&'static str] {
    kind(name).map(|k| k.keys).unwrap_or(&[])
}

/// `\w+` of mmm's tag grammar (ASCII).
fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `[\w\-_]+`: a section name.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
