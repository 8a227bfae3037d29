//! What changed between two revisions of a service, field by field: image, command,
//! environment (keys only: values are never shown), ports, volumes, networks, labels,
//! resources, health check, and berth's policy.
//!
//! Pure. It compares what the store recorded for each revision (its image reference and ID,
//! its container template, its policy); rollout events (`rollout/begin`), `berth history` and
//! `berth diff` render the result. Labels berth and compose set themselves (the spec hash, the
//! replica number …) are left out: they change with every revision and say nothing new.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::engine::{ContainerCreate, HealthcheckSpec, MountSpec, NetworkAttach, PortBinding};
use crate::store::Revision;

/// How one keyed entry changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// New in the later revision.
    Added,
    /// Gone from the later revision.
    Removed,
    /// In both, with another value.
    Changed,
}

impl Edit {
    fn as_str(self) -> &'static str {
        match self {
            Edit::Added => "added",
            Edit::Removed => "removed",
            Edit::Changed => "changed",
        }
    }
}

/// One difference between two revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A field shown with both values (`image app:1 → app:2`); `None` is "not set".
    Value {
        /// The field, as a person knows it (`image`, `command`, `memory`, `policy rollout.order`).
        field: String,
        /// Before.
        from: Option<String>,
        /// After.
        to: Option<String>,
    },
    /// An environment variable; its value is never shown.
    Env {
        /// The variable.
        key: String,
        /// What became of it.
        edit: Edit,
    },
    /// Members of a list that came and went (ports, volumes, networks …).
    Set {
        /// The field.
        field: &'static str,
        /// New members.
        added: Vec<String>,
        /// Members gone.
        removed: Vec<String>,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Value { field, from, to } => {
                let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
                write!(f, "{field} {} → {}", show(from), show(to))
            }
            Change::Env { key, edit } => match edit {
                Edit::Changed => write!(f, "environment {key} changed (value hidden)"),
                e => write!(f, "environment {key} {}", e.as_str()),
            },
            Change::Set {
                field,
                added,
                removed,
            } => {
                write!(f, "{field}")?;
                let mut sep = " ";
                if !added.is_empty() {
                    write!(f, "{sep}+{}", added.join(" +"))?;
                    sep = " ";
                }
                if !removed.is_empty() {
                    write!(f, "{sep}-{}", removed.join(" -"))?;
                }
                Ok(())
            }
        }
    }
}

/// The differences between two revisions, or why they cannot be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    /// Field by field, in a fixed order (image first).
    Changes(Vec<Change>),
    /// The earlier revision has no recorded template (adopted from what ran, or recorded by
    /// an older berth): only the image can be compared.
    Unknown {
        /// The image change, when the references differ.
        image: Option<Change>,
    },
}

impl Diff {
    /// The changes known, in order.
    pub fn changes(&self) -> &[Change] {
        match self {
            Diff::Changes(c) => c,
            Diff::Unknown { image } => image.as_slice(),
        }
    }
}

impl fmt::Display for Diff {
    /// One line: the changes joined by `; `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diff::Changes(c) if c.is_empty() => write!(f, "no recorded field changed"),
            Diff::Changes(c) => write!(f, "{}", join(c)),
            Diff::Unknown { image: Some(i) } => {
                write!(
                    f,
                    "{i} (other fields: not recorded for the earlier revision)"
                )
            }
            Diff::Unknown { image: None } => {
                write!(
                    f,
                    "changes unknown: the earlier revision was not recorded in full"
                )
            }
        }
    }
}

fn join(c: &[Change]) -> String {
    c.iter()
        .map(Change::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The policy this module compares between revisions, as recorded with each one:
/// `deploy.update_config`, `rollback_config` and `x-berth`, as JSON.
pub fn policy_of(svc: &crate::desired::model::Service) -> Option<serde_json::Value> {
    #[derive(serde::Serialize)]
    struct Policy<'a> {
        update_config: &'a crate::desired::model::RolloutPolicy,
        rollback_config: &'a crate::desired::model::UpdatePolicy,
        #[serde(rename = "x-berth")]
        berth: &'a crate::desired::model::BerthPolicy,
    }
    serde_json::to_value(Policy {
        update_config: &svc.rollout,
        rollback_config: &svc.rollback,
        berth: &svc.berth,
    })
    .ok()
}

/// What changed from `old` to `new`.
pub fn between(old: &Revision, new: &Revision) -> Diff {
    let image = image_change(old, new);
    let (Some(a), Some(b)) = (&old.template, &new.template) else {
        return Diff::Unknown { image };
    };
    let mut out: Vec<Change> = image.into_iter().collect();
    templates(a, b, &mut out);
    if let (Some(a), Some(b)) = (&old.policy, &new.policy) {
        policy(a, b, &mut out);
    }
    Diff::Changes(out)
}

/// The image: the reference as written; the same reference resolved to another image shows
/// the image IDs.
fn image_change(old: &Revision, new: &Revision) -> Option<Change> {
    let short = |id: &str| {
        let id = id.strip_prefix("sha256:").unwrap_or(id);
        id.chars().take(12).collect::<String>()
    };
    // An adopted revision has no reference: its image ID is all there is.
    if old.image_ref.is_empty() && !new.image_ref.is_empty() {
        return Some(Change::Value {
            field: "image".into(),
            from: Some(short(&old.image_id)),
            to: Some(new.image_ref.clone()),
        });
    }
    if old.image_ref != new.image_ref {
        return Some(value("image", Some(&old.image_ref), Some(&new.image_ref)));
    }
    if old.image_id != new.image_id && !old.image_id.is_empty() && !new.image_id.is_empty() {
        let name = if new.image_ref.is_empty() {
            "image".to_string()
        } else {
            format!("image {}", new.image_ref)
        };
        return Some(value(
            &name,
            Some(&short(&old.image_id)),
            Some(&short(&new.image_id)),
        ));
    }
    None
}

fn value(field: &str, from: Option<&str>, to: Option<&str>) -> Change {
    Change::Value {
        field: field.into(),
        from: from.map(str::to_string),
        to: to.map(str::to_string),
    }
}

/// Compares an optional field, pushing a change when it differs.
fn opt<T: PartialEq>(
    out: &mut Vec<Change>,
    field: &str,
    a: &Option<T>,
    b: &Option<T>,
    show: impl Fn(&T) -> String,
) {
    if a != b {
        out.push(Change::Value {
            field: field.into(),
            from: a.as_ref().map(&show),
            to: b.as_ref().map(&show),
        });
    }
}

fn words(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

fn set(out: &mut Vec<Change>, field: &'static str, a: Vec<String>, b: Vec<String>) {
    let (a, b): (BTreeSet<String>, BTreeSet<String>) =
        (a.into_iter().collect(), b.into_iter().collect());
    let added: Vec<String> = b.difference(&a).cloned().collect();
    let removed: Vec<String> = a.difference(&b).cloned().collect();
    if !added.is_empty() || !removed.is_empty() {
        out.push(Change::Set {
            field,
            added,
            removed,
        });
    }
}

fn port(p: &PortBinding) -> String {
    let host = match (&p.host_ip, p.published, p.published_end) {
        (Some(ip), Some(a), Some(b)) => format!("{ip}:{a}-{b}:"),
        (Some(ip), Some(a), None) => format!("{ip}:{a}:"),
        (None, Some(a), Some(b)) => format!("{a}-{b}:"),
        (None, Some(a), None) => format!("{a}:"),
        (Some(ip), None, _) => format!("{ip}::"),
        (None, None, _) => String::new(),
    };
    format!("{host}{}/{}", p.target, p.protocol)
}

fn mount(m: &MountSpec) -> String {
    let mut s = match &m.source {
        Some(src) => format!("{src}:{}", m.target),
        None => m.target.clone(),
    };
    if m.read_only {
        s.push_str(":ro");
    }
    if m.kind != "bind" && m.kind != "volume" {
        s = format!("{}:{s}", m.kind);
    }
    s
}

fn network(n: &NetworkAttach) -> String {
    let mut s = n.network.clone();
    if !n.aliases.is_empty() {
        s.push_str(&format!(" (aliases {})", n.aliases.join(",")));
    }
    s
}

fn health(h: &HealthcheckSpec) -> String {
    let mut s = words(&h.test);
    for (k, v) in [
        ("interval", h.interval),
        ("timeout", h.timeout),
        ("start_period", h.start_period),
    ] {
        if let Some(v) = v {
            s.push_str(&format!(" {k} {}s", v.as_secs_f64()));
        }
    }
    if let Some(r) = h.retries {
        s.push_str(&format!(" retries {r}"));
    }
    s
}

/// Labels berth and compose set on every container: they follow the revision.
fn own_label(key: &str) -> bool {
    key.starts_with("berth.") || key.starts_with("com.docker.compose.")
}

fn templates(a: &ContainerCreate, b: &ContainerCreate, out: &mut Vec<Change>) {
    opt(out, "command", &a.command, &b.command, |v| words(v));
    opt(out, "entrypoint", &a.entrypoint, &b.entrypoint, |v| {
        words(v)
    });
    env(&a.env, &b.env, out);
    set(
        out,
        "ports",
        a.ports.iter().map(port).collect(),
        b.ports.iter().map(port).collect(),
    );
    set(
        out,
        "volumes",
        a.mounts.iter().map(mount).collect(),
        b.mounts.iter().map(mount).collect(),
    );
    set(
        out,
        "networks",
        a.networks.iter().map(network).collect(),
        b.networks.iter().map(network).collect(),
    );
    opt(
        out,
        "network_mode",
        &a.network_mode,
        &b.network_mode,
        String::clone,
    );
    labels(&a.labels, &b.labels, out);
    opt(out, "cpus", &a.nano_cpus, &b.nano_cpus, |n| {
        format!("{}", *n as f64 / 1e9)
    });
    opt(out, "memory", &a.memory, &b.memory, |m| bytes(*m));
    opt(
        out,
        "pids_limit",
        &a.pids_limit,
        &b.pids_limit,
        i64::to_string,
    );
    opt(out, "healthcheck", &a.healthcheck, &b.healthcheck, health);
    opt(out, "user", &a.user, &b.user, String::clone);
    opt(
        out,
        "working_dir",
        &a.working_dir,
        &b.working_dir,
        String::clone,
    );
    opt(out, "hostname", &a.hostname, &b.hostname, String::clone);
    if (&a.restart, a.restart_max) != (&b.restart, b.restart_max) {
        let show = |r: &str, m: Option<u32>| match m {
            Some(m) => format!("{r}:{m}"),
            None => r.to_string(),
        };
        out.push(value(
            "restart",
            Some(&show(&a.restart, a.restart_max)),
            Some(&show(&b.restart, b.restart_max)),
        ));
    }
    opt(
        out,
        "stop_signal",
        &a.stop_signal,
        &b.stop_signal,
        String::clone,
    );
    opt(
        out,
        "stop_grace_period",
        &a.stop_timeout,
        &b.stop_timeout,
        |s| format!("{s}s"),
    );
    set(
        out,
        "extra_hosts",
        a.extra_hosts.clone(),
        b.extra_hosts.clone(),
    );
    set(out, "dns", a.dns.clone(), b.dns.clone());
    set(out, "cap_add", a.cap_add.clone(), b.cap_add.clone());
    set(out, "cap_drop", a.cap_drop.clone(), b.cap_drop.clone());
    set(out, "tmpfs", a.tmpfs.clone(), b.tmpfs.clone());
    set(
        out,
        "security_opt",
        a.security_opt.clone(),
        b.security_opt.clone(),
    );
    for (field, x, y) in [
        ("privileged", a.privileged, b.privileged),
        ("read_only", a.read_only, b.read_only),
    ] {
        if x != y {
            out.push(value(field, Some(&x.to_string()), Some(&y.to_string())));
        }
    }
    opt(out, "init", &a.init, &b.init, bool::to_string);
    opt(out, "shm_size", &a.shm_size, &b.shm_size, |m| bytes(*m));
    opt(out, "platform", &a.platform, &b.platform, String::clone);
    opt(out, "runtime", &a.runtime, &b.runtime, String::clone);
    opt(
        out,
        "logging.driver",
        &a.log_driver,
        &b.log_driver,
        String::clone,
    );
    map(out, "logging.options", &a.log_options, &b.log_options);
    map(out, "sysctls", &a.sysctls, &b.sysctls);
    if a.ulimits != b.ulimits {
        let show = |u: &BTreeMap<String, (i64, i64)>| {
            u.iter()
                .map(|(k, (s, h))| format!("{k}={s}:{h}"))
                .collect::<Vec<_>>()
        };
        set(out, "ulimits", show(&a.ulimits), show(&b.ulimits));
    }
}

/// Environment entries by key; values are compared, never shown.
fn env(a: &[String], b: &[String], out: &mut Vec<Change>) {
    let split = |v: &[String]| -> BTreeMap<String, String> {
        v.iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (e.clone(), String::new()),
            })
            .collect()
    };
    let (a, b) = (split(a), split(b));
    for (key, edit) in keyed(&a, &b) {
        out.push(Change::Env { key, edit });
    }
}

/// Labels berth does not set itself, values shown.
fn labels(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>, out: &mut Vec<Change>) {
    let keep = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.iter()
            .filter(|(k, _)| !own_label(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    map(out, "label", &keep(a), &keep(b));
}

/// A map whose values may be shown: one change per key.
fn map(
    out: &mut Vec<Change>,
    field: &str,
    a: &BTreeMap<String, String>,
    b: &BTreeMap<String, String>,
) {
    for (key, _) in keyed(a, b) {
        out.push(Change::Value {
            field: format!("{field} {key}"),
            from: a.get(&key).cloned(),
            to: b.get(&key).cloned(),
        });
    }
}

/// Keys added, removed or changed, in key order.
fn keyed(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<(String, Edit)> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (a.get(k), b.get(k)) {
            (None, Some(_)) => Some((k.clone(), Edit::Added)),
            (Some(_), None) => Some((k.clone(), Edit::Removed)),
            (Some(x), Some(y)) if x != y => Some((k.clone(), Edit::Changed)),
            _ => None,
        })
        .collect()
}

/// A byte count as a person writes it in compose (`512m`).
fn bytes(n: i64) -> String {
    const UNITS: [(i64, &str); 3] = [(1 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")];
    for (size, unit) in UNITS {
        if n >= size && n % size == 0 {
            return format!("{}{unit}", n / size);
        }
    }
    format!("{n}b")
}

/// berth's policy (`deploy.update_config`, `rollback_config`, `x-berth`), compared leaf by
/// leaf as recorded (JSON).
fn policy(a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<Change>) {
    let (mut fa, mut fb) = (BTreeMap::new(), BTreeMap::new());
    flatten("", a, &mut fa);
    flatten("", b, &mut fb);
    for (key, _) in keyed(&fa, &fb) {
        out.push(Change::Value {
            field: format!("policy {key}"),
            from: fa.get(&key).cloned(),
            to: fb.get(&key).cloned(),
        });
    }
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        // A `Duration` as serde writes it reads as `45s`.
        serde_json::Value::Object(m)
            if m.len() == 2 && m.contains_key("secs") && m.contains_key("nanos") =>
        {
            let secs = m
                .get("secs")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0);
            let nanos = m
                .get("nanos")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0);
            out.insert(prefix.to_string(), format!("{}s", secs + nanos / 1e9));
        }
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&key(k), v, out);
            }
        }
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}
