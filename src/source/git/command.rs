//! Running git: one command under a deadline, no terminal prompt, credentials only in its
//! environment (an `Authorization` header built from the URL's user info or the token),
//! and every output scrubbed of them.

use std::ffi::OsString;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{GIT_TIMEOUT, GitAuth, GitError, Output, Repo};
use crate::source::redact_text;

impl Repo {
    pub(super) fn git(&self, args: &[&str], remote: bool) -> Result<String, GitError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        self.git_os(&args, remote)
    }

    pub(super) fn git_os(&self, args: &[OsString], remote: bool) -> Result<String, GitError> {
        let out = self.run(args, remote)?;
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(GitError::Failed {
                command: subcommand(args),
                stderr: self.scrub(&one_line(out.stderr.trim())),
            })
        }
    }

    /// Runs git with a deadline; remote operations get the credentials.
    pub(super) fn run(&self, args: &[OsString], remote: bool) -> Result<Output, GitError> {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir")
            .arg(&self.git_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE");
        if remote {
            set_credentials(&mut cmd, &self.url, self.url_auth.as_ref(), &self.auth)?;
        }
        run_with_deadline(cmd, GIT_TIMEOUT, &subcommand(args))
    }

    /// Removes credentials from a message: URLs' user info, the token and the URL's password
    /// themselves.
    pub(super) fn scrub(&self, text: &str) -> String {
        scrub(text, &self.auth, self.url_auth.as_ref())
    }
}

/// A remote's URL and credentials as the git source uses them, for git commands run
/// outside the source's bare clone (the update commits of `crate::update::git`): the same
/// SSH key, token or URL user info, sent the same way (environment only), and the same
/// scrubbing of what git prints.
#[derive(Clone)]
pub struct Remote {
    url: String,
    url_auth: Option<(String, String)>,
    auth: GitAuth,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// The remote at `url` (user info in an `http(s)://` URL is taken out of it) with `auth`.
    pub fn new(url: &str, auth: GitAuth) -> Remote {
        let (url, url_auth) = split_credentials(url);
        Remote {
            url,
            url_auth,
            auth,
        }
    }

    /// The URL without credentials: what to hand to git.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Gives the git command `cmd` (a clone, fetch or push of this remote) the credentials.
    pub fn authorize(&self, cmd: &mut Command) -> Result<(), GitError> {
        set_credentials(cmd, &self.url, self.url_auth.as_ref(), &self.auth)
    }

    /// `text` without URLs' user info, the token or the URL's password.
    pub fn scrub(&self, text: &str) -> String {
        scrub(text, &self.auth, self.url_auth.as_ref())
    }
}

/// Sets a remote git command's credentials: the SSH key through `GIT_SSH_COMMAND`, HTTP basic
/// credentials as an `Authorization` header scoped to the remote's URL, in the environment
/// (not in argv, which `ps` shows, nor in a config on disk).
fn set_credentials(
    cmd: &mut Command,
    url: &str,
    url_auth: Option<&(String, String)>,
    auth: &GitAuth,
) -> Result<(), GitError> {
    if let Some(key) = &auth.ssh_key {
        cmd.env(
            "GIT_SSH_COMMAND",
            format!(
                "ssh -i {} -o IdentitiesOnly=yes -o BatchMode=yes",
                shell_quote(&key.display().to_string())
            ),
        );
    }
    if let Some(basic) = basic_credentials(auth, url_auth)? {
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env(
                "GIT_CONFIG_KEY_0",
                format!("http.{}.extraHeader", absolute_url(url)),
            )
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {}", base64(basic.as_bytes())),
            );
    }
    Ok(())
}

fn token(auth: &GitAuth) -> Result<Option<String>, GitError> {
    if let Some(f) = &auth.token_file {
        let t = std::fs::read_to_string(f).map_err(|e| GitError::Io {
            what: format!("failed to read the token file {}", f.display()),
            source: e,
        })?;
        return Ok(Some(t.trim().to_string()).filter(|t| !t.is_empty()));
    }
    Ok(auth.token.clone().filter(|t| !t.is_empty()))
}

/// `user:secret` for HTTP basic authentication: the token (with `--git-username`) when one is
/// given, else the user info of the URL.
fn basic_credentials(
    auth: &GitAuth,
    url_auth: Option<&(String, String)>,
) -> Result<Option<String>, GitError> {
    if let Some(token) = token(auth)? {
        return Ok(Some(format!("{}:{token}", auth.username)));
    }
    Ok(url_auth.map(|(user, pass)| format!("{user}:{pass}")))
}

fn scrub(text: &str, auth: &GitAuth, url_auth: Option<&(String, String)>) -> String {
    let mut s = redact_text(text);
    let token = token(auth).ok().flatten();
    let password = url_auth.map(|(_, p)| p.clone());
    for secret in [token, password].into_iter().flatten() {
        if secret.len() >= 4 {
            s = s.replace(&secret, "[redacted]");
        }
    }
    s
}

pub(super) fn subcommand(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .find(|a| !a.starts_with('-') && !a.contains('='))
        .map(|a| a.into_owned())
        .unwrap_or_default()
}

pub(super) fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Splits the user info off an `http(s)://` URL: the URL git may store, and the
/// (percent-decoded) user and password to send in memory. Other URLs keep their user (an SSH
/// login name is no secret; git ignores a password there).
pub(super) fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let Some(scheme_end) = url.find("://") else {
        return (url.to_string(), None);
    };
    let scheme = url[..scheme_end].to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return (url.to_string(), None);
    }
    let rest = &url[scheme_end + 3..];
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..host_end].rfind('@') else {
        return (url.to_string(), None);
    };
    let (user, pass) = match rest[..at].split_once(':') {
        Some((u, p)) => (u, p),
        None => (&rest[..at], ""),
    };
    let clean = format!("{}://{}", &url[..scheme_end], &rest[at + 1..]);
    (clean, Some((percent_decode(user), percent_decode(pass))))
}

/// `%XX` decoding (URL user info).
pub(super) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A local path made absolute (git resolves relative remotes against the bare repo).
pub(super) fn absolute_url(url: &str) -> String {
    let looks_remote = url.contains("://") || {
        // scp-like `host:path` (a colon before any slash)
        let colon = url.find(':');
        let slash = url.find('/');
        matches!((colon, slash), (Some(c), Some(s)) if c < s)
            || (colon.is_some() && slash.is_none())
    };
    if looks_remote {
        return url.to_string();
    }
    std::path::absolute(url)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| url.to_string())
}

pub(super) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub(super) fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Runs `cmd`, killing it at the deadline.
pub(super) fn run_with_deadline(
    mut cmd: Command,
    limit: Duration,
    what: &str,
) -> Result<Output, GitError> {
    let mut child = cmd.spawn().map_err(GitError::Spawn)?;
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = pipe(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = pipe(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let mut nap = Duration::from_millis(2);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(GitError::Timeout {
                    command: what.to_string(),
                    secs: limit.as_secs(),
                });
            }
            Ok(None) => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(GitError::Spawn(e)),
        }
    };
    Ok(Output {
        ok: status.success(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}
