//! Image references: `nginx`, `nginx:1.27`, `ghcr.io/org/app:v2`, `app@sha256:<64 hex>`.
//!
//! A pure function from text to an [`ImageRef`], or to a one-line message that says what is
//! wrong and what a valid value looks like; the converter adds the `file:line:col` position.
//! The grammar is github.com/distribution/reference (what Docker uses): the first `/`
//! component is a registry domain when it is `localhost` or contains `.`, `:` or an
//! uppercase letter, as in `ParseNormalizedNamed`. Names are not normalised: `nginx` stays
//! `nginx`, not `docker.io/library/nginx:latest`.

use std::fmt;

/// What a valid reference looks like, for messages.
const IMAGE_HINT: &str = "use e.g. nginx:1.27, ghcr.io/org/app:v2 or app@sha256:<64 hex digits>";

/// Longest repository path (`org/app`), as in distribution/reference.
pub const MAX_PATH_LEN: usize = 255;

/// Longest tag.
pub const MAX_TAG_LEN: usize = 128;

/// An image reference, split into its parts as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry host with optional port (`ghcr.io`, `localhost:5000`, `[::1]:5000`);
    /// `None` means Docker Hub.
    pub domain: Option<String>,
    /// Repository path (`nginx`, `org/app`), lowercase.
    pub path: String,
    /// Tag (`1.27`, `latest`).
    pub tag: Option<String>,
    /// Content digest (`sha256:...`).
    pub digest: Option<String>,
}

impl ImageRef {
    /// True when the reference floats: no digest, and no tag or the tag `latest`.
    pub fn is_latest_or_untagged(&self) -> bool {
        self.digest.is_none() && matches!(self.tag.as_deref(), None | Some("latest"))
    }
}

impl fmt::Display for ImageRef {
    /// `[domain/]path[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(domain) = &self.domain {
            write!(f, "{domain}/")?;
        }
        f.write_str(&self.path)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Parses an image reference: `[DOMAIN/]PATH[:TAG][@DIGEST]`.
///
/// `PATH` is `/`-separated components of lowercase letters and digits joined by `.`, `_`,
/// `__` or runs of `-`, at most 255 characters; `TAG` is `[A-Za-z0-9_][A-Za-z0-9_.-]*` up to
/// 128 characters; `DIGEST` is `sha256:` with 64 lowercase hex digits (or `sha384:` 96,
/// `sha512:` 128).
pub fn parse_image_ref(s: &str) -> Result<ImageRef, String> {
    let fail = |why: String| format!("invalid image reference {s:?}: {why}; {IMAGE_HINT}");
    if s.is_empty() {
        return Err(fail("empty".to_owned()));
    }
    if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(fail(
            "a 64-character hex image id is not a repository name".to_owned(),
        ));
    }
    let (name_tag, digest) = match s.split_once('@') {
        Some((name_tag, digest)) => (name_tag, Some(check_digest(digest).map_err(fail)?)),
        None => (s, None),
    };
    let (domain, remainder) = match name_tag.split_once('/') {
        Some((first, rest)) if is_domain_like(first) => {
            check_domain(first).map_err(fail)?;
            (Some(first), rest)
        }
        _ => (None, name_tag),
    };
    let (path, tag) = match remainder.split_once(':') {
        Some((path, tag)) => (path, Some(tag)),
        None => (remainder, None),
    };
    if path.is_empty() {
        return Err(fail("the repository name is empty".to_owned()));
    }
    let lower = path.to_lowercase();
    if lower != path && check_path(&lower).is_ok() {
        return Err(fail(format!(
            "repository name must be lowercase ({path:?}, not {lower:?})"
        )));
    }
    check_path(path).map_err(fail)?;
    if let Some(tag) = tag {
        check_tag(tag).map_err(fail)?;
    }
    Ok(ImageRef {
        domain: domain.map(str::to_owned),
        path: path.to_owned(),
        tag: tag.map(str::to_owned),
        digest: digest.map(str::to_owned),
    })
}

/// Whether the first `/` component names a registry (`splitDockerDomain`).
fn is_domain_like(first: &str) -> bool {
    first == "localhost" || first.contains(['.', ':']) || first.chars().any(char::is_uppercase)
}

/// `host[:port]`, host a DNS-like name, dotted IPv4 or bracketed IPv6.
fn check_domain(domain: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "registry {domain:?} is not a host name or IP address with an optional port, \
             e.g. registry.example.com:5000"
        )
    };
    let (host_ok, rest) = if let Some(bracketed) = domain.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((inside, rest)) => (
                !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
                rest,
            ),
            None => (false, ""),
        }
    } else {
        let (host, rest) = domain.split_at(domain.find(':').unwrap_or(domain.len()));
        (host.split('.').all(is_domain_component), rest)
    };
    let port_ok = match rest.strip_prefix(':') {
        Some(port) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => rest.is_empty(),
    };
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        }
        _ => false,
    }
}

/// Path components: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, joined by `/`.
fn check_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_PATH_LEN {
        return Err(format!(
            "repository name is {} characters long, more than {MAX_PATH_LEN}",
            path.len()
        ));
    }
    for component in path.split('/') {
        if !is_path_component(component) {
            return Err(format!(
                "{component:?} is not a valid repository name component: use lowercase \
                 letters and digits, separated by '.', '_', '__' or dashes"
            ));
        }
    }
    Ok(())
}

fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !b.first().is_some_and(alnum) || !b.last().is_some_and(alnum) {
        return false;
    }
    // Every run of non-alphanumerics must be one separator.
    b.split(alnum)
        .filter(|run| !run.is_empty())
        .all(|run| matches!(run, b"." | b"_" | b"__") || run.iter().all(|x| *x == b'-'))
}

/// `[\w][\w.-]{0,127}`, `\w` being ASCII `[A-Za-z0-9_]`.
fn check_tag(tag: &str) -> Result<(), String> {
    let word = |x: &u8| x.is_ascii_alphanumeric() || *x == b'_';
    let b = tag.as_bytes();
    let ok = b.first().is_some_and(word)
        && b.len() <= MAX_TAG_LEN
        && b.iter().all(|x| word(x) || matches!(x, b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} is not valid: use up to {MAX_TAG_LEN} letters, digits, '_', '.' and \
             '-', not starting with '.' or '-'"
        ))
    }
}

/// `algorithm:hex` with a registered algorithm and its exact hex length, lowercase.
fn check_digest(digest: &str) -> Result<&str, String> {
    let bad = |why: &str| {
        format!("digest {digest:?} {why}: use sha256: followed by 64 lowercase hex digits")
    };
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(bad("has no algorithm"));
    };
    let hex_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(bad(&format!("uses unsupported algorithm {algorithm:?}"))),
    };
    if hex.len() != hex_len || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad(&format!(
            "needs exactly {hex_len} lowercase hex digits after {algorithm}:"
        )));
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHA: &str = "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    fn image(
        domain: Option<&str>,
        path: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> ImageRef {
        ImageRef {
            domain: domain.map(str::to_owned),
            path: path.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        }
    }

    #[test]
    fn references_split_like_docker() {
        let with_digest = format!("busybox@{SHA}");
        let tag_and_digest = format!("ghcr.io/org/app:v2@{SHA}");
        let cases = [
            ("nginx", image(None, "nginx", None, None)),
            ("nginx:1.27", image(None, "nginx", Some("1.27"), None)),
            ("nginx:latest", image(None, "nginx", Some("latest"), None)),
            ("library/nginx", image(None, "library/nginx", None, None)),
            ("org/app:v2", image(None, "org/app", Some("v2"), None)),
            (
                "ghcr.io/org/app:v2",
                image(Some("ghcr.io"), "org/app", Some("v2"), None),
            ),
            (
                "docker.io/library/redis",
                image(Some("docker.io"), "library/redis", None, None),
            ),
            ("localhost/app", image(Some("localhost"), "app", None, None)),
            (
                "localhost:5000/app:1",
                image(Some("localhost:5000"), "app", Some("1"), None),
            ),
            (
                "127.0.0.1:5000/a/b/c",
                image(Some("127.0.0.1:5000"), "a/b/c", None, None),
            ),
            (
                "[::1]:5000/app",
                image(Some("[::1]:5000"), "app", None, None),
            ),
            ("[fe80::1]/app", image(Some("[fe80::1]"), "app", None, None)),
            (
                "Registry.Example.COM/app",
                image(Some("Registry.Example.COM"), "app", None, None),
            ),
            ("MyHost/app", image(Some("MyHost"), "app", None, None)),
            (
                "localhost:5000",
                image(None, "localhost", Some("5000"), None),
            ),
            (
                "a__b_c-d--e/f.g",
                image(None, "a__b_c-d--e/f.g", None, None),
            ),
            ("app:V_1.0-rc", image(None, "app", Some("V_1.0-rc"), None)),
            ("app:_", image(None, "app", Some("_"), None)),
            (
                with_digest.as_str(),
                image(None, "busybox", None, Some(SHA)),
            ),
            (
                tag_and_digest.as_str(),
                image(Some("ghcr.io"), "org/app", Some("v2"), Some(SHA)),
            ),
        ];
        for (input, expected) in cases {
            let parsed = parse_image_ref(input);
            assert_eq!(parsed, Ok(expected), "input {input:?}");
            assert_eq!(parsed.unwrap().to_string(), input);
        }
        let sha512 = format!("app@sha512:{}", "ab".repeat(64));
        assert!(parse_image_ref(&sha512).is_ok());
        let long_path = format!("{}:1", "a".repeat(MAX_PATH_LEN));
        assert!(parse_image_ref(&long_path).is_ok());
        let long_tag = format!("a:{}", "t".repeat(MAX_TAG_LEN));
        assert!(parse_image_ref(&long_tag).is_ok());
    }

    #[test]
    fn latest_or_untagged_floats() {
        let floating = |s: &str| parse_image_ref(s).unwrap().is_latest_or_untagged();
        assert!(floating("nginx"));
        assert!(floating("nginx:latest"));
        assert!(floating("ghcr.io/org/app"));
        assert!(!floating("nginx:1.27"));
        assert!(!floating("nginx:Latest"));
        assert!(!floating(&format!("nginx@{SHA}")));
        assert!(!floating(&format!("nginx:latest@{SHA}")));
    }

    #[test]
    fn uppercase_repository_names_are_refused() {
        assert_eq!(
            parse_image_ref("Nginx:1.27").unwrap_err(),
            "invalid image reference \"Nginx:1.27\": repository name must be lowercase \
             (\"Nginx\", not \"nginx\"); use e.g. nginx:1.27, ghcr.io/org/app:v2 or \
             app@sha256:<64 hex digits>"
        );
        let err = parse_image_ref("ghcr.io/Org/App").unwrap_err();
        assert!(err.contains("repository name must be lowercase"), "{err}");
    }

    #[test]
    fn bad_references_say_what_is_wrong_and_what_fits() {
        let long_path = "a".repeat(MAX_PATH_LEN + 1);
        let long_tag = format!("a:{}", "t".repeat(MAX_TAG_LEN + 1));
        let hex_id = "a".repeat(64);
        let short_sha = format!("app@sha256:{}", "a".repeat(63));
        let upper_sha = format!("app@sha256:{}", "A".repeat(64));
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            (
                &hex_id,
                "a 64-character hex image id is not a repository name",
            ),
            ("app:", r#"tag "" is not valid"#),
            ("app:-x", r#"tag "-x" is not valid"#),
            ("app:.x", r#"tag ".x" is not valid"#),
            ("app:a:b", r#"tag "a:b" is not valid"#),
            ("app:a/b", r#"registry "app:a" is not a host name"#),
            ("Ä", r#""Ä" is not a valid repository name component"#),
            ("app:tåg", r#"tag "tåg" is not valid"#),
            (&long_tag, "tag"),
            (":tag", "the repository name is empty"),
            ("/app", r#""" is not a valid repository name component"#),
            ("app/", r#""" is not a valid repository name component"#),
            ("a//b", r#""" is not a valid repository name component"#),
            ("-app", r#""-app" is not a valid repository name component"#),
            ("app-", r#""app-" is not a valid repository name component"#),
            ("a..b", r#""a..b" is not a valid"#),
            ("a___b", r#""a___b" is not a valid"#),
            ("a._b", r#""a._b" is not a valid"#),
            ("my app", r#""my app" is not a valid"#),
            ("ünï", r#""ünï" is not a valid"#),
            (
                &long_path,
                "repository name is 256 characters long, more than 255",
            ),
            ("app@", r#"digest "" has no algorithm"#),
            ("app@sha256", r#"digest "sha256" has no algorithm"#),
            ("app@md5:abcd", r#"uses unsupported algorithm "md5""#),
            (
                &short_sha,
                "needs exactly 64 lowercase hex digits after sha256:",
            ),
            (&upper_sha, "needs exactly 64 lowercase hex digits"),
            ("app@sha256:x@y", "needs exactly 64"),
            (
                "exa_mple.com/app",
                r#"registry "exa_mple.com" is not a host name"#,
            ),
            ("-bad.com/app", r#"registry "-bad.com""#),
            ("a..com/app", r#"registry "a..com""#),
            ("host:/app", r#"registry "host:""#),
            ("host:50a0/app", r#"registry "host:50a0""#),
            ("host:1:2/app", r#"registry "host:1:2""#),
            ("[::1/app", r#"registry "[::1""#),
            ("[]/app", r#""[]" is not a valid repository name component"#),
            ("[::1]x/app", r#"registry "[::1]x""#),
            ("[::1]:/app", r#"registry "[::1]:""#),
            ("[zz:1]/app", r#"registry "[zz:1]""#),
        ];
        for (input, why) in cases {
            let err = parse_image_ref(input).expect_err(input);
            assert!(err.contains(why), "{input:?}: {err}");
            assert!(
                err.starts_with(&format!("invalid image reference {input:?}: ")),
                "{err}"
            );
            assert!(err.ends_with(IMAGE_HINT), "{err}");
        }
    }

    proptest! {
        #[test]
        fn parse_image_ref_never_panics(s in "\\PC*") {
            let _ = parse_image_ref(&s);
        }

        #[test]
        fn parsed_references_print_back(s in "([a-zA-Z0-9.:\\[\\]-]{1,12}/)?[a-z0-9._-]{1,10}(/[a-z0-9_-]{1,5})?(:[a-zA-Z0-9_.-]{0,6})?(@sha256:[0-9a-f]{64})?") {
            if let Ok(image) = parse_image_ref(&s) {
                prop_assert_eq!(image.to_string(), s);
            }
        }
    }
}
