//! One berth per engine: before a berth changes anything it claims the engine with a named,
//! never-started container (`berth-engine-claim`) whose labels name the holder — host, boot,
//! data directory, pid, since when. Docker refuses a second container of the same name, so the
//! claim is atomic across processes and hosts; the data-directory lock (taken first) already
//! makes one berth per data directory, so the claim only has to tell data directories apart.
//!
//! The rule for an existing claim ([`decide`], pure):
//! - the same data directory on the same host: it was this berth's (an earlier run, however it
//!   ended; the data-directory lock we hold proves no other process uses it): renewed;
//! - another data directory on this host (same host name and boot ID): its holder is alive
//!   when its pid still runs (`/proc/<pid>` exists): refused, naming it; otherwise (the
//!   process died, or the host rebooted since the claim) the claim is stale and taken over —
//!   unless the holder's pid is in another pid namespace (berth in a container with the
//!   host's network, hence its host name), where `/proc/<pid>` says nothing about it: refused,
//!   as for another host;
//! - another host: berth cannot see whether that process lives and never guesses (a wrong
//!   guess is two berths tearing down each other's containers): refused, naming the holder
//!   and the one command that releases a claim whose holder is known to be gone
//!   (`docker rm berth-engine-claim`).
//!
//! The claim's name can be overridden with `BERTH_ENGINE_CLAIM` ([`claim_name`]): for test
//! harnesses and for deliberately separate berths on one engine, which must then manage
//! disjoint projects.
//!
//! IO: the engine calls around [`decide`]; called once by `berth apply` and `berth run` right
//! after the data-dir lock and the engine connection, before the first engine change, and
//! released when they exit cleanly (the read-only commands and the manual controls, which
//! only write control files, claim nothing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{BuildSpec, ContainerCreate, Engine, EngineError};

/// The claim container's name.
pub const CLAIM_NAME: &str = "berth-engine-claim";
/// The environment variable that overrides [`CLAIM_NAME`] (see [`claim_name`]).
pub const CLAIM_ENV: &str = "BERTH_ENGINE_CLAIM";
/// The image the claim container is created from (built locally `FROM scratch`, no pull).
pub const CLAIM_IMAGE: &str = "berth-claim:1";

const L_HOST: &str = "berth.claim.host";
const L_BOOT: &str = "berth.claim.boot_id";
const L_DATA: &str = "berth.claim.data_dir";
const L_PID: &str = "berth.claim.pid";
const L_PID_NS: &str = "berth.claim.pid_ns";
const L_SINCE: &str = "berth.claim.since";

/// Errors of claiming the engine.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// Another berth holds the engine.
    #[error("another berth manages this engine: {holder}; {advice}")]
    Held {
        /// The holder (boxed: it is large and errors travel far).
        holder: Box<Holder>,
        /// What to do.
        advice: String,
    },
    /// An engine call failed.
    #[error("failed to claim the engine")]
    Engine(#[source] EngineError),
    /// The claim image's build context could not be written.
    #[error("failed to prepare the claim image's build context {path}")]
    Context {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The claim kept changing under us (other berths starting at the same moment).
    #[error("failed to claim the engine: the claim changed {0} times while taking it")]
    Contended(u32),
    /// `BERTH_ENGINE_CLAIM` is not a container name Docker accepts.
    #[error(
        "failed to claim the engine: {CLAIM_ENV}={0:?} is not a valid container name (letters, digits, `_`, `.`, `-`, starting with a letter or digit)"
    )]
    BadName(String),
}

/// Who holds (or wants) the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Host name.
    pub host: String,
    /// The host's boot ID (`/proc/sys/kernel/random/boot_id`): a reboot changes it.
    pub boot_id: String,
    /// The data directory, absolute.
    pub data_dir: PathBuf,
    /// Process ID on that host.
    pub pid: u32,
    /// The pid namespace the pid is in (`/proc/self/ns/pid`, e.g. `pid:[4026531836]`): a
    /// berth in a container has its own.
    pub pid_ns: String,
    /// Since when (unix seconds).
    pub since: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "host {}, data dir {}, pid {}, since {}",
            self.host,
            self.data_dir.display(),
            self.pid,
            crate::telemetry::time::Timestamp(self.since)
        )
    }
}

impl Holder {
    /// This process with `data_dir`.
    pub fn current(data_dir: &Path) -> Holder {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let mut host = read("/proc/sys/kernel/hostname");
        if host.is_empty() {
            host = std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown".into());
        }
        Holder {
            host,
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            data_dir: std::fs::canonicalize(data_dir)
                .or_else(|_| std::path::absolute(data_dir))
                .unwrap_or_else(|_| data_dir.to_path_buf()),
            pid: std::process::id(),
            pid_ns: std::fs::read_link("/proc/self/ns/pid")
                .map(|l| l.display().to_string())
                .unwrap_or_default(),
            since: crate::apply::unix_now(),
        }
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (L_HOST.into(), self.host.clone()),
            (L_BOOT.into(), self.boot_id.clone()),
            (L_DATA.into(), self.data_dir.display().to_string()),
            (L_PID.into(), self.pid.to_string()),
            (L_PID_NS.into(), self.pid_ns.clone()),
            (L_SINCE.into(), self.since.to_string()),
        ])
    }

    fn from_labels(labels: &BTreeMap<String, String>) -> Holder {
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        Holder {
            host: get(L_HOST),
            boot_id: get(L_BOOT),
            data_dir: PathBuf::from(get(L_DATA)),
            pid: get(L_PID).parse().unwrap_or(0),
            pid_ns: get(L_PID_NS),
            since: get(L_SINCE).parse().unwrap_or(0),
        }
    }

    fn same_boot(&self, other: &Holder) -> bool {
        self.host == other.host && self.boot_id == other.boot_id
    }
}

/// What to do about the claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No claim: create ours.
    Create,
    /// A claim that is ours (renewed) or stale (taken over): replace it with ours.
    Replace {
        /// Why, for the log.
        why: String,
    },
    /// Someone else holds it.
    Refuse {
        /// What the operator can do.
        advice: String,
    },
}

/// The claim container's name: `override_` (the value of [`CLAIM_ENV`]) when given and not
/// empty, else [`CLAIM_NAME`]. Refused unless Docker would accept it as a container name.
pub fn claim_name(override_: Option<&str>) -> Result<String, ClaimError> {
    let Some(name) = override_.filter(|n| !n.is_empty()) else {
        return Ok(CLAIM_NAME.to_string());
    };
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok {
        Ok(name.to_string())
    } else {
        Err(ClaimError::BadName(name.to_string()))
    }
}

/// The rule (see the module doc) for the claim container `name`. `alive` says whether a pid
/// runs on this host.
pub fn decide(
    name: &str,
    found: Option<&Holder>,
    me: &Holder,
    alive: impl Fn(u32) -> bool,
) -> Decision {
    let Some(h) = found else {
        return Decision::Create;
    };
    if h.host == me.host && h.data_dir == me.data_dir {
        return Decision::Replace {
            why: "renewing this data directory's claim from an earlier run".into(),
        };
    }
    if h.same_boot(me) {
        if h.pid_ns != me.pid_ns {
            return Decision::Refuse {
                advice: format!(
                    "its pid is in another pid namespace (a berth in a container?), so berth cannot tell from here whether it still runs: stop that berth, or, if it is gone for good, release its claim with `docker rm {name}`"
                ),
            };
        }
        if h.pid != 0 && alive(h.pid) {
            return Decision::Refuse {
                advice: format!(
                    "it is running (pid {} on this host): stop it, or run this berth against another engine",
                    h.pid
                ),
            };
        }
        return Decision::Replace {
            why: format!(
                "taking over: its holder (pid {}) is no longer running",
                h.pid
            ),
        };
    }
    if h.host == me.host {
        return Decision::Replace {
            why: "taking over: the host rebooted since it was claimed".into(),
        };
    }
    Decision::Refuse {
        advice: format!(
            "berth cannot tell from here whether a process on host {} still runs: stop that berth, or, if it is gone for good, release its claim with `docker rm {name}`",
            h.host
        ),
    }
}

/// Whether `pid` runs on this host.
pub fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// A held claim.
#[derive(Debug)]
pub struct Claim {
    name: String,
    id: String,
    /// Who holds it (this process).
    pub holder: Holder,
}

impl Claim {
    /// Removes the claim (on a clean exit; a crashed berth's claim is renewed or taken over
    /// by the rule).
    pub async fn release<E: Engine>(self, engine: &E) -> Result<(), ClaimError> {
        match engine.remove_container(&self.id).await {
            Ok(()) | Err(EngineError::NotFound { .. }) => Ok(()),
            Err(e) => Err(ClaimError::Engine(e)),
        }
    }

    /// The claim container's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Claims `engine` for the berth of `data_dir` (this process) under the claim name
/// [`CLAIM_ENV`] gives, else [`CLAIM_NAME`]: the one function the CLI calls after taking the
/// data-directory lock.
pub async fn claim_engine<E: Engine>(engine: &E, data_dir: &Path) -> Result<Claim, ClaimError> {
    let name = claim_name(std::env::var(CLAIM_ENV).ok().as_deref())?;
    claim_as(engine, &name, &Holder::current(data_dir), pid_alive).await
}

/// [`claim_engine`] with the claim's name, the holder and the liveness check given (tests).
pub async fn claim_as<E: Engine>(
    engine: &E,
    name: &str,
    me: &Holder,
    alive: impl Fn(u32) -> bool,
) -> Result<Claim, ClaimError> {
    const ROUNDS: u32 = 5;
    for _ in 0..ROUNDS {
        let found = find(engine, name).await?;
        let decision = decide(name, found.as_ref().map(|(_, h)| h), me, &alive);
        match decision {
            Decision::Refuse { advice } => {
                let holder = found.map(|(_, h)| h).unwrap_or_else(|| me.clone());
                return Err(ClaimError::Held {
                    holder: Box::new(holder),
                    advice,
                });
            }
            Decision::Replace { why } => {
                if let Some((id, h)) = &found {
                    tracing::info!(claim = %name, was = %h, "{why}");
                    match engine.remove_container(id).await {
                        Ok(()) | Err(EngineError::NotFound { .. }) => {}
                        Err(e) => return Err(ClaimError::Engine(e)),
                    }
                }
            }
            Decision::Create => {}
        }
        ensure_image(engine).await?;
        let spec = ContainerCreate {
            name: name.to_string(),
            image: CLAIM_IMAGE.to_string(),
            command: Some(vec!["berth-engine-claim".into()]),
            labels: me.labels(),
            network_mode: Some("none".into()),
            restart: "no".into(),
            ..ContainerCreate::default()
        };
        match engine.create_container(&spec).await {
            Ok(id) => {
                return Ok(Claim {
                    name: name.to_string(),
                    id,
                    holder: me.clone(),
                });
            }
            // Another berth created it between our look and our create: look again.
            Err(EngineError::Conflict { .. }) => continue,
            Err(e) => return Err(ClaimError::Engine(e)),
        }
    }
    Err(ClaimError::Contended(ROUNDS))
}

/// The claim container named `name`, if any, with its holder.
async fn find<E: Engine>(engine: &E, name: &str) -> Result<Option<(String, Holder)>, ClaimError> {
    let all = engine
        .list_containers(&[L_HOST.to_string()])
        .await
        .map_err(ClaimError::Engine)?;
    Ok(all
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| (c.id, Holder::from_labels(&c.labels))))
}

/// Builds the claim image (`FROM scratch`, no layers) unless it is there.
async fn ensure_image<E: Engine>(engine: &E) -> Result<(), ClaimError> {
    let images = engine.list_images().await.map_err(ClaimError::Engine)?;
    if images
        .iter()
        .any(|i| i.tags.iter().any(|t| t == CLAIM_IMAGE))
    {
        return Ok(());
    }
    let context = std::env::temp_dir().join(format!("berth-claim-{}", std::process::id()));
    std::fs::create_dir_all(&context).map_err(|source| ClaimError::Context {
        path: context.clone(),
        source,
    })?;
    let spec = BuildSpec {
        context_dir: context.clone(),
        dockerfile: "Dockerfile".into(),
        dockerfile_inline: Some("FROM scratch\nLABEL berth.claim.image=1\n".into()),
        tag: CLAIM_IMAGE.into(),
        args: BTreeMap::new(),
        target: None,
        labels: BTreeMap::new(),
        network: None,
        extra_hosts: Vec::new(),
        shm_size: None,
        timeout: std::time::Duration::from_secs(60),
    };
    let built = engine.build_image(&spec).await;
    let _ = std::fs::remove_dir_all(&context);
    built.map(|_| ()).map_err(ClaimError::Engine)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(host: &str, boot: &str, dir: &str, pid: u32) -> Holder {
        Holder {
            host: host.into(),
            boot_id: boot.into(),
            pid_ns: "pid:[1]".into(),
            data_dir: dir.into(),
            pid,
            since: 1_700_000_000,
        }
    }

    #[test]
    fn the_claim_rule() {
        let me = holder("h1", "b1", "/var/lib/berth", 10);
        let alive = |pid| pid == 20;
        assert_eq!(decide(CLAIM_NAME, None, &me, alive), Decision::Create);
        // Our data dir (an earlier run): renewed, whatever its pid.
        let mine = holder("h1", "b0", "/var/lib/berth", 20);
        assert!(matches!(
            decide(CLAIM_NAME, Some(&mine), &me, alive),
            Decision::Replace { .. }
        ));
        // Another data dir on this host, its berth running: refused.
        let other = holder("h1", "b1", "/srv/other", 20);
        assert!(matches!(
            decide(CLAIM_NAME, Some(&other), &me, alive),
            Decision::Refuse { .. }
        ));
        // ... its berth gone: taken over.
        let dead = holder("h1", "b1", "/srv/other", 30);
        assert!(matches!(
            decide(CLAIM_NAME, Some(&dead), &me, alive),
            Decision::Replace { .. }
        ));
        // ... claimed before the host rebooted: taken over even if the pid is reused.
        let rebooted = holder("h1", "b0", "/srv/other", 20);
        assert!(matches!(
            decide(CLAIM_NAME, Some(&rebooted), &me, alive),
            Decision::Replace { .. }
        ));
        // ... its berth in another pid namespace: /proc says nothing about it, never guessed.
        let contained = Holder {
            pid_ns: "pid:[2]".into(),
            ..dead.clone()
        };
        match decide(CLAIM_NAME, Some(&contained), &me, alive) {
            Decision::Refuse { advice } => assert!(advice.contains("docker rm"), "{advice}"),
            d => panic!("{d:?}"),
        }
        // ... but a restarted berth in a container with our data dir is still ours.
        let mine_contained = Holder {
            pid_ns: "pid:[2]".into(),
            ..mine.clone()
        };
        assert!(matches!(
            decide(CLAIM_NAME, Some(&mine_contained), &me, alive),
            Decision::Replace { .. }
        ));
        // Another host: never guessed.
        let remote = holder("h2", "b9", "/var/lib/berth", 30);
        match decide(CLAIM_NAME, Some(&remote), &me, alive) {
            Decision::Refuse { advice } => assert!(advice.contains("docker rm"), "{advice}"),
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn the_claim_name_is_overridden_only_by_a_valid_container_name() {
        assert_eq!(claim_name(None).unwrap(), CLAIM_NAME);
        assert_eq!(claim_name(Some("")).unwrap(), CLAIM_NAME);
        assert_eq!(claim_name(Some("t.claim-1_a")).unwrap(), "t.claim-1_a");
        for bad in ["-x", ".x", "a b", "a/b", "é"] {
            assert!(
                matches!(claim_name(Some(bad)), Err(ClaimError::BadName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_remote_holder_is_released_by_the_claim_s_own_name() {
        let me = holder("h1", "b1", "/var/lib/berth", 10);
        let remote = holder("h2", "b9", "/srv/other", 30);
        match decide("t-claim", Some(&remote), &me, |_| true) {
            Decision::Refuse { advice } => {
                assert!(advice.contains("docker rm t-claim"), "{advice}")
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn the_refusal_names_host_data_dir_and_pid() {
        let e = ClaimError::Held {
            holder: Box::new(holder("h1", "b1", "/srv/other", 20)),
            advice: "stop it".into(),
        };
        let s = e.to_string();
        assert!(
            s.contains("host h1") && s.contains("/srv/other") && s.contains("pid 20"),
            "{s}"
        );
    }
}
