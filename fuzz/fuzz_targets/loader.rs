//! Fuzzes the whole loader pipeline on one in-memory Compose document (`load_inline`).
//!
//! Invariants, beyond "never panics":
//! - a returned state means no error diagnostic was recorded;
//! - every diagnostic points into the document: its display starts with `compose.yaml`
//!   (inline loads have no other file to blame);
//! - an inline load lists at most one project, and lists it whenever a state is returned.

#![no_main]

use std::collections::BTreeMap;

use berth::desired::{LoadOptions, Severity, load_inline};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // A few set variables (one empty) so interpolation takes its set, unset and empty paths.
    let env: BTreeMap<String, String> = [
        ("TAG", "1.2.3"),
        ("PORT", "8080"),
        ("EMPTY", ""),
        ("DB_PASSWORD", "s3cr$t"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let opts = LoadOptions { env, profiles: vec!["debug".to_owned()], ..Default::default() };
    let loaded = load_inline(text, &opts);

    for d in loaded.diagnostics.iter() {
        let shown = d.to_string();
        assert!(shown.starts_with("compose.yaml"), "diagnostic not located in the document: {shown}");
    }
    if loaded.state.is_some() {
        let errors: Vec<String> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| d.to_string())
            .collect();
        assert!(errors.is_empty(), "state returned despite errors: {errors:#?}");
        assert_eq!(loaded.projects.len(), 1, "state returned but projects = {:?}", loaded.projects);
    }
    assert!(loaded.projects.len() <= 1, "inline load listed {:?}", loaded.projects);
});
