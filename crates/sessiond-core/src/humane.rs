//! Durations in configuration as humane strings (`30m`, `12h`, `30d`,
//! `0s`): a serde `with` module, shared by every configuration section.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// For `#[serde(with = "humane")]`: writes the duration.
pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*value))
}

/// For `#[serde(with = "humane")]`: reads `30m`, `12h`, `30d`, `0s`, ….
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).map_err(|e| {
        serde::de::Error::custom(format!(
            "invalid duration {text:?} ({e}); use e.g. \"30m\", \"12h\", \"30d\""
        ))
    })
}

/// Reads `30m`, `12h`, `30d`, `0s`, … (surrounding spaces ignored): the
/// one reading of a duration, for configuration and command lines alike.
pub fn parse_duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text.trim())
}

/// The largest whole unit that divides the value exactly.
pub fn format_duration(value: Duration) -> String {
    let secs = value.as_secs();
    if value.subsec_nanos() != 0 {
        return format!("{}ms", value.as_millis());
    }
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs > 0 && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}
