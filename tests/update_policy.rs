//! `x-berth.update` at load: the typed policy for each accepted shape, and a positioned error
//! for every mistake (bad range, pattern, window, interval, policy, an image it cannot move).

use std::collections::BTreeMap;
use std::time::Duration;

use berth::desired::{LoadOptions, load_inline};
use berth::update::spec::{Policy, UpdateSpec, Window};
use indoc::indoc;

fn opts() -> LoadOptions {
    LoadOptions {
        env: BTreeMap::new(),
        ..LoadOptions::default()
    }
}

fn diags(yaml: &str) -> String {
    load_inline(yaml, &opts()).diagnostics.to_string()
}

fn update_of(yaml: &str) -> Option<UpdateSpec> {
    let l = load_inline(yaml, &opts());
    let state = l
        .state
        .unwrap_or_else(|| panic!("expected valid, got:\n{}", l.diagnostics));
    let project = state.projects.into_values().next().expect("one project");
    project.services["web"].berth.update.clone()
}

#[test]
fn semver_policy_with_window_and_min_age_is_read() {
    let u = update_of(indoc! {r#"
        services:
          web:
            image: app:1.4.0
            x-berth:
              update: {policy: semver, range: "^1.4", interval: 5m, window: "02:00-05:00", min_age: 1h}
    "#});
    assert_eq!(
        u,
        Some(UpdateSpec {
            policy: Policy::Semver {
                range: "^1.4".into()
            },
            interval: Duration::from_secs(300),
            window: Some(Window::parse("02:00-05:00").unwrap()),
            min_age: Some(Duration::from_secs(3600)),
        })
    );
}

#[test]
fn project_default_applies_and_digest_policy_has_the_default_interval() {
    let u = update_of(indoc! {"
        x-berth:
          update: {policy: digest}
        services:
          web:
            image: app:latest
    "});
    let u = u.expect("update from the project's x-berth");
    assert_eq!(u.policy, Policy::Digest);
    assert_eq!(u.interval, berth::update::spec::DEFAULT_INTERVAL);
}

#[test]
fn pattern_policy_with_allow_list_is_read() {
    let u = update_of(indoc! {r#"
        services:
          web:
            image: app:build-7
            x-berth:
              update:
                policy: pattern
                pattern: 'build-\d+'
                allow: [build-8, build-9]
    "#});
    assert_eq!(
        u.map(|u| u.policy),
        Some(Policy::Pattern {
            pattern: Some(r"build-\d+".into()),
            allow: vec!["build-8".into(), "build-9".into()],
        })
    );
}

#[test]
fn mistakes_are_positioned_errors() {
    let d = diags(indoc! {r#"
        services:
          a:
            image: app:1.0.0
            x-berth:
              update: {policy: semver, range: "^^1"}
          b:
            image: app:1.0.0
            x-berth:
              update: {policy: sometimes}
          c:
            image: app:1.0.0
            x-berth:
              update: {policy: pattern, pattern: "build-("}
          d:
            image: app:1.0.0
            x-berth:
              update: {policy: digest, window: "2am-5am", range: "^1"}
          e:
            image: app:1.0.0
            x-berth:
              update: {policy: semver, interval: 1s}
          f:
            image: app
            x-berth:
              update: {range: "^1"}
          g:
            image: app@sha256:0000000000000000000000000000000000000000000000000000000000000000
            x-berth:
              update: {policy: semver}
    "#});
    let lines: Vec<&str> = d.lines().collect();
    let expect = [
        "compose.yaml:5:39: error: invalid services.a.x-berth.update.range \"^^1\": unexpected character '^'",
        "compose.yaml:9:24: error: invalid services.b.x-berth.update.policy \"sometimes\": use semver, digest or pattern",
        "compose.yaml:13:42: error: invalid services.c.x-berth.update.pattern \"build-(\": error: unclosed group",
        "compose.yaml:17:40: error: services.d.x-berth.update.window: invalid window \"2am-5am\": use HH:MM-HH:MM in UTC",
        "compose.yaml:17:58: error: services.d.x-berth.update.range has no meaning with policy digest",
        "compose.yaml:21:42: error: services.e.x-berth.update.interval must be at least 10s",
        "compose.yaml:25:7: error: services.f.x-berth.update needs a policy: semver, digest or pattern",
        "compose.yaml:29:7: error: services.g.x-berth.update: the image \"app@sha256:0000000000000000000000000000000000000000000000000000000000000000\" has no tag for the update policy to move",
    ];
    for want in expect {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing {want:?} in:\n{d}"
        );
    }
}
