//! Durations and byte sizes as Compose writes them: `1m30s`, `500ms`, `64m`, `1.5g`.
//!
//! Pure functions from text to a value, or to a one-line message that says what is wrong and
//! what a valid value looks like; the converter adds the `file:line:col` position. Durations
//! follow Go's `time.ParseDuration` (what Compose uses) but refuse negative values; sizes
//! follow docker/go-units `RAMInBytes`, with binary multiples (`1k` is 1024 bytes).

use std::fmt::Write as _;
use std::time::Duration;

/// What a valid duration looks like, for messages.
const DURATION_HINT: &str =
    "use a number with a unit (ns, us, ms, s, m, h), e.g. 30s, 1m30s, 500ms";

/// What a valid size looks like, for messages.
const SIZE_HINT: &str =
    "use a number with an optional unit b, k, m, g, t or p (1024-based), e.g. 512k, 64m, 1.5g";

/// The largest value Docker can take, in nanoseconds or bytes: Go's `int64`.
const MAX_I64: u128 = i64::MAX as u128;

/// Fraction digits taken into account; later digits are below one nanosecond/byte anyway
/// (a unit is at most 2^50 bytes or 3.6e12 ns) and are checked but ignored.
const MAX_FRACTION_DIGITS: usize = 18;

/// Parses a Go duration as Compose writes it: `1m30s`, `1h`, `500ms`, `1.5s`, `10us`,
/// `10µs`, `100ns`, or a bare `0`.
///
/// Each number needs a unit; components add up (`1h30m`). A leading `+` is allowed, a
/// negative duration is not, and neither is one beyond Go's limit (about 292 years).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let fail = |why: &str| format!("invalid duration {s:?}: {why}; {DURATION_HINT}");
    let mut rest = s;
    if rest.starts_with('-') {
        return Err(fail("negative durations are not allowed"));
    }
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(fail("empty"));
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (whole, after_whole) = split_digits(rest);
        rest = after_whole;
        let mut fraction = "";
        if let Some(r) = rest.strip_prefix('.') {
            (fraction, rest) = split_digits(r);
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(fail("expected a number"));
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, after_unit) = rest.split_at(unit_len);
        rest = after_unit;
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(fail("missing unit")),
            other => return Err(fail(&format!("unknown unit {other:?}"))),
        };
        let value = scaled(whole, fraction, unit_nanos);
        total = match value.and_then(|v| total.checked_add(v)) {
            Some(t) if t <= MAX_I64 => t,
            _ => return Err(fail("too large (the maximum is 2562047h47m16s)")),
        };
    }
    // `total <= i64::MAX`, so it fits in a u64.
    Ok(Duration::from_nanos(
        u64::try_from(total).unwrap_or(u64::MAX),
    ))
}

/// Formats a duration compactly for display, in a form [`parse_duration`] reads back:
/// `1h`, `1m30s`, `1.5s`, `500ms`, `10µs`, `0s`. Zero components are left out.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if secs == 0 {
        return match nanos {
            0 => "0s".to_owned(),
            n if n < 1_000 => format!("{n}ns"),
            n if n < 1_000_000 => format!("{}\u{b5}s", decimal(u64::from(n), 1_000, 3)),
            n => format!("{}ms", decimal(u64::from(n), 1_000_000, 6)),
        };
    }
    let mut out = String::new();
    let (hours, minutes, seconds) = (secs / 3_600, secs % 3_600 / 60, secs % 60);
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    if seconds > 0 || nanos > 0 {
        let value = seconds * 1_000_000_000 + u64::from(nanos);
        let _ = write!(out, "{}s", decimal(value, 1_000_000_000, 9));
    }
    out
}

/// Parses a size in bytes as docker/go-units `RAMInBytes` does: `100` (bytes), `512k`,
/// `64m`, `1gb`, `1.5g`, `2 GiB`; case-insensitive, multiples of 1024.
///
/// Suffixes: `b`, `k`/`kb`/`kib`, `m`/`mb`/`mib`, `g`/`gb`/`gib`, `t`/`tb`/`tib`,
/// `p`/`pb`/`pib`, optionally after one space. A fraction of a byte is dropped; sizes
/// beyond Go's `int64` are refused.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let fail = |why: &str| format!("invalid size {s:?}: {why}; {SIZE_HINT}");
    let (whole, mut rest) = split_digits(s);
    if whole.is_empty() {
        return Err(fail(if s.starts_with('-') {
            "negative sizes are not allowed"
        } else {
            "expected a number"
        }));
    }
    let mut fraction = "";
    if let Some(r) = rest.strip_prefix('.') {
        (fraction, rest) = split_digits(r);
        if fraction.is_empty() {
            return Err(fail("expected digits after the decimal point"));
        }
    }
    let unit = rest.strip_prefix(' ').unwrap_or(rest);
    let suffix = unit.to_ascii_lowercase();
    let (prefix, tail) = match suffix.as_bytes() {
        [p @ (b'k' | b'm' | b'g' | b't' | b'p'), tail @ ..] => (Some(*p), tail),
        tail => (None, tail),
    };
    let tail_ok = match prefix {
        Some(_) => matches!(tail, [] | b"b" | b"i" | b"ib"),
        None => matches!(tail, [] | b"b"),
    };
    if !tail_ok {
        return Err(fail(&format!("unknown unit {unit:?}")));
    }
    let multiplier: u128 = match prefix {
        None => 1,
        Some(b'k') => 1 << 10,
        Some(b'm') => 1 << 20,
        Some(b'g') => 1 << 30,
        Some(b't') => 1 << 40,
        Some(_) => 1 << 50,
    };
    match scaled(whole, fraction, multiplier) {
        Some(bytes) if bytes <= MAX_I64 => Ok(u64::try_from(bytes).unwrap_or(u64::MAX)),
        _ => Err(fail("too large (the maximum is 8191p)")),
    }
}

/// Splits `s` after its leading ASCII digits.
fn split_digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    // ASCII digits are one byte each, so `n` is a character boundary.
    s.split_at(n)
}

/// `whole.fraction * unit`, truncated to an integer; `None` when it exceeds Go's `int64`.
/// Both strings hold ASCII digits only.
fn scaled(whole: &str, fraction: &str, unit: u128) -> Option<u128> {
    let mut value: u128 = 0;
    for d in whole.bytes() {
        value = value * 10 + u128::from(d - b'0');
        if value > MAX_I64 {
            return None;
        }
    }
    let mut value = value.checked_mul(unit)?;
    let taken = &fraction.as_bytes()[..fraction.len().min(MAX_FRACTION_DIGITS)];
    let (mut numerator, mut scale): (u128, u128) = (0, 1);
    for d in taken {
        numerator = numerator * 10 + u128::from(d - b'0');
        scale *= 10;
    }
    // numerator < 10^18 and unit < 2^51, so the product fits easily in a u128.
    value = value.checked_add(numerator * unit / scale)?;
    Some(value)
}

/// `value / unit` as a decimal with up to `width` fraction digits, trailing zeros dropped.
fn decimal(value: u64, unit: u64, width: usize) -> String {
    let (whole, rem) = (value / unit, value % unit);
    if rem == 0 {
        return whole.to_string();
    }
    let fraction = format!("{rem:0width$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NS: u64 = 1;
    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    #[test]
    fn durations_parse_like_go() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("+0", 0),
            ("0s", 0),
            ("1m30s", 90 * S),
            ("1h", 3_600 * S),
            ("500ms", 500 * MS),
            ("1.5s", 1_500 * MS),
            (".5s", 500 * MS),
            ("5.s", 5 * S),
            ("10us", 10 * US),
            ("10µs", 10 * US),
            ("10μs", 10 * US),
            ("100ns", 100 * NS),
            ("1h30m", 5_400 * S),
            ("1h1m1s1ms1us1ns", 3_661 * S + MS + US + NS),
            ("+2s", 2 * S),
            ("1.000000001s", S + 1),
            ("0.1234567890123456789999s", 123_456_789),
            ("2562047h47m16.854775807s", i64::MAX as u64),
            ("90s", 90 * S),
        ];
        for (input, nanos) in cases {
            assert_eq!(
                parse_duration(input),
                Ok(Duration::from_nanos(*nanos)),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn bad_durations_say_what_is_wrong_and_what_fits() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("1x", r#"unknown unit "x""#),
            ("30", "missing unit"),
            ("1h30", "missing unit"),
            ("-1s", "negative"),
            ("-0", "negative"),
            ("s", "expected a number"),
            (".s", "expected a number"),
            ("1.2.3s", "missing unit"),
            ("1 s", r#"unknown unit " s""#),
            ("1S", r#"unknown unit "S""#),
            ("1d", r#"unknown unit "d""#),
            ("2562047h47m16.854775808s", "too large"),
            ("99999999999999999999999999999999999999999h", "too large"),
            ("3000000h", "too large"),
        ];
        for (input, why) in cases {
            let err = parse_duration(input).expect_err(input);
            assert!(err.contains(why), "{input:?}: {err}");
            assert!(
                err.starts_with(&format!("invalid duration {input:?}: ")),
                "{err}"
            );
            assert!(err.ends_with("e.g. 30s, 1m30s, 500ms"), "{err}");
        }
    }

    #[test]
    fn unknown_duration_unit_message() {
        assert_eq!(
            parse_duration("1x").unwrap_err(),
            r#"invalid duration "1x": unknown unit "x"; use a number with a unit (ns, us, ms, s, m, h), e.g. 30s, 1m30s, 500ms"#
        );
    }

    #[test]
    fn durations_format_compactly() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (10 * US, "10µs"),
            (1_500, "1.5µs"),
            (500 * MS, "500ms"),
            (1_500 * US, "1.5ms"),
            (S, "1s"),
            (1_500 * MS, "1.5s"),
            (90 * S, "1m30s"),
            (60 * S, "1m"),
            (3_600 * S, "1h"),
            (3_601 * S, "1h1s"),
            (3_660 * S, "1h1m"),
            (S + 1, "1.000000001s"),
            (i64::MAX as u64, "2562047h47m16.854775807s"),
        ];
        for (nanos, text) in cases {
            assert_eq!(format_duration(Duration::from_nanos(*nanos)), *text);
        }
        assert_eq!(
            format_duration(Duration::MAX),
            "5124095576030431h15.999999999s"
        );
    }

    #[test]
    fn sizes_parse_like_go_units_ram_in_bytes() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("100", 100),
            ("100b", 100),
            ("100B", 100),
            ("512k", 512 << 10),
            ("512kb", 512 << 10),
            ("512KiB", 512 << 10),
            ("64m", 64 << 20),
            ("64M", 64 << 20),
            ("64mb", 64 << 20),
            ("1gb", 1 << 30),
            ("1GB", 1 << 30),
            ("1g", 1 << 30),
            ("1gi", 1 << 30),
            ("1.5g", 3 << 29),
            ("1.1k", 1126),
            ("2 GiB", 2 << 30),
            ("1 k", 1 << 10),
            ("1t", 1 << 40),
            ("1tb", 1 << 40),
            ("1p", 1 << 50),
            ("1pb", 1 << 50),
            ("0.5b", 0),
            ("8191p", 8191 << 50),
            ("9223372036854775807", i64::MAX as u64),
        ];
        for (input, bytes) in cases {
            assert_eq!(parse_size(input), Ok(*bytes), "input {input:?}");
        }
    }

    #[test]
    fn bad_sizes_say_what_is_wrong_and_what_fits() {
        let cases: &[(&str, &str)] = &[
            ("", "expected a number"),
            ("m", "expected a number"),
            ("-1m", "negative"),
            (".5g", "expected a number"),
            ("1.g", "digits after the decimal point"),
            ("1.2.3", r#"unknown unit ".3""#),
            ("64x", r#"unknown unit "x""#),
            ("64mm", r#"unknown unit "mm""#),
            ("1i", r#"unknown unit "i""#),
            ("1  m", r#"unknown unit " m""#),
            ("1e3", r#"unknown unit "e3""#),
            ("1 µ", r#"unknown unit "µ""#),
            ("8192p", "too large"),
            ("9223372036854775808", "too large"),
            ("99999999999999999999999999999999999999999999", "too large"),
        ];
        for (input, why) in cases {
            let err = parse_size(input).expect_err(input);
            assert!(err.contains(why), "{input:?}: {err}");
            assert!(
                err.starts_with(&format!("invalid size {input:?}: ")),
                "{err}"
            );
            assert!(err.ends_with("e.g. 512k, 64m, 1.5g"), "{err}");
        }
    }

    proptest! {
        #[test]
        fn parse_duration_never_panics(s in "\\PC*") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn parse_duration_never_panics_on_near_misses(s in "[+-]?[0-9.]{0,25}(ns|us|µs|ms|s|m|h|x|)[0-9.]{0,5}[a-zµ]{0,3}") {
            if let Err(e) = parse_duration(&s) {
                prop_assert!(!e.contains('\n'));
            }
        }

        #[test]
        fn parse_size_never_panics(s in "\\PC*") {
            let _ = parse_size(&s);
        }

        #[test]
        fn parse_size_never_panics_on_near_misses(s in "-?[0-9.]{0,25} ?[kmgtpKMGTPµ]?[iI]?[bB]?") {
            if let Err(e) = parse_size(&s) {
                prop_assert!(!e.contains('\n'));
            }
        }

        #[test]
        fn formatted_durations_read_back(nanos in 0..=i64::MAX as u64) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
    }
}
