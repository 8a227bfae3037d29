//! Registry credentials for pulls and builds, found the way the Docker CLI finds them.
//!
//! IO: reads `$DOCKER_CONFIG/config.json` (else `$HOME/.docker/config.json`; `/root/.docker`
//! for root without `HOME`, as under systemd) and runs `docker-credential-<name>` helpers.
//! `docker` asks [`Auth::lookup`] right before each pull (the file is read every time, so a
//! `docker login` after berth started counts) and [`Auth::all`] before each build, whose base
//! images may come from any registry. The order per registry host is the CLI's: a
//! `credHelpers` entry, else `credsStore`, else the `auths` entry (`auth` = base64
//! `user:password`, or `username`/`password`, or `identitytoken`). Docker Hub's names
//! (`docker.io`, `index.docker.io`, `registry-1.docker.io`, `https://index.docker.io/v1/`) are
//! one registry.
//!
//! Nothing here fails a pull: a missing or broken file, or a helper that fails, leaves the pull
//! anonymous (public images still come) and is written down in the [`Trail`], which the error
//! of a refused pull quotes so that a person sees where berth looked. Secrets never appear in
//! a `Debug`, a `Display`, a log line or an error.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use tokio::io::AsyncWriteExt;

/// How long one credential helper call may take (a keychain that prompts must not hang berth).
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

/// Docker Hub's canonical host here.
pub const DOCKER_HUB: &str = "docker.io";

/// The name the Docker CLI stores and asks helpers for Docker Hub's credentials under.
const HUB_INDEX: &str = "https://index.docker.io/v1/";

/// How much of a helper's stderr an error keeps.
const HELPER_STDERR_LIMIT: usize = 300;

/// Credentials for one registry. `Debug` shows the user name only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (empty with an identity token from a file entry).
    pub username: String,
    secret: Secret,
}

#[derive(Clone, PartialEq, Eq)]
enum Secret {
    Password(String),
    /// An OAuth refresh token the engine exchanges (`identitytoken`, a helper's `<token>`).
    IdentityToken(String),
}

impl Credentials {
    /// User name and password.
    pub fn password(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            secret: Secret::Password(password.into()),
        }
    }

    /// An identity token (with the user name it belongs to, if known).
    pub fn identity_token(username: impl Into<String>, token: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            secret: Secret::IdentityToken(token.into()),
        }
    }

    /// What bollard sends (`X-Registry-Auth`, or one entry of `X-Registry-Config`) for
    /// `registry` (a canonical host, see [`registry_of`]).
    pub fn to_bollard(&self, registry: &str) -> DockerCredentials {
        let (password, identitytoken) = match &self.secret {
            Secret::Password(p) => (Some(p.clone()), None),
            Secret::IdentityToken(t) => (None, Some(t.clone())),
        };
        DockerCredentials {
            username: (!self.username.is_empty()).then(|| self.username.clone()),
            password,
            identitytoken,
            serveraddress: Some(server_address(registry).to_owned()),
            ..DockerCredentials::default()
        }
    }
}

impl Credentials {
    /// The `Authorization` header value for HTTP basic auth (a registry's token service or a
    /// registry that wants basic auth), for the update checks' own registry requests; `None`
    /// for an identity token, which only the engine exchanges.
    pub fn basic_authorization(&self) -> Option<String> {
        match &self.secret {
            Secret::Password(p) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{}:{p}", self.username))
            )),
            Secret::IdentityToken(_) => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.secret {
            Secret::Password(_) => "password",
            Secret::IdentityToken(_) => "identity token",
        };
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field(kind, &"<redacted>")
            .finish()
    }
}

/// Where berth finds credentials: a Docker CLI config directory, and the `PATH` its helpers
/// are looked up in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    dir: PathBuf,
    search_path: Option<OsString>,
}

impl Auth {
    /// The directory the Docker CLI would use: `$DOCKER_CONFIG`, else `$HOME/.docker`, else
    /// `/root/.docker` when running as root (a systemd service has no `HOME`); `None` when
    /// there is none.
    pub fn from_env() -> Option<Self> {
        let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let dir = match nonempty("DOCKER_CONFIG") {
            Some(d) => PathBuf::from(d),
            None => match nonempty("HOME") {
                Some(home) => Path::new(&home).join(".docker"),
                // SAFETY: geteuid has no preconditions and cannot fail.
                None if unsafe { libc::geteuid() } == 0 => PathBuf::from("/root/.docker"),
                None => return None,
            },
        };
        Some(Self::new(dir))
    }

    /// Credentials from the config directory `dir` (the file `dir/config.json`); helpers are
    /// looked up in the process's `PATH`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Auth {
            dir: dir.into(),
            search_path: None,
        }
    }

    /// Looks helpers up in `path` (a `PATH` value) instead of the process's `PATH`.
    pub fn with_search_path(mut self, path: impl Into<OsString>) -> Self {
        self.search_path = Some(path.into());
        self
    }

    /// The file read: `DIR/config.json`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// The credentials for the registry `reference` (an image reference) is pulled from, and
    /// where they were looked for.
    pub async fn lookup(&self, reference: &str) -> Lookup {
        self.lookup_registry(registry_of(reference)).await
    }

    /// The credentials for `registry` (a canonical host, see [`registry_of`]).
    async fn lookup_registry(&self, registry: String) -> Lookup {
        let (file, state) = self.read();
        let mut trail = Trail {
            config: self.config_path(),
            file: state,
            registry: registry.clone(),
            used: Used::Nothing,
        };
        let credentials = match plan(&file, &registry) {
            Plan::Anonymous => None,
            Plan::Entry { key, credentials } => {
                trail.used = Used::Entry { key };
                credentials
            }
            Plan::Helper { program, why } => {
                let outcome = self.helper_get(&program, server_address(&registry)).await;
                let (credentials, result) = match outcome {
                    Ok(Some(c)) => (Some(c), HelperResult::Found),
                    Ok(None) => (None, HelperResult::NothingStored),
                    Err(e) => {
                        tracing::warn!(
                            registry = %registry,
                            helper = %program,
                            error = %e,
                            "credential helper failed; pulling without credentials"
                        );
                        (None, HelperResult::Failed(with_causes(&e)))
                    }
                };
                trail.used = Used::Helper {
                    program,
                    why,
                    result,
                };
                credentials
            }
        };
        Lookup {
            registry,
            credentials,
            trail,
        }
    }

    /// Every credential the config gives, keyed as the engine's `X-Registry-Config` wants
    /// (Docker Hub under `https://index.docker.io/v1/`, others by host), for a build whose
    /// base images may come from any of them (what `docker build` sends). A helper that fails
    /// is logged and left out.
    pub async fn all(&self) -> ForBuild {
        let (file, state) = self.read();
        let mut registries: Vec<String> = file.auths.keys().map(|k| canonical(k)).collect();
        registries.extend(file.cred_helpers.keys().map(|k| canonical(k)));
        if let Some(store) = file.creds_store.as_deref().filter(|s| !s.is_empty()) {
            match self.helper_list(&helper_program(store)).await {
                Ok(servers) => registries.extend(servers.iter().map(|s| canonical(s))),
                Err(e) => tracing::warn!(
                    helper = %helper_program(store),
                    error = %e,
                    "credential helper failed to list; building without its credentials"
                ),
            }
        }
        registries.sort();
        registries.dedup();
        let mut credentials = HashMap::new();
        let mut sent = Vec::new();
        for registry in registries {
            let lookup = self.lookup_registry(registry.clone()).await;
            if let Some(c) = &lookup.credentials {
                credentials.insert(
                    server_address(&registry).to_owned(),
                    c.to_bollard(&registry),
                );
                sent.push(registry);
            }
        }
        ForBuild {
            credentials,
            trail: BuildTrail {
                config: self.config_path(),
                file: state,
                registries: sent,
            },
        }
    }

    /// The config file, or an empty one and why there is none.
    fn read(&self) -> (ConfigFile, FileState) {
        let path = self.config_path();
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<ConfigFile>(&bytes) {
                Ok(file) => (file, FileState::Read),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot parse the Docker config file; pulling without credentials");
                    (ConfigFile::default(), FileState::Broken(e.to_string()))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (ConfigFile::default(), FileState::Missing)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the Docker config file; pulling without credentials");
                (ConfigFile::default(), FileState::Broken(e.to_string()))
            }
        }
    }

    /// `<program> get` with `server` on stdin: the stored credentials, `None` when the helper
    /// has none for it.
    async fn helper_get(
        &self,
        program: &str,
        server: &str,
    ) -> Result<Option<Credentials>, HelperError> {
        let out = self.run_helper(program, "get", server).await?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stdout);
            // The helpers' shared "not found" answer (docker-credential-helpers' ErrCredentialsNotFound).
            if said.contains("credentials not found") {
                return Ok(None);
            }
            return Err(HelperError::Exit {
                program: program.to_owned(),
                status: out.status.to_string(),
                stderr: tail(&out.stderr),
            });
        }
        let answer: HelperAnswer =
            serde_json::from_slice(&out.stdout).map_err(|source| HelperError::Answer {
                program: program.to_owned(),
                source,
            })?;
        Ok(Some(if answer.username == "<token>" {
            Credentials::identity_token("", answer.secret)
        } else {
            Credentials::password(answer.username, answer.secret)
        }))
    }

    /// `<program> list`: the server URLs it holds credentials for.
    async fn helper_list(&self, program: &str) -> Result<Vec<String>, HelperError> {
        let out = self.run_helper(program, "list", "").await?;
        if !out.status.success() {
            return Err(HelperError::Exit {
                program: program.to_owned(),
                status: out.status.to_string(),
                stderr: tail(&out.stderr),
            });
        }
        let servers: BTreeMap<String, String> =
            serde_json::from_slice(&out.stdout).map_err(|source| HelperError::Answer {
                program: program.to_owned(),
                source,
            })?;
        Ok(servers.into_keys().collect())
    }

    /// Runs `program action` with `input` on stdin, killed after [`HELPER_TIMEOUT`].
    async fn run_helper(
        &self,
        program: &str,
        action: &str,
        input: &str,
    ) -> Result<std::process::Output, HelperError> {
        let mut cmd = tokio::process::Command::new(program);
        cmd.arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Set on the child, PATH is also where the program itself is looked up.
        if let Some(path) = &self.search_path {
            cmd.env("PATH", path);
        }
        let spawn = |source| HelperError::Run {
            program: program.to_owned(),
            source,
        };
        let mut child = cmd.spawn().map_err(spawn)?;
        let run = async {
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(input.as_bytes()).await?;
            }
            child.wait_with_output().await
        };
        match tokio::time::timeout(HELPER_TIMEOUT, run).await {
            Ok(out) => out.map_err(spawn),
            Err(_) => Err(HelperError::Timeout {
                program: program.to_owned(),
                after: HELPER_TIMEOUT,
            }),
        }
    }
}

/// The credentials found for one pull, and where they were looked for.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// The registry's canonical host (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// What to send; `None` pulls anonymously.
    pub credentials: Option<Credentials>,
    /// Where berth looked, for the error of a refused pull.
    pub trail: Trail,
}

impl Lookup {
    /// bollard's form of [`Lookup::credentials`].
    pub fn to_bollard(&self) -> Option<DockerCredentials> {
        self.credentials
            .as_ref()
            .map(|c| c.to_bollard(&self.registry))
    }
}

/// The credentials sent with a build, and where they came from. `Debug` shows the registries
/// only (bollard's credential type would print the secrets).
#[derive(Clone)]
pub struct ForBuild {
    /// `X-Registry-Config`: server address → credentials.
    pub credentials: HashMap<String, DockerCredentials>,
    /// Where they came from, for the error of a build whose base image was refused.
    pub trail: BuildTrail,
}

impl fmt::Debug for ForBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut servers: Vec<&String> = self.credentials.keys().collect();
        servers.sort();
        f.debug_struct("ForBuild")
            .field("credentials_for", &servers)
            .field("trail", &self.trail)
            .finish()
    }
}

/// Where berth looked for a build's credentials: a person reads it (`Display`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildTrail {
    /// The config file.
    pub config: PathBuf,
    /// Whether it was there and readable.
    pub file: FileState,
    /// The registries credentials were sent for (canonical hosts, sorted).
    pub registries: Vec<String>,
}

impl fmt::Display for BuildTrail {
    /// `berth sent credentials for ghcr.io, docker.io from /root/.docker/config.json`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.config.display();
        match &self.file {
            FileState::Missing => write!(
                f,
                "berth looked for credentials in {path}, which does not exist (set DOCKER_CONFIG to the directory of a Docker config.json, or run `docker login` as the user berth runs as)"
            ),
            FileState::Broken(why) => write!(
                f,
                "berth looked for credentials in {path}, which it could not read: {why}"
            ),
            FileState::Read if self.registries.is_empty() => {
                write!(f, "berth found no registry credentials in {path}")
            }
            FileState::Read => write!(
                f,
                "berth sent credentials for {} from {path}",
                self.registries.join(", ")
            ),
        }
    }
}

/// Where berth looked for one registry's credentials and what it found: a person reads it in
/// the error of a refused pull (`Display`), nothing parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trail {
    /// The config file.
    pub config: PathBuf,
    /// Whether it was there and readable.
    pub file: FileState,
    /// The registry looked up.
    pub registry: String,
    /// What answered.
    pub used: Used,
}

/// The state of the config file when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Read and parsed.
    Read,
    /// Not there.
    Missing,
    /// There, but unreadable or not valid JSON (the reason).
    Broken(String),
}

/// What gave (or failed to give) the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Used {
    /// No entry, helper or store for the registry.
    Nothing,
    /// The `auths` entry under `key`.
    Entry {
        /// The key as written in the file.
        key: String,
    },
    /// A credential helper.
    Helper {
        /// `docker-credential-<name>`.
        program: String,
        /// Why it: `credHelpers` or `credsStore`.
        why: HelperChoice,
        /// What it answered.
        result: HelperResult,
    },
}

/// Which setting chose a helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelperChoice {
    /// `credHelpers` names it for this registry.
    CredHelpers,
    /// `credsStore` names it for every registry.
    CredsStore,
}

/// What a helper answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperResult {
    /// Credentials.
    Found,
    /// "credentials not found".
    NothingStored,
    /// It failed (why).
    Failed(String),
}

impl fmt::Display for Trail {
    /// `looked in /root/.docker/config.json: auths entry "ghcr.io"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.config.display();
        match &self.file {
            FileState::Missing => {
                return write!(
                    f,
                    "berth looked for credentials in {path}, which does not exist (set DOCKER_CONFIG to the directory of a Docker config.json, or run `docker login {}` as the user berth runs as)",
                    self.registry
                );
            }
            FileState::Broken(why) => {
                return write!(
                    f,
                    "berth looked for credentials in {path}, which it could not read: {why}"
                );
            }
            FileState::Read => {}
        }
        match &self.used {
            Used::Nothing => write!(
                f,
                "berth found no credentials for {} in {path} (no auths entry, credHelpers or credsStore for it)",
                self.registry
            ),
            Used::Entry { key } => write!(
                f,
                "berth sent the credentials of the auths entry {key:?} in {path}"
            ),
            Used::Helper {
                program,
                why,
                result,
            } => {
                let why = match why {
                    HelperChoice::CredHelpers => "credHelpers",
                    HelperChoice::CredsStore => "credsStore",
                };
                write!(f, "berth ran {program} ({why} in {path}), which ")?;
                match result {
                    HelperResult::Found => write!(f, "gave credentials"),
                    HelperResult::NothingStored => {
                        write!(f, "has no credentials for {}", self.registry)
                    }
                    HelperResult::Failed(e) => write!(f, "failed: {e}"),
                }
            }
        }
    }
}

/// Why a credential helper gave nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// It could not be started or talked to.
    #[error("failed to run {program}")]
    Run {
        /// `docker-credential-<name>`.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It exited non-zero.
    #[error("failed to get credentials from {program}: {status}: {stderr}")]
    Exit {
        /// `docker-credential-<name>`.
        program: String,
        /// Its exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// Its answer was not the JSON the protocol says.
    #[error("failed to parse the answer of {program}")]
    Answer {
        /// `docker-credential-<name>`.
        program: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// It did not finish in time.
    #[error("failed to get credentials from {program}: no answer within {after:?}")]
    Timeout {
        /// `docker-credential-<name>`.
        program: String,
        /// The limit.
        after: Duration,
    },
}

/// Whether an engine error message says the registry refused access (401/403 or no
/// credentials), as Docker words it: `unauthorized: authentication required`, `denied:
/// requested access to the resource is denied`, `pull access denied for …`, `no basic auth
/// credentials`. A local "permission denied" is not one.
pub fn is_denied(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "unauthorized",
        "access to the resource is denied",
        "pull access denied",
        "no basic auth credentials",
        "authentication required",
        "403 forbidden",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// The canonical registry host of an image reference: its domain, or `docker.io` for Docker
/// Hub (also when written as one of Hub's other names).
pub fn registry_of(reference: &str) -> String {
    let domain = crate::desired::syntax::image_ref::parse_image_ref(reference)
        .ok()
        .and_then(|r| r.domain);
    match domain {
        Some(d) => canonical(&d),
        None => DOCKER_HUB.to_owned(),
    }
}

/// A config key or domain as a canonical host: scheme and path dropped, Hub's names made one.
fn canonical(key: &str) -> String {
    let host = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = host.split('/').next().unwrap_or(host).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_owned(),
        _ => host,
    }
}

/// What the CLI calls a registry when it asks a helper or keys `X-Registry-Config`.
fn server_address(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        HUB_INDEX
    } else {
        registry
    }
}

/// `err: cause: cause…`, for a person (the trail keeps text, not the error).
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn helper_program(name: &str) -> String {
    format!("docker-credential-{name}")
}

fn tail(bytes: &[u8]) -> String {
    super::output_tail(bytes, HELPER_STDERR_LIMIT)
        .trim()
        .to_owned()
}

/// The parts of the Docker CLI's `config.json` berth reads; the rest is ignored.
#[derive(Default, serde::Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(rename = "credsStore", default)]
    creds_store: Option<String>,
    #[serde(rename = "credHelpers", default)]
    cred_helpers: BTreeMap<String, String>,
}

/// One `auths` entry. No `Debug`: it holds secrets.
#[derive(Default, serde::Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

impl AuthEntry {
    /// The credentials it holds, `None` for an empty entry (`{}`, as a CLI with a store
    /// leaves) or an `auth` that is not base64 of `user:password`.
    fn credentials(&self) -> Option<Credentials> {
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let (mut username, mut password) = (nonempty(&self.username), nonempty(&self.password));
        if let Some(auth) = nonempty(&self.auth) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            if let Some((u, p)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
                username = Some(u.to_owned());
                password = Some(p.to_owned());
            }
        }
        if let Some(token) = nonempty(&self.identitytoken) {
            return Some(Credentials::identity_token(
                username.unwrap_or_default(),
                token,
            ));
        }
        Some(Credentials::password(username?, password?))
    }
}

/// One helper's `get` answer.
#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Where one registry's credentials come from, decided from the file alone.
enum Plan {
    Anonymous,
    Entry {
        key: String,
        credentials: Option<Credentials>,
    },
    Helper {
        program: String,
        why: HelperChoice,
    },
}

/// The CLI's order: `credHelpers[registry]`, else `credsStore`, else `auths[registry]`.
fn plan(file: &ConfigFile, registry: &str) -> Plan {
    let helper = file
        .cred_helpers
        .iter()
        .find(|(k, _)| canonical(k) == registry);
    if let Some((_, name)) = helper {
        return Plan::Helper {
            program: helper_program(name),
            why: HelperChoice::CredHelpers,
        };
    }
    if let Some(store) = file.creds_store.as_deref().filter(|s| !s.is_empty()) {
        return Plan::Helper {
            program: helper_program(store),
            why: HelperChoice::CredsStore,
        };
    }
    // An exact key first (as the CLI), then any key naming the same host.
    let entry = file
        .auths
        .get_key_value(registry)
        .or_else(|| file.auths.iter().find(|(k, _)| canonical(k) == registry));
    match entry {
        Some((key, entry)) => Plan::Entry {
            key: key.clone(),
            credentials: entry.credentials(),
        },
        None => Plan::Anonymous,
    }
}

#[cfg(test)]
mod tests;
