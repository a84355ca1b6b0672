//! Time formatting without a date library.
//!
//! mmm_control prints the last change of a check as `yyyy/MM/dd HH:mm:ss` in the monitor's local
//! time (Log4perl's DateFormat). ha-control prints it in the *operator's* local time — the
//! monitor sends Unix milliseconds, so the client converts. `localtime_r(3)` from libc does the
//! zone work (it honours `TZ`), which keeps chrono and a tz database out of the binary.
//! The JSON form uses RFC 3339 in UTC, which needs only the proleptic Gregorian calendar
//! arithmetic below.

/// Broken-down civil time, enough for the two formats we print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl Civil {
    /// `yyyy/MM/dd HH:mm:ss`, the format of `checks`' `[last change: …]`.
    pub fn mmm(&self) -> String {
        format!(
            "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Splits Unix milliseconds into whole seconds and the millisecond remainder, flooring so that
/// instants before 1970 still produce a remainder in `0..1000`.
fn split_ms(unix_ms: i64) -> (i64, u32) {
    (
        unix_ms.div_euclid(1000),
        // rem_euclid(1000) is always in 0..1000, so the cast cannot truncate.
        unix_ms.rem_euclid(1000) as u32,
    )
}

/// Days since 1970-01-01 → (year, month, day). Howard Hinnant's `civil_from_days`, valid for
/// the whole i64 range we can be handed.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// UNIX milliseconds of a UTC civil time `[year, month, day, hour, minute, second]` (the C
/// library's `timegm`); `None` when it cannot be represented.
pub fn unix_ms_of_utc(civil: [i64; 6]) -> Option<i64> {
    let field = |v: i64| libc::c_int::try_from(v).ok();
    // SAFETY: an all-zero `tm` is a valid value; timegm only reads and normalizes it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = field(civil[0] - 1900)?;
    tm.tm_mon = field(civil[1] - 1)?;
    tm.tm_mday = field(civil[2])?;
    tm.tm_hour = field(civil[3])?;
    tm.tm_min = field(civil[4])?;
    tm.tm_sec = field(civil[5])?;
    // SAFETY: `tm` is a valid, exclusively borrowed struct tm.
    let secs = unsafe { libc::timegm(&mut tm) };
    (secs != -1).then(|| secs.saturating_mul(1000))
}

/// The UTC civil time of `unix_ms`.
pub fn utc(unix_ms: i64) -> Civil {
    let (secs, millis) = split_ms(unix_ms);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        minute: sod % 3600 / 60,
        second: sod % 60,
        millis,
    }
}

extern "C" {
    // POSIX; not exported by the libc crate for Linux targets. Re-reads `TZ`.
    fn tzset();
}

/// The local civil time of `unix_ms` per `TZ` / `/etc/localtime`; UTC if the C library cannot
/// convert it (out-of-range years), so a strange timestamp never aborts the output.
pub fn local(unix_ms: i64) -> Civil {
    let (secs, millis) = split_ms(unix_ms);
    // time_t is 64-bit here, 32-bit on some targets: the conversion can fail there only.
    #[allow(irrefutable_let_patterns)]
    let Ok(t) = libc::time_t::try_from(secs) else {
        return utc(unix_ms);
    };
    // SAFETY: `tm` is plain old data, so all-zero is a valid value; `localtime_r` only writes
    // into the buffer we pass and reports failure with a null pointer, which we check.
    // `tzset` has no preconditions.
    let tm = unsafe {
        tzset();
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return utc(unix_ms);
        }
        tm
    };
    let field = |v: libc::c_int| u32::try_from(v).unwrap_or(0);
    Civil {
        year: i64::from(tm.tm_year) + 1900,
        month: field(tm.tm_mon + 1),
        day: field(tm.tm_mday),
        hour: field(tm.tm_hour),
        minute: field(tm.tm_min),
        second: field(tm.tm_sec),
        millis,
    }
}

/// `yyyy/MM/dd HH:mm:ss` in local time (what mmm_control's `checks` shows).
pub fn mmm_local(unix_ms: i64) -> String {
    local(unix_ms).mmm()
}

/// `yyyy/MM/dd HH:mm:ss` in UTC (deterministic; used by tests and golden files).
pub fn mmm_utc(unix_ms: i64) -> String {
    utc(unix_ms).mmm()
}

/// RFC 3339 in UTC with millisecond precision, e.g. `2024-05-01T12:00:00.123Z`.
pub fn rfc3339_utc(unix_ms: i64) -> String {
    let c = utc(unix_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.millis
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(mmm_utc(0), "1970/01/01 00:00:00");
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T23:59:59.999Z (leap day)
        assert_eq!(rfc3339_utc(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
        assert_eq!(mmm_utc(1_709_251_199_999), "2024/02/29 23:59:59");
        // 2000-03-01 (century leap year boundary)
        assert_eq!(mmm_utc(951_868_800_000), "2000/03/01 00:00:00");
        // 2100-03-01: 2100 is not a leap year
        assert_eq!(mmm_utc(4_107_542_400_000), "2100/03/01 00:00:00");
    }

    #[test]
    fn negative_instants_floor() {
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(mmm_utc(-86_400_000), "1969/12/31 00:00:00");
    }

    #[test]
    fn local_time_is_a_plausible_civil_time() {
        // Whatever TZ the test runs under, offsets stay within ±26 h of UTC.
        let l = local(1_700_000_000_000);
        assert!((2023..=2024).contains(&l.year), "{l:?}");
        assert!((1..=12).contains(&l.month) && (1..=31).contains(&l.day));
        assert!(l.hour < 24 && l.minute < 60 && l.second < 61);
    }
}
