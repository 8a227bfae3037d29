//! "Did you mean" suggestions for misspelt names: `depends_on names "databse", which is not
//! a service here (did you mean "database"?)`.
//!
//! Pure functions over strings; the converter and validator append the suggestion to their
//! messages and add the `file:line:col` position. Distance is Levenshtein over characters.

/// The candidate closest to `name`, when it is within `max(1, chars(name) / 3)` edits.
/// Ties go to the first candidate in order; `None` when nothing is close enough.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name_len = name.chars().count();
    let limit = (name_len / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        // The distance is at least the difference in length: skip hopeless candidates cheaply.
        if candidate.chars().count().abs_diff(name_len) > limit {
            continue;
        }
        let d = levenshtein(name, candidate);
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// ` (did you mean "x"?)` for the [`closest`] candidate, or an empty string.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|c| format!(" (did you mean {c:?}?)"))
        .unwrap_or_default()
}

/// Edits (insert, delete, substitute one character) that turn `a` into `b`.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // `row[j]` is the distance between the part of `a` seen so far and `b[..j]`.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn levenshtein_counts_single_character_edits() {
        let cases = [
            ("", "", 0),
            ("a", "", 1),
            ("", "abc", 3),
            ("kitten", "sitting", 3),
            ("databse", "database", 1),
            ("flaw", "lawn", 2),
            ("héllo", "hello", 1),
            ("same", "same", 0),
        ];
        for (a, b, d) in cases {
            assert_eq!(levenshtein(a, b), d, "{a:?} {b:?}");
            assert_eq!(levenshtein(b, a), d, "{b:?} {a:?}");
        }
    }

    #[test]
    fn closest_picks_the_nearest_within_a_third_of_the_length() {
        let services = ["web", "database", "worker", "cache"];
        let cases = [
            ("databse", Some("database")),
            ("datbase", Some("database")),
            ("wrker", Some("worker")),
            ("web", Some("web")),
            ("wbe", None),
            ("we", Some("web")),
            ("x", None),
            ("cahce", None),
            ("cach", Some("cache")),
            ("", None),
            ("dtbs", None),
        ];
        for (name, expected) in cases {
            assert_eq!(closest(name, services), expected, "{name:?}");
        }
    }

    #[test]
    fn ties_go_to_the_first_candidate() {
        assert_eq!(closest("cat", ["bat", "cot", "car"]), Some("bat"));
        assert_eq!(closest("cat", ["cot", "bat"]), Some("cot"));
        assert_eq!(closest("cat", ["bat", "cat"]), Some("cat"));
    }

    #[test]
    fn did_you_mean_is_a_ready_suffix() {
        assert_eq!(
            did_you_mean("databse", ["web", "database"]),
            " (did you mean \"database\"?)"
        );
        assert_eq!(did_you_mean("zzz", ["web", "database"]), "");
        assert_eq!(did_you_mean("web", []), "");
        let owned = ["alpha".to_owned(), "beta".to_owned()];
        assert_eq!(
            did_you_mean("alpa", owned.iter().map(String::as_str)),
            " (did you mean \"alpha\"?)"
        );
    }

    proptest! {
        #[test]
        fn closest_never_panics(name in "\\PC{0,20}", candidates in prop::collection::vec("\\PC{0,20}", 0..8)) {
            let found = closest(&name, candidates.iter().map(String::as_str));
            if let Some(c) = found {
                prop_assert!(levenshtein(&name, c) <= (name.chars().count() / 3).max(1));
            }
            let _ = did_you_mean(&name, candidates.iter().map(String::as_str));
        }

        #[test]
        fn levenshtein_is_a_metric(a in "[a-c]{0,6}", b in "[a-c]{0,6}", c in "[a-c]{0,6}") {
            prop_assert_eq!(levenshtein(&a, &b), levenshtein(&b, &a));
            prop_assert_eq!(levenshtein(&a, &a), 0);
            prop_assert!(levenshtein(&a, &c) <= levenshtein(&a, &b) + levenshtein(&b, &c));
        }
    }
}
