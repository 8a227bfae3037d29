//! Fuzzes Compose variable interpolation on one string.
//!
//! Invariants, beyond "never panics" (and no runaway recursion on deep `${`):
//! - a string without `$` comes back unchanged, with nothing unset;
//! - escaping every `$` as `$$` makes any string come back verbatim, with nothing unset;
//! - each unset name is listed once, and is a valid variable name that is in fact unset.

#![no_main]

use berth::desired::interpolate::interpolate;
use libfuzzer_sys::fuzz_target;

fn lookup(name: &str) -> Option<String> {
    match name {
        "TAG" => Some("1.2.3".to_owned()),
        "PORT" => Some("8080".to_owned()),
        "EMPTY" => Some(String::new()),
        // A value that itself looks like a reference: values are never re-interpolated.
        "NESTED" => Some("${TAG}$$".to_owned()),
        _ => None,
    }
}

fn is_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c == b'_' || c.is_ascii_alphabetic())
        && b.all(|c| c == b'_' || c.is_ascii_alphanumeric())
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };

    if let Ok(done) = interpolate(s, &lookup) {
        for (i, name) in done.unset.iter().enumerate() {
            assert!(is_name(name), "unset name {name:?} is not a variable name (input {s:?})");
            assert!(lookup(name).is_none(), "{name:?} is set but listed as unset (input {s:?})");
            assert!(!done.unset[..i].contains(name), "{name:?} listed twice (input {s:?})");
        }
    }

    if !s.contains('$') {
        let done = interpolate(s, &lookup).expect("text without $ cannot fail");
        assert_eq!(done.text, s);
        assert!(done.unset.is_empty());
    }

    let escaped = s.replace('$', "$$");
    match interpolate(&escaped, &lookup) {
        Ok(done) => {
            assert_eq!(done.text, s, "escaped input {escaped:?} did not round-trip");
            assert!(done.unset.is_empty(), "escaped input {escaped:?} reported {:?}", done.unset);
        }
        Err(e) => panic!("escaped input {escaped:?} failed: {e}"),
    }
});
