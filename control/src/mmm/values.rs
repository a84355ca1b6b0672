//! Typed reading of mmm values, each failure a [`Problem`] at the value's line.

use std::net::IpAddr;

use super::parse::{Loc, Problem, Section, Value};

/// Collects the problems of one conversion so that all of them are reported at once.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, p: Problem) {
        if !self.0.contains(&p) {
            self.0.push(p);
        }
    }

    /// The value, or `None` after recording the problem.
    pub fn take<T>(&mut self, r: Result<T, Problem>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(p) => {
                self.push(p);
                None
            }
        }
    }
}

/// `key: 'text' is not …`, with a hint when the text looks like it carries a trailing comment.
fn bad(v: &Value, key: &str, what: &str) -> Problem {
    let hint = if v.text.contains('#') {
        " (mysql-mmm has no trailing comments: the '#' and what follows are part of the value)"
    } else {
        ""
    };
    Problem::at(&v.loc, format!("{key}: '{}' is not {what}{hint}", v.text))
}

pub fn ip(v: &Value, key: &str) -> Result<IpAddr, Problem> {
    v.text.parse().map_err(|_| bad(v, key, "an IP address"))
}

pub fn ips(v: &Value, key: &str) -> Result<Vec<IpAddr>, Problem> {
    let items = v.list();
    if items.is_empty() {
        return Err(Problem::at(&v.loc, format!("{key}: the list is empty")));
    }
    items
        .iter()
        .map(|s| {
            s.parse().map_err(|_| {
                let item = Value {
                    text: s.clone(),
                    loc: v.loc.clone(),
                };
                bad(&item, key, "an IP address")
            })
        })
        .collect()
}

/// A list of names (hosts of a role): none empty.
pub fn names(v: &Value, key: &str) -> Result<Vec<String>, Problem> {
    let items = v.list();
    if items.is_empty() || items.iter().any(String::is_empty) {
        return Err(bad(v, key, "a comma-separated list of names"));
    }
    Ok(items)
}

pub fn port(v: &Value, key: &str) -> Result<u16, Problem> {
    match v.text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad(v, key, "a port (1-65535)")),
    }
}

pub fn count(v: &Value, key: &str) -> Result<u32, Problem> {
    v.text
        .parse()
        .map_err(|_| bad(v, key, "a whole number (0 or more)"))
}

pub fn seconds(v: &Value, key: &str) -> Result<f64, Problem> {
    match v.text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(bad(v, key, "a number of seconds")),
    }
}

/// mmm's booleans: true/on/yes/1 and false/off/no/0, any case.
pub fn boolean(v: &Value, key: &str) -> Result<bool, Problem> {
    match v.text.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(bad(v, key, "a boolean (yes/no, on/off, true/false, 1/0)")),
    }
}

/// One of `allowed`.
pub fn choice(v: &Value, key: &str, allowed: &[&str]) -> Result<String, Problem> {
    if allowed.contains(&v.text.as_str()) {
        Ok(v.text.clone())
    } else {
        Err(bad(v, key, &format!("one of {}", allowed.join(", "))))
    }
}

/// A non-empty text value.
pub fn text(v: &Value, key: &str) -> Result<String, Problem> {
    if v.text.is_empty() {
        Err(Problem::at(&v.loc, format!("{key}: empty value")))
    } else {
        Ok(v.text.clone())
    }
}

/// The value of `key` in `section`, or a problem saying that it is missing there.
pub fn required<'a>(
    section: &'a Section,
    key: &str,
    place: &str,
    file: &str,
) -> Result<&'a Value, Problem> {
    section.get(key).ok_or_else(|| {
        let msg = format!("{key}: missing in {place} (mysql-mmm requires it too)");
        match &section.loc {
            Some(loc) => Problem::at(loc, msg),
            None => Problem::in_file(file, msg),
        }
    })
}

/// `value` read with `f` when the key is set, else `default`; with the location when set.
pub fn or_default<T>(
    section: Option<&Section>,
    key: &str,
    default: T,
    f: impl Fn(&Value, &str) -> Result<T, Problem>,
    problems: &mut Problems,
) -> (T, Option<Loc>)
where
    T: Clone,
{
    match section.and_then(|s| s.get(key)) {
        Some(v) => match f(v, key) {
            Ok(x) => (x, Some(v.loc.clone())),
            Err(p) => {
                problems.push(p);
                (default, Some(v.loc.clone()))
            }
        },
        None => (default, None),
    }
}
