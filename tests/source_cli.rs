//! The sources on the command line, without Docker: `berth validate --git` on valid and
//! invalid commits, branches, tags and subdirectories; usage errors of `run` and `apply`.

mod support {
    pub mod gitrepo;
}

use std::process::{Command, Output};

use support::gitrepo::{Remote, git};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env(
            "BERTH_DATA_DIR",
            std::env::temp_dir().join("berth-source-cli-unused"),
        )
        .output()
        .expect("run berth")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn validate_git_checks_the_commit_the_ref_names() {
    let remote = Remote::new();
    let good = remote.commit(
        "good",
        &[(
            "stacks/app/compose.yaml",
            "services:\n  web:\n    image: busybox:1\n",
        )],
    );
    git(&remote.dir, &["tag", "v1"]);
    remote.commit(
        "typo",
        &[(
            "stacks/app/compose.yaml",
            "services:\n  web:\n    image: busybox:1\n    depends_on: [databse]\n",
        )],
    );
    let url = remote.url();

    let o = berth(&["validate", "--git", &url, "--ref", "v1", "--path", "stacks"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(
        err.contains(&format!("commit {} by Test Author", &good[..12])),
        "{err}"
    );
    assert!(out.contains("app"), "{out}");

    let o = berth(&["validate", "--git", &url, "--path", "stacks"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(
        err.contains("app/compose.yaml:4:"),
        "positioned diagnostics relative to the repository's desired-state root:\n{err}"
    );

    let o = berth(&["validate", "--git", &url, "--ref", "nope"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("nope not found on the remote"), "{err}");
}

#[test]
fn usage_errors() {
    // run needs exactly one source.
    assert_eq!(berth(&["run"]).status.code(), Some(2));
    assert_eq!(
        berth(&["run", "--dir", "/tmp", "--git", "file:///x"])
            .status
            .code(),
        Some(2)
    );
    // Git-only options need --git.
    assert_eq!(
        berth(&["run", "--dir", "/tmp", "--ref", "main"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        berth(&["validate", "/nonexistent", "--git", "file:///x"])
            .status
            .code(),
        Some(2)
    );
    // apply does not take a repository.
    let o = berth(&["apply", "--git", "file:///nonexistent"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("berth run --git"), "{}", text(&o).1);
}

/// A stand-in for `ssh` (first on PATH): records its arguments, then runs the remote command
/// locally (`git-upload-pack '<path>'`), as sshd would on the far side.
fn fake_ssh(dir: &std::path::Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("ssh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"$@\" >> \"$FAKE_SSH_LOG\"\nfor last; do :; done\nexec sh -c \"$last\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn an_ssh_deploy_key_is_handed_to_ssh() {
    let remote = Remote::new();
    remote.commit_image("v1", "busybox:1");
    let tmp = tempfile::tempdir().unwrap();
    let bin = fake_ssh(tmp.path());
    let key = tmp.path().join("deploy key");
    std::fs::write(&key, "not a real key").unwrap();
    let log = tmp.path().join("ssh.log");
    let url = format!("ssh://git.example.invalid{}", remote.dir.display());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["validate", "--git", &url, "--git-ssh-key"])
        .arg(&key)
        .env("PATH", path)
        .env("FAKE_SSH_LOG", &log)
        .env_remove("GIT_SSH_COMMAND")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.contains(&format!(
            "-i {} -o IdentitiesOnly=yes -o BatchMode=yes",
            key.display()
        )),
        "{calls}"
    );
    assert!(calls.contains("git.example.invalid"), "{calls}");
}

/// A dumb-HTTP git server on 127.0.0.1 that wants `Authorization: Basic <want>`: answers 401
/// without it, else serves the bare repository's files. Returns its port and the
/// Authorization headers it saw.
fn http_git_server(
    repo: std::path::PathBuf,
    want: String,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(200) {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut auth = None;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.strip_prefix("Authorization: ") {
                    auth = Some(v.trim().to_string());
                }
            }
            if let Some(a) = &auth {
                log.lock().unwrap().push(a.clone());
            }
            let file = repo.join(
                path.split('?')
                    .next()
                    .unwrap()
                    .trim_start_matches("/repo.git/"),
            );
            let reply = if auth.as_deref() != Some(format!("Basic {want}").as_str()) {
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".as_bytes().to_vec()
            } else if let Ok(body) = std::fs::read(&file)
                .map_err(|_| ())
                .and_then(|b| if file.is_file() { Ok(b) } else { Err(()) })
            {
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend(body);
                r
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .as_bytes()
                    .to_vec()
            };
            let _ = conn.write_all(&reply);
        }
    });
    (port, seen)
}

#[test]
fn an_https_token_is_sent_as_basic_auth_and_never_printed() {
    let remote = Remote::new();
    remote.commit_image("v1", "busybox:1");
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("repo.git");
    git(
        tmp.path(),
        &[
            "clone",
            "-q",
            "--bare",
            remote.dir.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&bare, &["update-server-info"]);
    let token = "tok-3f9a7c21-never-print-me";
    // base64("x-access-token:tok-3f9a7c21-never-print-me")
    let want = "eC1hY2Nlc3MtdG9rZW46dG9rLTNmOWE3YzIxLW5ldmVyLXByaW50LW1l".to_string();
    let (port, seen) = http_git_server(bare, want.clone());
    let url = format!("http://127.0.0.1:{port}/repo.git");
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();

    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["validate", "--git", &url, "--git-token-file"])
        .arg(&token_file)
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(!out.contains(token) && !err.contains(token));
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .any(|a| *a == format!("Basic {want}")),
        "{:?}",
        seen.lock().unwrap()
    );

    // From the environment too; and a wrong token fails without printing it.
    let o = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["validate", "--git", &url])
        .env("BERTH_GIT_TOKEN", "wrong-token-also-secret")
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(err.contains("failed to check out"), "{err}");
    assert!(!err.contains("wrong-token-also-secret"), "{err}");
}
