//! Unit tests of the git source's pure parts.

use super::command::*;
use super::*;

#[test]
fn fetch_failures_back_off_from_the_interval_to_ten_minutes() {
    let m = Duration::from_secs(60);
    assert_eq!(fetch_delay(m, 0), m);
    assert_eq!(fetch_delay(m, 1), m);
    assert_eq!(fetch_delay(m, 2), 2 * m);
    assert_eq!(fetch_delay(m, 3), 4 * m);
    assert_eq!(fetch_delay(m, 5), Duration::from_secs(600));
    assert_eq!(fetch_delay(m, 40), Duration::from_secs(600));
    let h = Duration::from_secs(3600);
    assert_eq!(fetch_delay(h, 3), h);
}

#[test]
fn base64_matches_rfc4648() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"x-access-token:abc"), "eC1hY2Nlc3MtdG9rZW46YWJj");
}

#[test]
fn paths_outside_the_repository_are_refused() {
    let opts = |p: &str| GitOptions {
        url: "/r".into(),
        reference: None,
        path: Some(p.into()),
        interval: DEFAULT_INTERVAL,
        verify_signatures: false,
        allowed_signers: None,
        auth: GitAuth::default(),
    };
    assert!(opts("stacks/prod").check().is_ok());
    assert!(opts("../etc").check().is_err());
    assert!(opts("/etc").check().is_err());
}

#[test]
fn http_credentials_leave_the_url_other_users_stay() {
    assert_eq!(
        split_credentials("https://x-access-token:p%40ss@github.com/o/r.git"),
        (
            "https://github.com/o/r.git".to_string(),
            Some(("x-access-token".into(), "p@ss".into()))
        )
    );
    assert_eq!(
        split_credentials("http://tok@h:8080/r"),
        (
            "http://h:8080/r".to_string(),
            Some(("tok".into(), String::new()))
        )
    );
    assert_eq!(
        split_credentials("https://h/r@x"),
        ("https://h/r@x".to_string(), None)
    );
    assert_eq!(
        split_credentials("ssh://git@h/r.git"),
        ("ssh://git@h/r.git".to_string(), None)
    );
    assert_eq!(split_credentials("/srv/r"), ("/srv/r".to_string(), None));
}

#[test]
fn local_paths_become_absolute_urls_stay() {
    assert_eq!(absolute_url("file:///r"), "file:///r");
    assert_eq!(absolute_url("git@host:o/r.git"), "git@host:o/r.git");
    assert!(absolute_url("repo").starts_with('/'));
    assert_eq!(shell_quote("/k'ey"), r"'/k'\''ey'");
}
