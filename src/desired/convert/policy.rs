//! Rollout policy: `deploy:` (replicas, limits, restart_policy, update_config,
//! rollback_config) and berth's `x-berth` block, merged key by key over the project's
//! `x-berth` defaults.
//!
//! Pure. Compose ignores `update_config`/`rollback_config` outside Swarm; berth gives them a
//! single-host meaning (docs/format.md#rollout-policy): `monitor` becomes `min_ready`, `failure_action: rollback`
//! becomes `auto_revert`, `order` and `parallelism`/`delay` drive the rollout.

use std::time::Duration;

use super::read::{Reader, shell_words};
use crate::desired::diag::Loc;
use crate::desired::model::*;
use crate::desired::node::{Node, Value};
use crate::desired::syntax::ports;

/// Default readiness window when neither `x-berth.min_ready` nor `update_config.monitor` is set.
pub const DEFAULT_MIN_READY: Duration = Duration::from_secs(5);
/// Default time a new revision has to become ready.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(120);

/// `x-berth` keys.
pub const BERTH_KEYS: &[&str] = &[
    "readiness",
    "liveness",
    "min_ready",
    "progress_deadline",
    "auto_revert",
    "smoke",
    "pre_deploy",
    "hold",
    "build_timeout",
    "update",
    "handoff",
    "placement",
];

/// Default limit of one image build (`x-berth.build_timeout`).
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What `deploy:` says.
pub struct Deploy {
    pub replicas: Option<u32>,
    pub limits: Limits,
    pub restart: Option<Restart>,
    pub update: UpdateRead,
    pub rollback: UpdatePolicy,
}

/// `update_config` plus what was explicitly set (for the x-berth defaults).
pub struct UpdateRead {
    pub policy: UpdatePolicy,
    pub monitor: Option<Duration>,
    /// Where `monitor` was written, for diagnostics about the `min_ready` it implies.
    pub monitor_loc: Option<Loc>,
    pub failure_action_set: bool,
}

/// `x-berth` after merging, plus the rollout window.
pub struct BerthRead {
    pub policy: BerthPolicy,
    pub min_ready: Duration,
    pub progress_deadline: Duration,
}

fn default_update() -> UpdatePolicy {
    UpdatePolicy {
        parallelism: 1,
        delay: Duration::ZERO,
        order: None,
        failure_action: FailureAction::Rollback,
        max_failure_ratio: 0.0,
    }
}

/// Reads `services.<name>.deploy`.
pub fn read_deploy(r: &mut Reader<'_>, service: &Node, name: &str) -> Deploy {
    let mut d = Deploy {
        replicas: None,
        limits: Limits::default(),
        restart: None,
        update: UpdateRead {
            policy: default_update(),
            monitor: None,
            monitor_loc: None,
            failure_action_set: false,
        },
        rollback: default_update(),
    };
    let Some(n) = service.get("deploy") else {
        return d;
    };
    let what = format!("services.{name}.deploy");
    let Some(entries) = r.map(n, &what) else {
        return d;
    };
    r.check_keys(
        entries,
        &what,
        &[
            "replicas",
            "resources",
            "restart_policy",
            "update_config",
            "rollback_config",
            "mode",
        ],
        &["labels", "placement", "endpoint_mode"],
    );
    if let Some(m) = n
        .get("mode")
        .and_then(Node::scalar_text)
        .filter(|m| m != "replicated")
    {
        r.error(
            &n.get("mode").map(|x| x.loc.clone()).unwrap_or_default(),
            format!("{what}.mode {m:?} is not supported on one host: use replicated (the default)"),
        );
    }
    if let Some(rep) = n.get("replicas") {
        d.replicas = r.u32(rep, &format!("{what}.replicas"));
    }
    if let Some(res) = n.get("resources") {
        let w = format!("{what}.resources");
        if let Some(e) = r.map(res, &w) {
            r.check_keys(e, &w, &["limits"], &["reservations"]);
        }
        for part in ["limits", "reservations"] {
            if let Some(devs) = res.get(part).and_then(|p| p.get("devices")) {
                check_device_requests(r, devs, &format!("{w}.{part}.devices"));
            }
        }
        if let Some(l) = res.get("limits") {
            let w = format!("{w}.limits");
            if let Some(e) = r.map(l, &w) {
                r.check_keys(e, &w, &["cpus", "memory", "pids"], &["devices"]);
            }
            d.limits.cpus = l.get("cpus").and_then(|c| r.f64(c, &format!("{w}.cpus")));
            d.limits.memory = l
                .get("memory")
                .and_then(|c| r.size(c, &format!("{w}.memory")));
            d.limits.pids = l.get("pids").and_then(|c| r.i64(c, &format!("{w}.pids")));
        }
    }
    if let Some(rp) = n.get("restart_policy") {
        let w = format!("{what}.restart_policy");
        if let Some(e) = r.map(rp, &w) {
            r.check_keys(e, &w, &["condition", "max_attempts"], &["delay", "window"]);
        }
        let max = rp
            .get("max_attempts")
            .and_then(|m| r.u32(m, &format!("{w}.max_attempts")));
        d.restart = match rp.get("condition") {
            // Swarm's default condition is `any`.
            None => Some(Restart::Always),
            Some(c) => match c.scalar_text().as_deref() {
                Some("any") => Some(Restart::Always),
                Some("on-failure") => Some(Restart::OnFailure { max }),
                Some("none") => Some(Restart::No),
                _ => {
                    r.error(
                        &c.loc,
                        format!(
                            "invalid {w}.condition {}: use none, on-failure or any",
                            c.shown()
                        ),
                    );
                    None
                }
            },
        };
    }
    if let Some(u) = n.get("update_config") {
        d.update = read_update(r, u, &format!("{what}.update_config"));
    }
    if let Some(u) = n.get("rollback_config") {
        d.rollback = read_update(r, u, &format!("{what}.rollback_config")).policy;
    }
    d
}

fn read_update(r: &mut Reader<'_>, n: &Node, what: &str) -> UpdateRead {
    let mut u = UpdateRead {
        policy: default_update(),
        monitor: None,
        monitor_loc: None,
        failure_action_set: false,
    };
    let Some(e) = r.map(n, what) else { return u };
    r.check_keys(
        e,
        what,
        &[
            "parallelism",
            "delay",
            "failure_action",
            "monitor",
            "max_failure_ratio",
            "order",
        ],
        &[],
    );
    if let Some(p) = n
        .get("parallelism")
        .and_then(|p| r.u32(p, &format!("{what}.parallelism")))
    {
        if p == 0 {
            r.error(
                &n.get("parallelism")
                    .map(|x| x.loc.clone())
                    .unwrap_or_default(),
                format!("{what}.parallelism must be at least 1"),
            );
        } else {
            u.policy.parallelism = p;
        }
    }
    if let Some(d) = n
        .get("delay")
        .and_then(|d| r.duration(d, &format!("{what}.delay")))
    {
        u.policy.delay = d;
    }
    u.monitor_loc = n.get("monitor").map(|m| m.loc.clone());
    u.monitor = n
        .get("monitor")
        .and_then(|d| r.duration(d, &format!("{what}.monitor")));
    if let Some(f) = n.get("failure_action") {
        u.failure_action_set = true;
        match f.scalar_text().as_deref() {
            Some("rollback") => u.policy.failure_action = FailureAction::Rollback,
            Some("pause") => u.policy.failure_action = FailureAction::Pause,
            Some("continue") => u.policy.failure_action = FailureAction::Continue,
            _ => r.error(
                &f.loc,
                format!(
                    "invalid {what}.failure_action {}: use rollback, pause or continue",
                    f.shown()
                ),
            ),
        }
    }
    if let Some(m) = n.get("max_failure_ratio")
        && let Some(v) = r.f64(m, &format!("{what}.max_failure_ratio"))
    {
        if (0.0..=1.0).contains(&v) {
            u.policy.max_failure_ratio = v;
        } else {
            r.error(
                &m.loc,
                format!("{what}.max_failure_ratio must be between 0 and 1, found {v}"),
            );
        }
    }
    if let Some(o) = n.get("order") {
        match o.scalar_text().as_deref() {
            Some("start-first") => u.policy.order = Some(Order::StartFirst),
            Some("stop-first") => u.policy.order = Some(Order::StopFirst),
            _ => r.error(
                &o.loc,
                format!(
                    "invalid {what}.order {}: use start-first or stop-first",
                    o.shown()
                ),
            ),
        }
    }
    u
}

/// Merges the project's `x-berth` (`defaults`) under the service's (`own`) key by key.
pub fn read_berth(
    r: &mut Reader<'_>,
    defaults: Option<&Node>,
    own: Option<&Node>,
    name: &str,
    service_loc: &Loc,
    update: &UpdateRead,
    image: Option<&str>,
) -> BerthRead {
    let what = format!("services.{name}.x-berth");
    for (block, w) in [(defaults, "x-berth".to_string()), (own, what.clone())] {
        if let Some(b) = block
            && let Some(e) = r.map(b, &w)
        {
            r.check_keys(e, &w, BERTH_KEYS, &[]);
        }
    }
    let entry = |k: &str| entry_of(own, k).or_else(|| entry_of(defaults, k));
    let get = |k: &str| entry(k).map(|(_, v)| v);
    let w = |k: &str| format!("{what}.{k}");
    let readiness = entry("readiness").and_then(|(k, n)| read_probe(r, &k.loc, n, &w("readiness")));
    let liveness = entry("liveness").and_then(|(k, n)| read_probe(r, &k.loc, n, &w("liveness")));
    let min_ready = get("min_ready")
        .and_then(|n| r.duration(n, &w("min_ready")))
        .or(update.monitor)
        .unwrap_or(DEFAULT_MIN_READY);
    let deadline_node = get("progress_deadline");
    let progress_deadline = deadline_node
        .and_then(|n| r.duration(n, &w("progress_deadline")))
        .unwrap_or(DEFAULT_PROGRESS_DEADLINE);
    if min_ready >= progress_deadline {
        // Point at what the user wrote: the deadline, else min_ready or the monitor it came
        // from, else the service itself (both values defaulted).
        let loc = deadline_node
            .or(get("min_ready"))
            .map(|n| n.loc.clone())
            .or_else(|| update.monitor_loc.clone())
            .unwrap_or_else(|| service_loc.clone());
        r.error(
            &loc,
            format!(
                "service {name:?}: min_ready ({}) must be shorter than progress_deadline ({}), \
                 or no rollout can ever succeed",
                crate::desired::syntax::units::format_duration(min_ready),
                crate::desired::syntax::units::format_duration(progress_deadline)
            ),
        );
    }
    let auto_revert = match get("auto_revert").and_then(|n| r.bool(n, &w("auto_revert"))) {
        Some(b) => b,
        None if update.failure_action_set => {
            update.policy.failure_action == FailureAction::Rollback
        }
        None => true,
    };
    let smoke = get("smoke").and_then(|n| read_smoke(r, n, &w("smoke")));
    let pre_deploy = get("pre_deploy").and_then(|n| read_smoke(r, n, &w("pre_deploy")));
    let hold = get("hold")
        .and_then(|n| r.bool(n, &w("hold")))
        .unwrap_or(false);
    let build_timeout = match get("build_timeout") {
        Some(n) => match r.duration(n, &w("build_timeout")) {
            Some(d) if d.is_zero() => {
                r.error(
                    &n.loc,
                    format!("{} must be longer than 0", w("build_timeout")),
                );
                DEFAULT_BUILD_TIMEOUT
            }
            Some(d) => d,
            None => DEFAULT_BUILD_TIMEOUT,
        },
        None => DEFAULT_BUILD_TIMEOUT,
    };
    let image_update = entry("update")
        .and_then(|(k, n)| super::update::read_update(r, &k.loc, n, &w("update"), image));
    BerthRead {
        policy: BerthPolicy {
            update: image_update,
            readiness,
            liveness,
            auto_revert,
            smoke,
            pre_deploy,
            hold,
            build_timeout,
            // Read by `handoff::read`, which needs the service's ports.
            handoff: None,
        },
        min_ready,
        progress_deadline,
    }
}

fn entry_of<'n>(block: Option<&'n Node>, k: &str) -> Option<&'n (crate::desired::node::Key, Node)> {
    block?.as_map()?.iter().find(|(key, _)| key.name == k)
}

/// `key` is where the probe's key is written: "no target" errors point there.
fn read_probe(r: &mut Reader<'_>, key: &Loc, n: &Node, what: &str) -> Option<Probe> {
    let entries = r.map(n, what)?;
    r.check_keys(
        entries,
        what,
        &[
            "http",
            "tcp",
            "exec",
            "interval",
            "timeout",
            "success_threshold",
            "failure_threshold",
        ],
        &[],
    );
    let targets: Vec<&str> = ["http", "tcp", "exec"]
        .into_iter()
        .filter(|k| n.get(k).is_some())
        .collect();
    let check = match targets.as_slice() {
        [] => {
            r.error(key, format!("{what} has no target: add one of http: {{port, path}}, tcp: {{port}} or exec: [command]"));
            None
        }
        [_, _, ..] => {
            r.error(
                &n.loc,
                format!(
                    "{what} has several targets ({}): use exactly one of http, tcp or exec",
                    targets.join(", ")
                ),
            );
            None
        }
        ["http"] => read_http(r, n.get("http")?, &format!("{what}.http")),
        ["tcp"] => {
            let t = n.get("tcp")?;
            let w = format!("{what}.tcp");
            if let Some(e) = r.map(t, &w) {
                r.check_keys(e, &w, &["port"], &[]);
            }
            probe_port(r, t, &w).map(|port| ProbeCheck::Tcp { port })
        }
        _ => {
            let e = n.get("exec")?;
            let w = format!("{what}.exec");
            let command = match &e.value {
                Value::Seq(_) => r.strings(e, &w),
                _ => r
                    .string(e, &w)
                    .map(|s| vec!["/bin/sh".into(), "-c".into(), s])
                    .unwrap_or_default(),
            };
            if command.is_empty() {
                r.error(&e.loc, format!("{w} needs a command"));
                None
            } else {
                Some(ProbeCheck::Exec { command })
            }
        }
    };
    let interval = n
        .get("interval")
        .and_then(|d| r.duration(d, &format!("{what}.interval")))
        .unwrap_or(Duration::from_secs(2));
    let timeout = n
        .get("timeout")
        .and_then(|d| r.duration(d, &format!("{what}.timeout")))
        .unwrap_or(Duration::from_secs(1));
    for (k, v) in [("interval", interval), ("timeout", timeout)] {
        if v.is_zero() {
            r.error(
                &n.get(k).map(|x| x.loc.clone()).unwrap_or_default(),
                format!("{what}.{k} must be longer than 0s"),
            );
        }
    }
    let threshold = |r: &mut Reader<'_>, k: &str, default: u32| -> u32 {
        match n.get(k) {
            None => default,
            Some(x) => match r.u32(x, &format!("{what}.{k}")) {
                Some(0) => {
                    r.error(&x.loc, format!("{what}.{k} must be at least 1"));
                    default
                }
                Some(v) => v,
                None => default,
            },
        }
    };
    let success_threshold = threshold(r, "success_threshold", 1);
    let failure_threshold = threshold(r, "failure_threshold", 3);
    Some(Probe {
        check: check?,
        interval,
        timeout,
        success_threshold,
        failure_threshold,
    })
}

fn probe_port(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<u16> {
    let Some(p) = n.get("port") else {
        r.error(
            &n.loc,
            format!("{what} needs port: (the container port to probe)"),
        );
        return None;
    };
    let text = r.string(p, &format!("{what}.port"))?;
    match ports::parse_port_number(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            r.invalid(p, "port", &e);
            None
        }
    }
}

fn read_http(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<ProbeCheck> {
    let e = r.map(n, what)?;
    r.check_keys(e, what, &["port", "path", "status", "body_contains"], &[]);
    let port = probe_port(r, n, what);
    let path = n
        .get("path")
        .and_then(|p| r.string(p, &format!("{what}.path")))
        .unwrap_or_else(|| "/".into());
    if !path.starts_with('/') {
        r.error(
            &n.get("path").map(|p| p.loc.clone()).unwrap_or_default(),
            format!("{what}.path must start with /, found {path:?}"),
        );
    }
    let status = match n.get("status") {
        None => (200, 399),
        Some(s) => {
            let text = r.string(s, &format!("{what}.status"))?;
            match parse_status(&text) {
                Ok(v) => v,
                Err(m) => {
                    r.error(&s.loc, format!("invalid {what}.status {}: {m}", s.shown()));
                    return None;
                }
            }
        }
    };
    let body_contains = n
        .get("body_contains")
        .and_then(|b| r.string(b, &format!("{what}.body_contains")));
    Some(ProbeCheck::Http {
        port: port?,
        path,
        status,
        body_contains,
    })
}

/// `"200"` or `"200-399"`, within 100..=599, low ≤ high.
fn parse_status(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let parse = |x: &str| {
        x.trim()
            .parse::<u16>()
            .ok()
            .filter(|v| (100..=599).contains(v))
    };
    match (parse(a), parse(b)) {
        (Some(lo), Some(hi)) if lo <= hi => Ok((lo, hi)),
        _ => Err("use a status code or an inclusive range of codes from 100 to 599, e.g. \"200\" or \"200-399\"".into()),
    }
}

fn read_smoke(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<Smoke> {
    let e = r.map(n, what)?;
    r.check_keys(e, what, &["image", "command", "timeout"], &[]);
    let image = n
        .get("image")
        .and_then(|i| r.string(i, &format!("{what}.image")));
    let command = match n.get("command") {
        None => {
            r.error(
                &n.loc,
                format!("{what} needs command: (what the one-shot container runs)"),
            );
            return None;
        }
        Some(c) => match &c.value {
            Value::Seq(_) => r.strings(c, &format!("{what}.command")),
            _ => {
                let s = r.string(c, &format!("{what}.command"))?;
                match shell_words(&s) {
                    Ok(w) => w,
                    Err(m) => {
                        r.error(&c.loc, format!("failed to split {what}.command: {m}"));
                        return None;
                    }
                }
            }
        },
    };
    let timeout = n
        .get("timeout")
        .and_then(|t| r.duration(t, &format!("{what}.timeout")))
        .unwrap_or(Duration::from_secs(60));
    Some(Smoke {
        image,
        command,
        timeout,
    })
}

/// compose's schema for device requests (berth does not send them, but a file compose
/// refuses must not deploy): `capabilities` is required, `count` is an integer or `all`,
/// and `count` and `device_ids` exclude each other.
fn check_device_requests(r: &mut Reader<'_>, n: &Node, what: &str) {
    let Some(items) = r.seq(n, what) else {
        return;
    };
    for d in items {
        if d.as_map().is_none() {
            continue;
        }
        if d.get("capabilities").is_none() {
            r.error(
                &d.loc,
                format!("each entry of {what} needs capabilities: (e.g. [gpu])"),
            );
        }
        if let Some(c) = d.get("count") {
            // compose-go casts `"1"` to a number; `all` is the only word.
            let ok = matches!(c.value, crate::desired::node::Value::Int(i) if i >= 0)
                || c.as_str()
                    .is_some_and(|t| t == "all" || t.parse::<u32>().is_ok());
            if !ok {
                r.error(
                    &c.loc,
                    format!("{what}.count must be a number or all, found {}", c.shown()),
                );
            }
            if d.get("device_ids").is_some() {
                r.error(
                    &c.loc,
                    format!("{what}: count and device_ids cannot be set together"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_status;

    #[test]
    fn status_ranges() {
        assert_eq!(parse_status("200"), Ok((200, 200)));
        assert_eq!(parse_status("200-399"), Ok((200, 399)));
        assert!(parse_status("600-100").is_err());
        assert!(parse_status("abc").is_err());
        assert!(parse_status("399-200").is_err());
    }
}
