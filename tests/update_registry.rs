//! The registry client against a scripted registry on 127.0.0.1 (plain HTTP, no engine):
//! the bearer-token flow (401 with `WWW-Authenticate: Bearer realm=…`, a token fetched with
//! the config file's credentials, the request repeated), tag-list pagination through `Link`,
//! and a multi-arch index resolved to this host's platform and its image's `created` time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use berth::engine::auth::Auth;
use berth::update::registry::{Client, Repository};

/// One request as the server saw it: request line and headers (lower-case names).
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    headers: BTreeMap<String, String>,
}

/// Serves `answer(request) -> (status, headers, body)` on a port of the test's range until
/// the test ends; returns the port and every request seen.
fn serve(
    answer: impl Fn(&Seen, u16) -> (u16, Vec<(String, String)>, String) + Send + 'static,
) -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = (41560..41590)
        .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
        .expect("a free port in 41560-41589");
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(100) {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let mut headers = BTreeMap::new();
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let req = Seen {
                line: line.trim_end().to_string(),
                headers,
            };
            log.lock().unwrap().push(req.clone());
            let (status, extra, body) = answer(&req, port);
            let mut head = format!(
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in extra {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = s.write_all(head.as_bytes());
            if !req.line.starts_with("HEAD ") {
                let _ = s.write_all(body.as_bytes());
            }
            let _ = s.flush();
            let mut rest = Vec::new();
            let _ = r.read_to_end(&mut rest);
        }
    });
    (port, seen)
}

fn h(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn auth_dir(port: u16, user: &str, password: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        dir.path().join("config.json"),
        format!(r#"{{"auths": {{"127.0.0.1:{port}": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn a_bearer_token_is_fetched_with_the_credentials_and_pages_are_followed() {
    let (port, seen) = serve(|req, port| {
        let bearer = req.headers.get("authorization").map(String::as_str) == Some("Bearer T1");
        if req.line.starts_with("GET /token?") {
            return (200, vec![], r#"{"token": "T1", "expires_in": 300}"#.into());
        }
        if !bearer {
            let challenge = format!(
                r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:h19u/app:pull""#
            );
            return (401, vec![h("WWW-Authenticate", &challenge)], String::new());
        }
        if req.line.contains("last=1.1.0") {
            (
                200,
                vec![],
                r#"{"name":"h19u/app","tags":["2.0.0"]}"#.into(),
            )
        } else {
            (
                200,
                vec![h(
                    "Link",
                    r#"</v2/h19u/app/tags/list?last=1.1.0&n=1000>; rel="next""#,
                )],
                r#"{"name":"h19u/app","tags":["1.0.0","1.1.0"]}"#.into(),
            )
        }
    });
    let dir = auth_dir(port, "h19uuser", "s3cret");
    let client = Client::new(Some(Auth::new(dir.path()))).with_certs_dir(dir.path());
    let repo = Repository {
        registry: format!("127.0.0.1:{port}"),
        name: "h19u/app".into(),
    };
    let tags = client.tags(&repo).await.unwrap();
    assert_eq!(tags, ["1.0.0", "1.1.0", "2.0.0"]);
    let seen = seen.lock().unwrap().clone();
    let lines: Vec<&str> = seen.iter().map(|s| s.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "GET /v2/h19u/app/tags/list?n=1000 HTTP/1.1",
            "GET /token?service=fake&scope=repository%3Ah19u%2Fapp%3Apull HTTP/1.1",
            "GET /v2/h19u/app/tags/list?n=1000 HTTP/1.1",
            "GET /v2/h19u/app/tags/list?last=1.1.0&n=1000 HTTP/1.1",
        ]
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("h19uuser:s3cret")
    );
    assert_eq!(seen[1].headers.get("authorization"), Some(&basic));
    assert_eq!(client.requests(), 4);
    assert_eq!(client.tag_list_requests(), 2);
}

#[tokio::test]
async fn a_refusal_names_the_registry_and_never_the_password() {
    let (port, _) = serve(|_, _| {
        (
            401,
            vec![h("WWW-Authenticate", r#"Basic realm="h19u""#)],
            String::new(),
        )
    });
    let dir = auth_dir(port, "h19uuser", "wrong-s3cret");
    let client = Client::new(Some(Auth::new(dir.path()))).with_certs_dir(dir.path());
    let repo = Repository {
        registry: format!("127.0.0.1:{port}"),
        name: "h19u/app".into(),
    };
    let err = berth::errors::chain(&client.tags(&repo).await.unwrap_err());
    assert!(
        err.starts_with(&format!(
            "registry 127.0.0.1:{port} refused the tag list of h19u/app (401); berth sent"
        )),
        "{err}"
    );
    assert!(!err.contains("wrong-s3cret"), "{err}");
}

#[tokio::test]
async fn a_multi_arch_index_resolves_to_this_platform_and_its_creation_time() {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
    .to_string();
    let served_arch = arch.clone();
    let (port, _) = serve(move |req, _| {
        let arch = &served_arch;
        let path = req.line.split(' ').nth(1).unwrap_or_default().to_string();
        match path.as_str() {
            "/v2/h19u/app/manifests/1.1.0" => (
                200,
                vec![
                    h("Docker-Content-Digest", "sha256:index"),
                    h("Content-Type", "application/vnd.oci.image.index.v1+json"),
                ],
                format!(
                    r#"{{"schemaVersion":2,"manifests":[
                      {{"digest":"sha256:other","platform":{{"os":"linux","architecture":"s390x"}}}},
                      {{"digest":"sha256:mine","platform":{{"os":"linux","architecture":"{arch}"}}}}]}}"#
                ),
            ),
            "/v2/h19u/app/manifests/sha256:mine" => (
                200,
                vec![],
                r#"{"schemaVersion":2,"config":{"digest":"sha256:config"}}"#.into(),
            ),
            "/v2/h19u/app/blobs/sha256:config" => (
                200,
                vec![],
                r#"{"created":"2026-01-02T03:04:05.678Z","architecture":"amd64"}"#.into(),
            ),
            _ => (404, vec![], String::new()),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(None).with_certs_dir(dir.path());
    let repo = Repository {
        registry: format!("127.0.0.1:{port}"),
        name: "h19u/app".into(),
    };
    let m = client.manifest(&repo, "1.1.0").await.unwrap();
    assert_eq!(m.digest, "sha256:index");
    assert_eq!(
        m.platforms,
        ["linux/s390x".to_string(), format!("linux/{arch}")]
    );
    // 2026-01-02T03:04:05Z
    assert_eq!(m.created, Some(1_767_323_045));
    assert_eq!(client.digest(&repo, "1.1.0").await.unwrap(), "sha256:index");
}
