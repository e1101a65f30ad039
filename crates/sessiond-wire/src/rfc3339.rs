//! RFC 3339 timestamps written from a stack buffer: byte for byte what
//! `time::serde::rfc3339` writes (checked by a test), without its `String`
//! per timestamp. Offsets other than UTC and years outside 0–9999 take
//! `time`'s own path.

use serde::{Deserializer, Serializer};
use time::{OffsetDateTime, UtcOffset};

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`
pub(crate) const LONGEST: usize = 30;

fn two(out: &mut [u8], at: usize, n: u8) {
    out[at] = b'0' + n / 10;
    out[at + 1] = b'0' + n % 10;
}

/// The text of `at`, or `None` when `time`'s formatter must decide.
pub(crate) fn format(at: OffsetDateTime, out: &mut [u8; LONGEST]) -> Option<usize> {
    let year = u16::try_from(at.year()).ok().filter(|y| *y < 10_000)?;
    if at.offset() != UtcOffset::UTC {
        return None;
    }
    two(out, 0, u8::try_from(year / 100).ok()?);
    two(out, 2, u8::try_from(year % 100).ok()?);
    out[4] = b'-';
    two(out, 5, u8::from(at.month()));
    out[7] = b'-';
    two(out, 8, at.day());
    out[10] = b'T';
    two(out, 11, at.hour());
    out[13] = b':';
    two(out, 14, at.minute());
    out[16] = b':';
    two(out, 17, at.second());
    let mut len = 19;
    let mut nanos = at.nanosecond();
    if nanos != 0 {
        out[len] = b'.';
        let mut digits = 9;
        while nanos.is_multiple_of(10) {
            nanos /= 10;
            digits -= 1;
        }
        for i in (0..digits).rev() {
            out[len + 1 + i] = b'0' + u8::try_from(nanos % 10).ok()?;
            nanos /= 10;
        }
        len += 1 + digits;
    }
    out[len] = b'Z';
    Some(len + 1)
}

/// For `#[serde(with = "rfc3339")]`.
pub(crate) fn serialize<S: Serializer>(at: &OffsetDateTime, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; LONGEST];
    match format(*at, &mut buf).and_then(|len| std::str::from_utf8(&buf[..len]).ok()) {
        Some(text) => serializer.serialize_str(text),
        None => time::serde::rfc3339::serialize(at, serializer),
    }
}

/// For `#[serde(with = "rfc3339")]`: `time`'s parser.
pub(crate) fn deserialize<'a, D: Deserializer<'a>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    time::serde::rfc3339::deserialize(deserializer)
}

#[cfg(test)]
mod tests {
    use time::format_description::well_known::Rfc3339;
    use time::{Duration, OffsetDateTime, UtcOffset};

    #[test]
    fn writes_what_time_writes() {
        let mut at = OffsetDateTime::from_unix_timestamp(0).unwrap();
        let mut step = Duration::nanoseconds(1);
        let mut nanos_seen = 0;
        for i in 0..20_000i64 {
            let mut buf = [0u8; super::LONGEST];
            let len = super::format(at, &mut buf).unwrap();
            assert_eq!(
                std::str::from_utf8(&buf[..len]).unwrap(),
                at.format(&Rfc3339).unwrap(),
                "{at:?}"
            );
            nanos_seen += i64::from(at.nanosecond() != 0);
            at += step;
            step = Duration::nanoseconds((step.whole_nanoseconds() as i64 * 7 + i) % 400_000_000_000_007);
        }
        assert!(nanos_seen > 100);
        for year in [0, 1, 999, 2026, 9999] {
            let at = sessiond_core::Clock::now(&sessiond_core::SystemClock)
                .replace_year(year)
                .unwrap();
            let mut buf = [0u8; super::LONGEST];
            let len = super::format(at, &mut buf).unwrap();
            assert_eq!(std::str::from_utf8(&buf[..len]).unwrap(), at.format(&Rfc3339).unwrap());
        }
        let mut buf = [0u8; super::LONGEST];
        let offset =
            sessiond_core::Clock::now(&sessiond_core::SystemClock).to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(super::format(offset, &mut buf), None);
        let ancient = sessiond_core::Clock::now(&sessiond_core::SystemClock)
            .replace_year(-5)
            .unwrap();
        assert_eq!(super::format(ancient, &mut buf), None);
    }
}
