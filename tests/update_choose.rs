//! Property tests of the update choice: a semver policy never proposes a pre-release, a tag
//! outside its range, a quarantined tag or a step back, and always proposes the highest tag
//! that is none of those.

use std::collections::BTreeSet;

use berth::update::choose::{Choice, choose, parse_version};
use berth::update::spec::Policy;
use proptest::prelude::*;

fn version() -> impl Strategy<Value = String> {
    (
        0u64..4,
        0u64..6,
        0u64..6,
        prop::option::of("(alpha|beta|rc)\\.[0-9]"),
    )
        .prop_map(|(a, b, c, pre)| match pre {
            Some(p) => format!("{a}.{b}.{c}-{p}"),
            None => format!("{a}.{b}.{c}"),
        })
}

fn range() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..4, 0u64..6).prop_map(|(a, b)| format!("^{a}.{b}")),
        (0u64..4, 0u64..6).prop_map(|(a, b)| format!("~{a}.{b}")),
        (0u64..4, 0u64..4).prop_map(|(a, b)| format!(">={a}.0.0, <{}.0.0", a + b + 1)),
        Just("*".to_string()),
    ]
}

proptest! {
    #[test]
    fn semver_choice_is_the_best_allowed(
        current in version(),
        tags in prop::collection::vec(prop_oneof![version(), Just("latest".to_string())], 0..20),
        quarantine_pick in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        range in range(),
    ) {
        let quarantined: BTreeSet<String> = quarantine_pick
            .iter()
            .filter(|_| !tags.is_empty())
            .map(|i| tags[i.index(tags.len())].clone())
            .collect();
        let req = semver::VersionReq::parse(&range).unwrap();
        let now = parse_version(&current).unwrap().1;
        let allowed: Vec<semver::Version> = tags
            .iter()
            .filter(|t| !quarantined.contains(*t))
            .filter_map(|t| parse_version(t).map(|(_, v)| v))
            .filter(|v| v.pre.is_empty() && req.matches(v) && *v > now)
            .collect();
        let choice = choose(&Policy::Semver { range: range.clone() }, &current, &tags, &quarantined);
        match choice {
            Choice::UpToDate => prop_assert!(allowed.is_empty(), "missed {allowed:?}"),
            Choice::Tag(t) => {
                prop_assert!(tags.contains(&t));
                prop_assert!(!quarantined.contains(&t));
                let v = parse_version(&t).unwrap().1;
                prop_assert!(v.pre.is_empty(), "pre-release {t}");
                prop_assert!(req.matches(&v), "{t} outside {range}");
                prop_assert!(v > now, "{t} is not newer than {current}");
                prop_assert_eq!(Some(&v), allowed.iter().max());
            }
        }
    }
}
