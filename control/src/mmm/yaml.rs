//! Writing ha's YAML by hand (with comments), remembering which mmm line each field came from so
//! that a complaint of ha's own validation can be reported against the mmm file and line.

use ha_config::ConfigErrors;

use super::parse::{Loc, Problem};

/// YAML text under construction and the origin of its fields (`hosts.db1.peer` → a Loc).
#[derive(Debug, Default)]
pub struct Yaml {
    pub text: String,
    origins: Vec<(String, Loc)>,
}

impl Yaml {
    /// A line as is (comments, section headers).
    pub fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }

    /// `key: value` at `indent` spaces; `path` is the field's dotted path for error mapping.
    pub fn field(&mut self, indent: usize, path: &str, value: &str, origin: Option<&Loc>) {
        let key = path.rsplit('.').next().unwrap_or(path);
        self.text
            .push_str(&format!("{:indent$}{}: {value}\n", "", scalar(key)));
        self.origin(path, origin);
    }

    /// Records where the field or section at `path` came from.
    pub fn origin(&mut self, path: &str, origin: Option<&Loc>) {
        if let Some(loc) = origin {
            self.origins.push((path.to_string(), loc.clone()));
        }
    }

    /// The mmm location of the most specific recorded path that `path` lies in.
    fn origin_of(&self, path: &str) -> Option<&Loc> {
        self.origins
            .iter()
            .filter(|(p, _)| {
                path == p
                    || path.starts_with(&format!("{p}."))
                    || path.starts_with(&format!("{p}["))
            })
            .max_by_key(|(p, _)| p.len())
            .map(|(_, l)| l)
    }

    /// Turns ha's complaints about the converted file `name` into problems naming the mmm line
    /// the offending value came from.
    pub fn problems(&self, name: &str, errors: &ConfigErrors) -> Vec<Problem> {
        errors
            .0
            .iter()
            .map(|e| {
                let what = if e.path.is_empty() {
                    e.message.clone()
                } else {
                    format!("{}: {}", e.path, e.message)
                };
                let what = format!("ha refuses the converted value: {what}");
                match self.origin_of(&e.path) {
                    Some(loc) => Problem::at(loc, what),
                    None => Problem::in_file(name, what),
                }
            })
            .collect()
    }
}

/// A string as a YAML scalar: plain when that is unambiguous, else double-quoted (JSON string
/// syntax, which YAML reads the same way).
pub fn scalar(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !numeric(s)
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
        );
    if plain {
        s.to_string()
    } else {
        quoted(s)
    }
}

/// True for what YAML (1.1 or 1.2) could read as a number: `12`, `1.5`, `1e3`, `1_000`, `0x1f`.
fn numeric(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    s.parse::<f64>().is_ok()
        || s.bytes().all(|b| b.is_ascii_digit() || b == b'_')
        || ["0x", "0o", "0b"].iter().any(|p| lower.starts_with(p))
}

/// A string always double-quoted (passwords, user names).
pub fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// A flow list `[a, b]` of scalars.
pub fn list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|s| scalar(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// A number of seconds as ha writes it (`5`, `0.5`).
pub fn secs(v: f64) -> String {
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_quoted_when_yaml_would_misread_them() {
        for plain in [
            "db1",
            "writer",
            "/var/lib/ha/status.json",
            "eth0",
            "192.168.0.1",
            "a-b_c",
        ] {
            assert_eq!(scalar(plain), plain);
        }
        for q in [
            "", "yes", "No", "123", "1.5", "1e3", "1_0", "0x1f", "a b", "p#ss", "x: y", "::1",
            "-a", "ä",
        ] {
            let s = scalar(q);
            assert!(s.starts_with('"'), "{q:?} -> {s}");
            // Double-quoted YAML scalars are read as JSON strings are.
            assert_eq!(serde_json::from_str::<String>(&s).ok().as_deref(), Some(q));
        }
        assert_eq!(quoted("pa\"ss\\"), r#""pa\"ss\\""#);
        assert_eq!(list(&["db1", "db2"]), "[db1, db2]");
        assert_eq!(secs(5.0), "5");
        assert_eq!(secs(0.5), "0.5");
    }
}
