//! Deadlines: wall-clock limits written as `90s`, `10m`, `1h` or `1h30m`.
//!
//! The same syntax is used by the `deadline:` field of a definition and by the `--deadline`
//! flag. A bare number means minutes, both as text (`"15"`) and as a YAML integer (`15`).
//! [`Deadline`] is the serde form: it reads either, and writes the canonical text form
//! ([`format_deadline`]), so a definition shown back to the user reads the way it was written.

use std::fmt;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What every deadline error shows, so the user sees the accepted forms.
const ACCEPTED: &str =
    "expected a positive duration such as `90s`, `10m`, `1h` or `1h30m` (a bare number means minutes)";

/// Parses a deadline: one or more `<number><unit>` parts with units `h`, `m`, `s` (each
/// unit at most once, in that order), or a bare whole number of minutes.
///
/// Guarantees: the result is positive; zero, negative, fractional, overflowing or otherwise
/// malformed input is an error whose message quotes the input and lists the accepted forms.
pub fn parse_deadline(s: &str) -> anyhow::Result<Duration> {
    parse_duration_of("deadline", s)
}

/// [`parse_deadline`]'s syntax for any duration of a definition; the error names `what`
/// (`invalid {what} `soon`: expected ...`).
pub fn parse_duration_of(what: &str, s: &str) -> anyhow::Result<Duration> {
    let text = s.trim();
    let secs = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>().ok().and_then(|m| m.checked_mul(60))
    } else {
        parse_units(text)
    };
    match secs {
        Some(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => bail!("invalid {what} `{s}`: {ACCEPTED}"),
    }
}

/// `1h30m` → seconds; `None` for anything else.
fn parse_units(text: &str) -> Option<u64> {
    const UNITS: [(char, u64); 3] = [('h', 3600), ('m', 60), ('s', 1)];
    let mut rest = text;
    let mut total: u64 = 0;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let value: u64 = rest[..digits].parse().ok()?;
        let unit = rest[digits..].chars().next()?;
        let pos = UNITS[next_unit..].iter().position(|(u, _)| *u == unit)?;
        let (_, factor) = UNITS[next_unit + pos];
        total = total.checked_add(value.checked_mul(factor)?)?;
        next_unit += pos + 1;
        rest = &rest[digits + unit.len_utf8()..];
    }
    (next_unit > 0).then_some(total)
}

/// Writes a duration in the form [`parse_deadline`] reads: `1h30m`, `90s` → `1m30s`, `10m`.
///
/// Guarantees: `parse_deadline(&format_deadline(d))` is `d` for every positive whole number
/// of seconds; sub-second parts are dropped; zero is written as `0s`.
pub fn format_deadline(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    let parts = [(secs / 3600, 'h'), (secs / 60 % 60, 'm'), (secs % 60, 's')];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, u)| format!("{n}{u}"))
        .collect()
}

/// A definition's `deadline:` value: reads `"10m"`-style text or an integer of minutes,
/// writes the canonical text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Duration);

impl Serialize for Deadline {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_deadline(self.0))
    }
}

impl<'de> Deserialize<'de> for Deadline {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(DurationVisitor { what: "deadline" })
            .map(Deadline)
    }
}

/// A definition's `restart.within:` value (the window its `restart.max` counts restarts
/// in): the same syntax as [`Deadline`], its errors naming a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Within(pub Duration);

impl Serialize for Within {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_deadline(self.0))
    }
}

impl<'de> Deserialize<'de> for Within {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(DurationVisitor { what: "duration" })
            .map(Within)
    }
}

/// Reads a duration as text or as an integer of minutes; `what` names it in errors.
struct DurationVisitor {
    what: &'static str,
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as `90s`, `10m`, `1h` or a number of minutes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration_of(self.what, v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }
}

/// Parses an optional `--deadline` flag value, naming the flag in the error.
pub fn parse_deadline_flag(value: Option<&str>) -> anyhow::Result<Option<Duration>> {
    value
        .map(|v| parse_deadline(v).context("in --deadline"))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        parse_deadline(s).unwrap().as_secs()
    }

    #[test]
    fn seconds_minutes_and_hours_are_read() {
        assert_eq!(secs("90s"), 90);
        assert_eq!(secs("10m"), 600);
        assert_eq!(secs("1h"), 3600);
    }

    #[test]
    fn units_combine_in_order() {
        assert_eq!(secs("1h30m"), 5400);
        assert_eq!(secs("2h0m5s"), 7205);
        assert_eq!(secs("1m30s"), 90);
    }

    #[test]
    fn a_bare_number_means_minutes() {
        assert_eq!(secs("15"), 900);
        assert_eq!(secs(" 15 "), 900);
    }

    #[test]
    fn zero_negative_and_garbage_are_rejected_with_the_accepted_forms() {
        for bad in [
            "",
            "0",
            "0s",
            "0h0m",
            "-5",
            "-5m",
            "1.5h",
            "ten",
            "10 m",
            "m",
            "10x",
            "30s1m",
            "1m1m",
            "99999999999999999999",
        ] {
            let e = parse_deadline(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{bad}: {e}");
            assert!(e.contains("`90s`, `10m`, `1h`"), "{bad}: {e}");
        }
    }

    #[test]
    fn overflow_is_rejected() {
        assert!(parse_deadline("18446744073709551615h").is_err());
        assert!(parse_deadline("307445734561825861").is_err());
    }

    #[test]
    fn formatting_round_trips() {
        for s in [1, 59, 60, 90, 600, 3600, 5400, 7205, 86400] {
            let d = Duration::from_secs(s);
            assert_eq!(parse_deadline(&format_deadline(d)).unwrap(), d, "{s}");
        }
        assert_eq!(format_deadline(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn yaml_integer_deadline_means_minutes() {
        let d: Deadline = serde_yaml::from_str("15").unwrap();
        assert_eq!(d.0, Duration::from_secs(900));
        let d: Deadline = serde_yaml::from_str("\"90s\"").unwrap();
        assert_eq!(d.0, Duration::from_secs(90));
    }

    #[test]
    fn yaml_negative_deadline_is_rejected() {
        assert!(serde_yaml::from_str::<Deadline>("-3").is_err());
    }

    #[test]
    fn deadline_flag_error_names_the_flag() {
        let e = parse_deadline_flag(Some("soon")).unwrap_err();
        assert!(format!("{e:#}").contains("--deadline"), "{e:#}");
        assert_eq!(parse_deadline_flag(None).unwrap(), None);
    }
}
