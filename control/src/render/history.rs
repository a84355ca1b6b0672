//! `history`: the monitor's decision history, one line per event, oldest first.

use ha_proto::{HistoryEvent, HistoryReply};
use serde_json::{json, Value};

use crate::timefmt;

/// `2026-12-01T13:40:12.345Z  state_change         <message>` per event; `(took …)` after a
/// completed promotion.
pub fn render_history(r: &HistoryReply) -> String {
    let mut out = String::new();
    for e in &r.events {
        let took = e
            .duration_ms
            .map(|ms| format!(" (took {:.1} s)", ms as f64 / 1000.0))
            .unwrap_or_default();
        out += &format!(
            "{}  {:<22} {}{took}\n",
            timefmt::rfc3339_utc(e.time_unix_ms),
            e.kind,
            e.message
        );
    }
    if r.events.is_empty() {
        out += "No events.\n";
    }
    if r.skipped_lines > 0 {
        out += &format!(
            "# Warning: {} unreadable line(s) in the history file were skipped\n",
            r.skipped_lines
        );
    }
    out.trim_end().to_string()
}

/// `--json`: `{"events": [...]}` with the fields an event has (empty ones left out).
pub fn history_json(r: &HistoryReply) -> Value {
    json!({
        "events": r.events.iter().map(event_json).collect::<Vec<_>>(),
        "skipped_lines": r.skipped_lines,
    })
}

fn event_json(e: &HistoryEvent) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("time".into(), json!(timefmt::rfc3339_utc(e.time_unix_ms)));
    m.insert("time_unix_ms".into(), json!(e.time_unix_ms));
    m.insert("kind".into(), json!(e.kind));
    for (k, v) in [
        ("host", &e.host),
        ("role", &e.role),
        ("from", &e.from),
        ("to", &e.to),
        ("rule", &e.rule),
        ("cause", &e.cause),
        ("operator", &e.operator),
    ] {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(d) = e.duration_ms {
        m.insert("duration_ms".into(), json!(d));
    }
    m.insert("message".into(), json!(e.message));
    Value::Object(m)
}

/// `--since`: a duration ago (`90s`, `10m`, `2h`, `7d`) or a UTC time
/// (`2026-12-01T13:40:00Z`, `2026-12-01 13:40:00`, `2026-12-01`), as UNIX milliseconds.
pub fn parse_since(s: &str, now_unix_ms: i64) -> Result<i64, String> {
    let s = s.trim();
    let bad = || {
        format!("ERROR: cannot read --since '{s}': use a duration ago (90s, 10m, 2h, 7d) or a UTC time (2026-12-01T13:40:00Z)")
    };
    if let Some(unit) = s.chars().last().filter(|c| "smhd".contains(*c)) {
        if let Ok(n) = s[..s.len() - 1].parse::<i64>() {
            let per = match unit {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                _ => 86_400_000,
            };
            return Ok(now_unix_ms - n.saturating_mul(per));
        }
    }
    let t = s.trim_end_matches('Z').replace('T', " ");
    let (date, time) = t.split_once(' ').unwrap_or((&t, "00:00:00"));
    let num = |v: Option<&str>| v.and_then(|x| x.parse::<i64>().ok()).ok_or_else(bad);
    let mut d = date.split('-');
    let (y, mo, da) = (num(d.next())?, num(d.next())?, num(d.next())?);
    let mut tm = time.split(':');
    let (h, mi) = (num(tm.next())?, num(tm.next())?);
    let sec = num(Some(tm.next().unwrap_or("0")))?;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    timefmt::unix_ms_of_utc([y, mo, da, h, mi, sec]).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_durations_and_utc_times() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_since("90s", now), Ok(now - 90_000));
        assert_eq!(parse_since("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_since("1970-01-02", now), Ok(86_400_000));
        let t = parse_since("2026-12-01T13:40:00Z", now).expect("a time");
        assert_eq!(timefmt::rfc3339_utc(t), "2026-12-01T13:40:00.000Z");
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("2026-13-01", now).is_err());
    }

    #[test]
    fn renders_one_line_per_event_with_the_duration_of_promotions() {
        let r = HistoryReply {
            ok: true,
            events: vec![HistoryEvent {
                time_unix_ms: 0,
                kind: "promotion_done".into(),
                host: "db2".into(),
                duration_ms: Some(1500),
                message: "Host 'db2' is the active master now (writable, epoch 3)".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(
            render_history(&r),
            "1970-01-01T00:00:00.000Z  promotion_done         Host 'db2' is the active master now (writable, epoch 3) (took 1.5 s)"
        );
        let j = history_json(&r);
        assert_eq!(j["events"][0]["host"], "db2");
        assert_eq!(j["events"][0]["duration_ms"], 1500);
        assert!(j["events"][0].get("role").is_none());
    }
}
