//! `threshold = "200ms"`: a duration written as a whole number and a unit,
//! read at compile time into nanoseconds.
//!
//! The units are those the runtime's environment variables take (`ns`, `us`
//! or `µs`, `ms`, `s`, `m`), so a duration is written the same way in code
//! and in the environment. The form is strict so that every threshold reads
//! the same way in code review; each mistake gets a message that shows the
//! accepted form, and the same duration in it when there is one (`"1.5s"` ->
//! `"1500ms"`).

use std::fmt;

/// The accepted form, as messages show it.
pub(crate) const FORM: &str = "a whole number followed by `ns`, `us`, `ms`, `s` or `m`";

/// The accepted units, as the runtime's `config::parse::duration` takes
/// them (`DURATION_UNITS`), and their length in nanoseconds, largest
/// first. Suggestions use the first that fits, so `us` comes before its
/// other spelling `µs` (U+00B5).
const UNITS: [(&str, u64); 6] = [
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("ns", 1),
];

/// Units users reach for, and their length in nanoseconds: suggestions
/// rewrite the duration in an accepted unit.
const UNIT_ALIASES: [(&str, u64); 31] = [
    ("sec", 1_000_000_000),
    ("secs", 1_000_000_000),
    ("second", 1_000_000_000),
    ("seconds", 1_000_000_000),
    ("msec", 1_000_000),
    ("msecs", 1_000_000),
    ("milli", 1_000_000),
    ("millis", 1_000_000),
    ("millisecond", 1_000_000),
    ("milliseconds", 1_000_000),
    // Greek mu (U+03BC), which looks like the micro sign `µs` takes.
    ("\u{3bc}s", 1_000),
    ("usec", 1_000),
    ("usecs", 1_000),
    ("micro", 1_000),
    ("micros", 1_000),
    ("microsecond", 1_000),
    ("microseconds", 1_000),
    ("nsec", 1),
    ("nsecs", 1),
    ("nano", 1),
    ("nanos", 1),
    ("nanosecond", 1),
    ("nanoseconds", 1),
    ("min", 60_000_000_000),
    ("mins", 60_000_000_000),
    ("minute", 60_000_000_000),
    ("minutes", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("hr", 3_600_000_000_000),
    ("hour", 3_600_000_000_000),
    ("hours", 3_600_000_000_000),
];

/// What is wrong with a threshold string.
#[derive(Debug, PartialEq)]
pub(crate) enum DurationError {
    /// `""`.
    Empty,
    /// `"200 ms"`, `"1_000ms"`: with the same duration written without
    /// spaces or `_`.
    Spaced { compact: String },
    /// No number first: `"ms"`, `"-5ms"`, `"fast"`, `"1.2.3s"`.
    NoNumber,
    /// `"200"`.
    NoUnit { number: String },
    /// `"200sec"`: with the same duration in an accepted unit, when the
    /// unit is one users reach for.
    UnknownUnit { unit: String, meant: Option<String> },
    /// `"1.5s"`: with the same duration as a whole number of a smaller
    /// unit, when there is one.
    Fraction { whole: Option<String> },
    /// `"0ms"`.
    Zero,
    /// More nanoseconds than a `u64` holds.
    TooLong,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const EXAMPLE: &str = "`threshold = \"200ms\"`";
        match self {
            DurationError::Empty => {
                write!(f, "`threshold` is empty: write {FORM}, e.g. {EXAMPLE}, or leave `threshold` out")
            }
            DurationError::Spaced { compact } => {
                write!(f, "`threshold` takes no spaces or `_`: write `threshold = \"{compact}\"`")
            }
            DurationError::NoNumber => {
                write!(f, "`threshold` must start with a whole number: write {FORM}, e.g. {EXAMPLE}")
            }
            DurationError::NoUnit { number } => write!(
                f,
                "`threshold` needs a unit after `{number}`: `ns`, `us`, `ms`, `s` or `m`, e.g. `threshold = \"{number}ms\"`"
            ),
            DurationError::UnknownUnit { unit, meant: Some(meant) } => write!(
                f,
                "unknown unit `{unit}` in `threshold`: did you mean `threshold = \"{meant}\"`? The units are `ns`, `us`, `ms`, `s` and `m`"
            ),
            DurationError::UnknownUnit { unit, meant: None } => {
                write!(f, "unknown unit `{unit}` in `threshold`: write {FORM}, e.g. {EXAMPLE}")
            }
            DurationError::Fraction { whole: Some(whole) } => {
                write!(f, "`threshold` takes a whole number: write `threshold = \"{whole}\"`")
            }
            DurationError::Fraction { whole: None } => {
                write!(
                    f,
                    "`threshold` takes a whole number, and the shortest threshold is `threshold = \"1ns\"`"
                )
            }
            DurationError::Zero => write!(
                f,
                "`threshold` must be more than zero: leave `threshold` out for a scope without a slow-call threshold"
            ),
            DurationError::TooLong => write!(
                f,
                "`threshold` is too long: the most it can be is `\"{}s\"` (about 584 years)",
                u64::MAX / 1_000_000_000
            ),
        }
    }
}

/// Nanoseconds in `text`, a positive whole number followed by `ns`, `us`
/// (or `µs`), `ms`, `s` or `m` with nothing in between: `"200ms"`.
pub(crate) fn parse(text: &str) -> Result<u64, DurationError> {
    if text.trim().is_empty() {
        return Err(DurationError::Empty);
    }
    let is_spacing = |c: char| c.is_whitespace() || c == '_';
    if text.contains(is_spacing) {
        let compact: String = text.chars().filter(|c| !is_spacing(*c)).collect();
        // Report the compact form's own mistake first, if it has one.
        parse(&compact)?;
        return Err(DurationError::Spaced { compact });
    }
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if !number.contains(|c: char| c.is_ascii_digit()) || number.matches('.').count() > 1 {
        return Err(DurationError::NoNumber);
    }
    if unit.is_empty() {
        return Err(DurationError::NoUnit { number: number.to_owned() });
    }
    let Some(scale) = UNITS.iter().find(|(name, _)| *name == unit).map(|(_, scale)| *scale) else {
        let lower = unit.to_lowercase();
        let scale = UNITS.iter().chain(&UNIT_ALIASES).find(|(name, _)| *name == lower);
        let meant = scale
            .and_then(|(_, scale)| nanoseconds(number, *scale))
            .filter(|ns| *ns > 0 && *ns <= u128::from(u64::MAX))
            .and_then(whole);
        return Err(DurationError::UnknownUnit { unit: unit.to_owned(), meant });
    };
    let is_fraction = number.contains('.');
    match (nanoseconds(number, scale), is_fraction) {
        // A fraction of a nanosecond.
        (None, true) => Err(DurationError::Fraction { whole: None }),
        // Too many digits for a `u128`.
        (None, false) => Err(DurationError::TooLong),
        (Some(0), _) => Err(DurationError::Zero),
        (Some(ns), true) => Err(DurationError::Fraction { whole: whole(ns) }),
        (Some(ns), false) => u64::try_from(ns).map_err(|_| DurationError::TooLong),
    }
}

/// `number` (digits, maybe with one `.`) times `scale` nanoseconds, when
/// that is a whole number of nanoseconds that fits a `u128`.
fn nanoseconds(number: &str, scale: u64) -> Option<u128> {
    let (int, fraction) = number.split_once('.').unwrap_or((number, ""));
    let fraction = fraction.trim_end_matches('0');
    let int = if int.is_empty() { 0 } else { int.parse::<u128>().ok()? };
    let mut ns = int.checked_mul(u128::from(scale))?;
    if !fraction.is_empty() {
        let denominator = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
        let numerator = fraction.parse::<u128>().ok()?.checked_mul(u128::from(scale))?;
        if !numerator.is_multiple_of(denominator) {
            return None;
        }
        ns = ns.checked_add(numerator / denominator)?;
    }
    Some(ns)
}

/// `ns` written in the largest accepted unit that makes it a whole number.
fn whole(ns: u128) -> Option<String> {
    let (unit, scale) = UNITS.iter().find(|(_, scale)| ns.is_multiple_of(u128::from(*scale)))?;
    Some(format!("{}{unit}", ns / u128::from(*scale)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::same;

    fn unknown(unit: &str, meant: Option<&str>) -> DurationError {
        DurationError::UnknownUnit { unit: unit.to_owned(), meant: meant.map(str::to_owned) }
    }

    #[test]
    fn reads_each_unit() -> Result<(), String> {
        same(parse("200ms"), Ok(200_000_000))?;
        same(parse("1ns"), Ok(1))?;
        same(parse("250us"), Ok(250_000))?;
        same(parse("5\u{b5}s"), Ok(5_000))?;
        same(parse("2s"), Ok(2_000_000_000))?;
        same(parse("2m"), Ok(120_000_000_000))?;
        same(parse("007ms"), Ok(7_000_000))?;
        same(parse("18446744073s"), Ok(18_446_744_073_000_000_000))?;
        same(parse("307445734m"), Ok(18_446_744_040_000_000_000))?;
        same(parse("18446744073709551615ns"), Ok(u64::MAX))
    }

    #[test]
    fn rejects_what_is_not_a_whole_number_and_a_unit() -> Result<(), String> {
        same(parse(""), Err(DurationError::Empty))?;
        same(parse("  "), Err(DurationError::Empty))?;
        same(parse("ms"), Err(DurationError::NoNumber))?;
        same(parse("-5ms"), Err(DurationError::NoNumber))?;
        same(parse("."), Err(DurationError::NoNumber))?;
        same(parse("1.2.3s"), Err(DurationError::NoNumber))?;
        same(parse("200"), Err(DurationError::NoUnit { number: "200".to_owned() }))?;
        same(parse("0ms"), Err(DurationError::Zero))?;
        same(parse("0.0s"), Err(DurationError::Zero))?;
        same(parse("0s"), Err(DurationError::Zero))?;
        same(parse("18446744074s"), Err(DurationError::TooLong))?;
        same(parse("307445735m"), Err(DurationError::TooLong))?;
        same(parse("99999999999999999999999999999999999999999s"), Err(DurationError::TooLong))
    }

    #[test]
    fn suggests_the_same_duration_in_an_accepted_form() -> Result<(), String> {
        same(parse("1.5s"), Err(DurationError::Fraction { whole: Some("1500ms".to_owned()) }))?;
        same(parse("0.25ms"), Err(DurationError::Fraction { whole: Some("250us".to_owned()) }))?;
        same(parse("2.000s"), Err(DurationError::Fraction { whole: Some("2s".to_owned()) }))?;
        same(parse(".5s"), Err(DurationError::Fraction { whole: Some("500ms".to_owned()) }))?;
        same(parse("1.5m"), Err(DurationError::Fraction { whole: Some("90s".to_owned()) }))?;
        same(parse("2.0m"), Err(DurationError::Fraction { whole: Some("2m".to_owned()) }))?;
        same(parse("0.5ns"), Err(DurationError::Fraction { whole: None }))?;
        same(parse("200sec"), Err(unknown("sec", Some("200s"))))?;
        same(parse("120sec"), Err(unknown("sec", Some("2m"))))?;
        same(parse("200MS"), Err(unknown("MS", Some("200ms"))))?;
        same(parse("2M"), Err(unknown("M", Some("2m"))))?;
        same(parse("5\u{3bc}s"), Err(unknown("\u{3bc}s", Some("5us"))))?;
        same(parse("2min"), Err(unknown("min", Some("2m"))))?;
        same(parse("1.5h"), Err(unknown("h", Some("90m"))))?;
        same(parse("1.5sec"), Err(unknown("sec", Some("1500ms"))))?;
        same(parse("0sec"), Err(unknown("sec", None)))?;
        same(parse("200 sec"), Err(unknown("sec", Some("200s"))))?;
        same(parse("200fortnights"), Err(unknown("fortnights", None)))?;
        same(parse("200 ms"), Err(DurationError::Spaced { compact: "200ms".to_owned() }))?;
        same(parse(" 200ms"), Err(DurationError::Spaced { compact: "200ms".to_owned() }))?;
        same(parse("1_000ms"), Err(DurationError::Spaced { compact: "1000ms".to_owned() }))
    }

    #[test]
    fn messages_show_the_accepted_form() -> Result<(), String> {
        let message = |text: &str| parse(text).err().map(|error| error.to_string()).unwrap_or_default();
        same(message("200").contains("`threshold = \"200ms\"`"), true)?;
        same(message("1.5s").contains("`threshold = \"1500ms\"`"), true)?;
        same(message("200sec").contains("did you mean `threshold = \"200s\"`?"), true)?;
        same(message("200sec").contains("The units are `ns`, `us`, `ms`, `s` and `m`"), true)?;
        same(message("200").contains("`ns`, `us`, `ms`, `s` or `m`"), true)?;
        same(message("0ms").contains("more than zero"), true)?;
        same(message("18446744074s").contains("`\"18446744073s\"`"), true)
    }
}
