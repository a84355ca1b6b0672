use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration written in seconds, fractions allowed (`5`, `0.1`, `2.5`).
///
/// Negative, NaN and infinite values are rejected while parsing; whether zero is allowed is
/// decided by validation, which knows the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Seconds(pub Duration);

impl Seconds {
    pub const fn from_secs(s: u64) -> Self {
        Seconds(Duration::from_secs(s))
    }

    pub const fn from_millis(ms: u64) -> Self {
        Seconds(Duration::from_millis(ms))
    }

    pub fn duration(self) -> Duration {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.as_secs_f64())
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of seconds (fractions allowed, e.g. 0.5)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map(|v| Seconds(Duration::from_secs(v)))
                    .map_err(|_| E::custom(format!("a duration cannot be negative, got {v}")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                if !v.is_finite() {
                    return Err(E::custom(format!(
                        "a duration must be a finite number, got {v}"
                    )));
                }
                if v < 0.0 {
                    return Err(E::custom(format!("a duration cannot be negative, got {v}")));
                }
                Duration::try_from_secs_f64(v)
                    .map(Seconds)
                    .map_err(|e| E::custom(format!("bad duration {v}: {e}")))
            }
        }
        d.deserialize_any(V)
    }
}
