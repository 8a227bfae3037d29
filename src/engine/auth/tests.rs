//! Unit tests of registry credential lookup (config files, helpers, matching).

use super::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A config dir holding `config` as its config.json.
fn config(config: &str) -> (tempfile::TempDir, Auth) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let auth = Auth::new(dir.path()).with_search_path(dir.path().as_os_str());
    (dir, auth)
}

/// A stand-in `docker-credential-<name>` in `dir`: logs its action and stdin to
/// `<name>.log`, then runs `body` (sh).
fn helper(dir: &Path, name: &str, body: &str) {
    let path = dir.join(format!("docker-credential-{name}"));
    let log = dir.join(format!("{name}.log"));
    let script = format!(
        "#!/bin/sh\nread -r server || true\necho \"$1 $server\" >> {}\n{body}\n",
        log.display()
    );
    // Written by a child process: a file this (multi-threaded) process had open for
    // writing could leak into another test's fork and make exec fail with ETXTBSY.
    let mut child = std::process::Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(&path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), script.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
}

fn helper_log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
}

#[test]
fn registry_of_names_the_domain_and_folds_docker_hubs_names() {
    assert_eq!(registry_of("nginx"), "docker.io");
    assert_eq!(registry_of("library/nginx:1.27"), "docker.io");
    assert_eq!(registry_of("docker.io/library/nginx:1.27"), "docker.io");
    assert_eq!(registry_of("index.docker.io/org/app"), "docker.io");
    assert_eq!(registry_of("registry-1.docker.io/org/app:v1"), "docker.io");
    assert_eq!(registry_of("ghcr.io/org/app:v2"), "ghcr.io");
    assert_eq!(registry_of("127.0.0.1:5000/app:1"), "127.0.0.1:5000");
    assert_eq!(registry_of("localhost/app"), "localhost");
}

#[tokio::test]
async fn a_base64_auth_entry_gives_user_and_password() {
    let (_d, auth) = config(&format!(
        r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
        b64("bot:s3cret:with-colon")
    ));
    let l = auth.lookup("ghcr.io/org/app:1").await;
    assert_eq!(
        l.credentials,
        Some(Credentials::password("bot", "s3cret:with-colon"))
    );
    let sent = l.to_bollard().unwrap();
    assert_eq!(sent.username.as_deref(), Some("bot"));
    assert_eq!(sent.password.as_deref(), Some("s3cret:with-colon"));
    assert_eq!(sent.serveraddress.as_deref(), Some("ghcr.io"));
    assert_eq!(
        l.trail.used,
        Used::Entry {
            key: "ghcr.io".into()
        }
    );
}

#[tokio::test]
async fn username_password_and_identity_token_entries_are_read() {
    let (_d, auth) = config(
        r#"{"auths": {
            "https://registry.example.com/v2/": {"username": "u", "password": "p"},
            "tokens.example.com": {"username": "u2", "identitytoken": "tok"}
        }}"#,
    );
    let l = auth.lookup("registry.example.com/app").await;
    assert_eq!(l.credentials, Some(Credentials::password("u", "p")));
    let l = auth.lookup("tokens.example.com/app").await;
    assert_eq!(
        l.credentials,
        Some(Credentials::identity_token("u2", "tok"))
    );
    let sent = l.to_bollard().unwrap();
    assert_eq!(sent.identitytoken.as_deref(), Some("tok"));
    assert_eq!(sent.password, None);
}

#[tokio::test]
async fn docker_hub_entries_match_every_hub_name() {
    for key in [
        "https://index.docker.io/v1/",
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
    ] {
        let (_d, auth) = config(&format!(
            r#"{{"auths": {{"{key}": {{"auth": "{}"}}}}}}"#,
            b64("hubuser:hubpw")
        ));
        for reference in ["nginx:1", "docker.io/org/app", "index.docker.io/org/app"] {
            let l = auth.lookup(reference).await;
            assert_eq!(
                l.credentials,
                Some(Credentials::password("hubuser", "hubpw")),
                "{key} for {reference}"
            );
            assert_eq!(
                l.to_bollard().unwrap().serveraddress.as_deref(),
                Some(HUB_INDEX)
            );
        }
    }
}

#[tokio::test]
async fn another_registrys_entry_is_not_used() {
    let (_d, auth) = config(&format!(
        r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
        b64("a:b")
    ));
    let l = auth.lookup("quay.io/org/app").await;
    assert_eq!(l.credentials, None);
    assert_eq!(l.trail.used, Used::Nothing);
    assert!(
        l.trail
            .to_string()
            .starts_with("berth found no credentials for quay.io in "),
        "{}",
        l.trail
    );
    assert_eq!(auth.lookup("nginx").await.credentials, None);
}

#[tokio::test]
async fn a_missing_config_pulls_anonymously_and_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let auth = Auth::new(dir.path().join("nowhere"));
    let l = auth.lookup("ghcr.io/org/app").await;
    assert_eq!(l.credentials, None);
    assert_eq!(l.trail.file, FileState::Missing);
    let said = l.trail.to_string();
    assert!(
        said.contains(&format!(
            "{}",
            dir.path().join("nowhere/config.json").display()
        )),
        "{said}"
    );
    assert!(said.contains("does not exist"), "{said}");
    let sent = auth.all().await;
    assert!(sent.credentials.is_empty());
    assert!(
        sent.trail.to_string().contains("does not exist"),
        "{}",
        sent.trail
    );
}

#[tokio::test]
async fn a_broken_config_pulls_anonymously_and_says_why() {
    let (_d, auth) = config("{not json");
    let l = auth.lookup("ghcr.io/org/app").await;
    assert_eq!(l.credentials, None);
    assert!(matches!(l.trail.file, FileState::Broken(_)));
    assert!(
        l.trail.to_string().contains("which it could not read"),
        "{}",
        l.trail
    );
}

#[tokio::test]
async fn cred_helpers_run_the_named_helper_with_the_host_on_stdin() {
    let (d, auth) = config(&format!(
        r#"{{"credHelpers": {{"ghcr.io": "stand"}}, "credsStore": "store",
            "auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
        b64("file:pw")
    ));
    helper(
        d.path(),
        "stand",
        r#"echo '{"ServerURL":"ghcr.io","Username":"helper-user","Secret":"helper-pw"}'"#,
    );
    let l = auth.lookup("ghcr.io/org/app:1").await;
    assert_eq!(
        l.credentials,
        Some(Credentials::password("helper-user", "helper-pw"))
    );
    assert_eq!(helper_log(d.path(), "stand"), "get ghcr.io\n");
    assert_eq!(helper_log(d.path(), "store"), "");
    assert_eq!(
        l.trail.to_string(),
        format!(
            "berth ran docker-credential-stand (credHelpers in {}), which gave credentials",
            auth.config_path().display()
        )
    );
}

#[tokio::test]
async fn creds_store_is_asked_with_docker_hubs_index_address_and_wins_over_auths() {
    let (d, auth) = config(&format!(
        r#"{{"credsStore": "store", "auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}}}}}"#,
        b64("file:pw")
    ));
    helper(
        d.path(),
        "store",
        r#"echo '{"Username":"<token>","Secret":"refresh-token"}'"#,
    );
    let l = auth.lookup("docker.io/org/app").await;
    assert_eq!(
        l.credentials,
        Some(Credentials::identity_token("", "refresh-token"))
    );
    assert_eq!(
        helper_log(d.path(), "store"),
        "get https://index.docker.io/v1/\n"
    );
}

#[tokio::test]
async fn a_helper_without_credentials_pulls_anonymously() {
    let (d, auth) = config(r#"{"credsStore": "store"}"#);
    helper(
        d.path(),
        "store",
        "echo 'credentials not found in native keychain'; exit 1",
    );
    let l = auth.lookup("ghcr.io/org/app").await;
    assert_eq!(l.credentials, None);
    assert!(
        l.trail
            .to_string()
            .ends_with("which has no credentials for ghcr.io"),
        "{}",
        l.trail
    );
}

#[tokio::test]
async fn a_failing_or_missing_helper_is_in_the_trail() {
    let (d, auth) = config(r#"{"credHelpers": {"ghcr.io": "broken", "quay.io": "absent"}}"#);
    helper(d.path(), "broken", "echo 'keychain locked' >&2; exit 3");
    let l = auth.lookup("ghcr.io/org/app").await;
    assert_eq!(l.credentials, None);
    let said = l.trail.to_string();
    assert!(said.contains("docker-credential-broken"), "{said}");
    assert!(said.contains("keychain locked"), "{said}");
    let l = auth.lookup("quay.io/org/app").await;
    assert_eq!(l.credentials, None);
    assert!(
        l.trail
            .to_string()
            .contains("failed: failed to run docker-credential-absent"),
        "{}",
        l.trail
    );
}

#[tokio::test]
async fn all_gives_every_registrys_credentials_keyed_for_the_build_header() {
    let (d, auth) = config(&format!(
        r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}, "ghcr.io": {{}}}},
            "credHelpers": {{"ghcr.io": "stand"}}}}"#,
        b64("hub:pw")
    ));
    helper(
        d.path(),
        "stand",
        r#"echo '{"Username":"gh","Secret":"ghpw"}'"#,
    );
    let sent = auth.all().await;
    assert_eq!(
        sent.trail.to_string(),
        format!(
            "berth sent credentials for docker.io, ghcr.io from {}",
            auth.config_path().display()
        )
    );
    let all = sent.credentials;
    let mut keys: Vec<&String> = all.keys().collect();
    keys.sort();
    assert_eq!(keys, ["ghcr.io", HUB_INDEX]);
    assert_eq!(all["ghcr.io"].password.as_deref(), Some("ghpw"));
    assert_eq!(all[HUB_INDEX].username.as_deref(), Some("hub"));
}

#[tokio::test]
async fn lookups_and_build_credentials_never_debug_a_secret() {
    let (_d, auth) = config(&format!(
        r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
        b64("bot:hunter2")
    ));
    let shown = format!(
        "{:?} {:?}",
        auth.lookup("ghcr.io/org/app").await,
        auth.all().await
    );
    assert!(
        shown.contains("ghcr.io") && shown.contains("bot"),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains(&b64("bot:hunter2")), "{shown}");
}

#[test]
fn debug_never_prints_a_secret() {
    let shown = format!(
        "{:?} {:?}",
        Credentials::password("bot", "hunter2"),
        Credentials::identity_token("bot", "tok-123")
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("tok-123"),
        "{shown}"
    );
    assert!(
        shown.contains("bot") && shown.contains("<redacted>"),
        "{shown}"
    );
}

#[test]
fn denials_are_recognised_in_the_engines_words() {
    for m in [
        "unauthorized: authentication required",
        "Head \"http://127.0.0.1:5000/v2/a/manifests/1\": no basic auth credentials",
        "pull access denied for app, repository does not exist or may require 'docker login'",
        "denied: requested access to the resource is denied",
    ] {
        assert!(is_denied(m), "{m}");
    }
    assert!(!is_denied("manifest for app:1 not found: manifest unknown"));
    assert!(!is_denied("connection refused"));
    assert!(!is_denied(
        "failed to register layer: open /var/lib/docker/x: permission denied"
    ));
}
