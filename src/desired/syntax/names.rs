//! Name rules: Compose project names (and how a directory name becomes one), Docker
//! container names and Compose service names.
//!
//! Pure functions: a normaliser, and checks that return a one-line message saying what is
//! wrong and what a valid name looks like; the converter adds the `file:line:col` position.
//! The rules are compose-go's `NormalizeProjectName` and project-name check, Docker's
//! container-name pattern and the Compose Specification's service-name pattern.

/// Turns any text (usually a directory name) into a project name the way Compose does:
/// lowercase it, drop every character outside `[a-z0-9_-]`, then drop leading `_` and `-`.
///
/// The result can be empty (`"..."`, `"Über"` gives `"ber"`); callers must check it with
/// [`check_project_name`].
pub fn normalize_project_name(s: &str) -> String {
    let kept: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
        .collect();
    kept.trim_start_matches(['_', '-']).to_owned()
}

/// Checks a project name: `^[a-z0-9][a-z0-9_-]*$`.
pub fn check_project_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if first_ok
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
    {
        return Ok(());
    }
    let normalized = normalize_project_name(s);
    let hint = if normalized.is_empty() {
        String::new()
    } else {
        format!(", e.g. {normalized:?}")
    };
    Err(format!(
        "invalid project name {s:?}: use lowercase letters, digits, '_' and '-', starting \
         with a letter or digit (^[a-z0-9][a-z0-9_-]*$){hint}"
    ))
}

/// Checks a fleet host name (hosts file, `x-berth.placement`, `--host`): a DNS label as a
/// host name is, `^[A-Za-z0-9][A-Za-z0-9.-]*$`, at most 253 characters.
pub fn check_host_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok
        && s.len() <= 253
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
    {
        return Ok(());
    }
    Err(format!(
        "invalid host name {s:?}: use letters, digits, '.' and '-', starting with a letter or \
         digit, as in a machine's host name"
    ))
}

/// Checks a container name as Docker does: `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$` (two characters
/// at least).
pub fn check_container_name(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest = chars.as_str();
    if first_ok && !rest.is_empty() && rest.chars().all(is_name_char) {
        return Ok(());
    }
    Err(format!(
        "invalid container name {s:?}: use two or more letters, digits, '_', '.' and '-', \
         starting with a letter or digit (^[a-zA-Z0-9][a-zA-Z0-9_.-]+$)"
    ))
}

/// Checks a service name as the Compose Specification does: `^[a-zA-Z0-9._-]+$`.
pub fn check_service_name(s: &str) -> Result<(), String> {
    if !s.is_empty() && s.chars().all(is_name_char) {
        return Ok(());
    }
    Err(format!(
        "invalid service name {s:?}: use letters, digits, '_', '.' and '-' \
         (^[a-zA-Z0-9._-]+$)"
    ))
}

/// `[a-zA-Z0-9_.-]`.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn project_names_normalize_like_compose() {
        let cases = [
            ("shop", "shop"),
            ("Shop", "shop"),
            ("my-app_2", "my-app_2"),
            ("My App", "myapp"),
            ("my.app", "myapp"),
            ("__web", "web"),
            ("-_-9lives", "9lives"),
            ("_", ""),
            ("...", ""),
            ("", ""),
            ("Über", "ber"),
            ("café-bar", "caf-bar"),
            ("\u{212a}elvin", "kelvin"),
            ("a_-b", "a_-b"),
            ("trailing-", "trailing-"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_project_name(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn project_names_are_lowercase_alphanumerics_dashes_underscores() {
        for ok in ["shop", "a", "0", "my-app_2", "a--", "9_"] {
            assert_eq!(check_project_name(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(
            check_project_name("My App").unwrap_err(),
            "invalid project name \"My App\": use lowercase letters, digits, '_' and '-', \
             starting with a letter or digit (^[a-z0-9][a-z0-9_-]*$), e.g. \"myapp\""
        );
        for bad in ["", "_a", "-a", "A", "a.b", "a b", "ä", "a\n"] {
            let err = check_project_name(bad).unwrap_err();
            assert!(err.contains("^[a-z0-9][a-z0-9_-]*$"), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn container_names_follow_docker() {
        for ok in ["ab", "web-1", "Web.1_x", "0a", "a.", "a-"] {
            assert_eq!(check_container_name(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "", "a", "_ab", ".ab", "-ab", "/web", "a b", "a/b", "wéb", "a:b",
        ] {
            let err = check_container_name(bad).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid container name {bad:?}: use two or more")),
                "{err}"
            );
        }
    }

    #[test]
    fn service_names_follow_the_compose_spec() {
        for ok in ["web", "a", "_a", ".a", "-", "Web.1_x"] {
            assert_eq!(check_service_name(ok), Ok(()), "{ok:?}");
        }
        for bad in ["", "a b", "a/b", "a:b", "wéb", "${X}"] {
            let err = check_service_name(bad).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid service name {bad:?}: use letters")),
                "{err}"
            );
        }
    }

    proptest! {
        #[test]
        fn normalized_names_pass_the_check_unless_empty(s in "\\PC*") {
            let name = normalize_project_name(&s);
            prop_assert!(name.is_empty() || check_project_name(&name).is_ok());
            prop_assert_eq!(normalize_project_name(&name), name.clone());
        }

        #[test]
        fn name_checks_never_panic(s in "\\PC*") {
            let _ = check_project_name(&s);
            let _ = check_container_name(&s);
            let _ = check_service_name(&s);
        }
    }
}
