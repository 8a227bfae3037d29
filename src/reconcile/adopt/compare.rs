//! Does a container run with what berth would create it with? Compares the create body berth
//! would send ([`ContainerCreate`], from `container_spec`) with a container's effective
//! configuration ([`EffectiveConfig`]: inspect of the container and its image), field by field,
//! the way Docker fills in what a create leaves out (the image's `CMD`, `ENV`, `LABEL`s …).
//!
//! Pure. An empty answer means "the same container": it can be adopted in place. Compared:
//! the image ID, entrypoint and command, environment, user labels (berth's and compose's own
//! labels are bookkeeping, not configuration), user and working directory, published ports,
//! mounts (bind, volume, tmpfs; an image's own anonymous `VOLUME`s are not the spec's), networks
//! with aliases and static addresses or `network_mode`, restart policy, healthcheck, and the
//! host settings (capabilities, privileged, read-only root, extra hosts, DNS, init, sysctls,
//! ulimits, limits, runtime, security options, stop signal, log driver, shm size, hostname) the
//! spec sets. Not compared: exposed ports (they publish nothing) and the stop timeout (berth
//! passes the grace period with every stop).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::engine::effective::EffectiveConfig;
use crate::engine::{ContainerCreate, HealthcheckSpec};

/// One way a container differs from what berth would create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// It runs another image.
    Image {
        /// The desired image ID.
        want: String,
        /// The one it runs.
        have: String,
    },
    /// An environment variable differs; values are never shown (they may be secrets).
    Env {
        /// The variable.
        key: String,
        /// How.
        change: Change,
    },
    /// A user label differs.
    Label {
        /// The label.
        key: String,
        /// How.
        change: Change,
    },
    /// Any other setting: what berth would set, what the container has.
    Setting {
        /// The compose key it comes from (`command`, `ports`, `restart` …).
        field: &'static str,
        /// What berth would create.
        want: String,
        /// What the container has.
        have: String,
    },
}

/// How a keyed value (a variable, a label) differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Wanted, not set in the container.
    Missing,
    /// Set in the container, not wanted.
    Extra,
    /// Set to another value.
    Value,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = |c: &Change| match c {
            Change::Missing => "not set in the container",
            Change::Extra => "set in the container only",
            Change::Value => "another value",
        };
        match self {
            Difference::Image { want, have } => write!(
                f,
                "image {} (runs {})",
                crate::util::id::short(want),
                crate::util::id::short(have)
            ),
            Difference::Env { key, change } => write!(f, "environment {key}: {}", how(change)),
            Difference::Label { key, change } => write!(f, "label {key}: {}", how(change)),
            Difference::Setting { field, want, have } => write!(f, "{field} {want} (has {have})"),
        }
    }
}

/// What differs between `want` and the container (empty: it is what berth would create).
pub fn differences(want: &ContainerCreate, have: &EffectiveConfig) -> Vec<Difference> {
    let img = &have.image;
    let c = &have.container;
    let mut out = Vec::new();
    if want.image != c.image {
        out.push(Difference::Image {
            want: want.image.clone(),
            have: c.image.clone(),
        });
    }
    // Docker's merge: an entrypoint given at create drops the image's CMD.
    let entrypoint = want.entrypoint.clone().or_else(|| img.entrypoint.clone());
    let command = match (&want.command, &want.entrypoint) {
        (Some(cmd), _) => Some(cmd.clone()),
        (None, Some(_)) => None,
        (None, None) => img.cmd.clone(),
    };
    setting(
        &mut out,
        "entrypoint",
        argv(&entrypoint),
        argv(&c.entrypoint),
    );
    setting(&mut out, "command", argv(&command), argv(&c.command));
    env(&mut out, want, have);
    labels(&mut out, want, have);
    setting(
        &mut out,
        "user",
        opt(want.user.as_ref().or(img.user.as_ref())),
        opt(c.user.as_ref()),
    );
    setting(
        &mut out,
        "working_dir",
        opt(want.working_dir.as_ref().or(img.working_dir.as_ref())),
        opt(c.working_dir.as_ref()),
    );
    setting(&mut out, "ports", ports(&want.ports), ports(&c.ports));
    let image_volumes: BTreeSet<&str> = img
        .volumes
        .iter()
        .map(String::as_str)
        .filter(|t| !want.mounts.iter().any(|m| m.target == *t))
        .collect();
    setting(
        &mut out,
        "volumes",
        mounts(want, &BTreeSet::new(), false),
        mounts(c, &image_volumes, true),
    );
    setting(&mut out, "tmpfs", sorted(&want.tmpfs), sorted(&c.tmpfs));
    networks(&mut out, want, c);
    let restart = |r: &str, max: Option<u32>| match (r, max) {
        ("on-failure", Some(n)) => format!("on-failure:{n}"),
        (r, _) => r.to_string(),
    };
    setting(
        &mut out,
        "restart",
        restart(&want.restart, want.restart_max),
        restart(&c.restart, c.restart_max),
    );
    setting(
        &mut out,
        "healthcheck",
        health(&merge_health(
            want.healthcheck.as_ref(),
            img.healthcheck.as_ref(),
        )),
        health(&c.healthcheck),
    );
    setting(
        &mut out,
        "cap_add",
        sorted(&want.cap_add),
        sorted(&c.cap_add),
    );
    setting(
        &mut out,
        "cap_drop",
        sorted(&want.cap_drop),
        sorted(&c.cap_drop),
    );
    setting(
        &mut out,
        "privileged",
        want.privileged.to_string(),
        c.privileged.to_string(),
    );
    setting(
        &mut out,
        "read_only",
        want.read_only.to_string(),
        c.read_only.to_string(),
    );
    setting(
        &mut out,
        "extra_hosts",
        sorted(
            &want
                .extra_hosts
                .iter()
                .map(|h| h.replacen('=', ":", 1))
                .collect::<Vec<_>>(),
        ),
        sorted(
            &c.extra_hosts
                .iter()
                .map(|h| h.replacen('=', ":", 1))
                .collect::<Vec<_>>(),
        ),
    );
    setting(&mut out, "dns", sorted(&want.dns), sorted(&c.dns));
    setting(
        &mut out,
        "init",
        want.init.unwrap_or(false).to_string(),
        c.init.unwrap_or(false).to_string(),
    );
    setting(&mut out, "sysctls", map(&want.sysctls), map(&c.sysctls));
    setting(
        &mut out,
        "ulimits",
        format!("{:?}", want.ulimits),
        format!("{:?}", c.ulimits),
    );
    setting(&mut out, "cpus", num(want.nano_cpus), num(c.nano_cpus));
    setting(&mut out, "mem_limit", num(want.memory), num(c.memory));
    setting(
        &mut out,
        "pids_limit",
        num(want.pids_limit),
        num(c.pids_limit),
    );
    let runtime = |r: Option<&String>| match r.map(String::as_str) {
        None | Some("") | Some("runc") => "runc".to_string(),
        Some(r) => r.to_string(),
    };
    setting(
        &mut out,
        "runtime",
        runtime(want.runtime.as_ref()),
        runtime(c.runtime.as_ref()),
    );
    setting(
        &mut out,
        "security_opt",
        sorted(&want.security_opt),
        sorted(&c.security_opt),
    );
    setting(
        &mut out,
        "stop_signal",
        opt(want.stop_signal.as_ref().or(img.stop_signal.as_ref())),
        opt(c.stop_signal.as_ref().or(img.stop_signal.as_ref())),
    );
    // Left out of a create, these take the daemon's defaults: compared only when set.
    if want.log_driver.is_some() {
        setting(
            &mut out,
            "logging",
            opt(want.log_driver.as_ref()),
            opt(c.log_driver.as_ref()),
        );
    }
    if want.shm_size.is_some() {
        setting(&mut out, "shm_size", num(want.shm_size), num(c.shm_size));
    }
    if want.hostname.is_some() {
        setting(
            &mut out,
            "hostname",
            opt(want.hostname.as_ref()),
            opt(c.hostname.as_ref()),
        );
    }
    out
}

fn setting(out: &mut Vec<Difference>, field: &'static str, want: String, have: String) {
    if want != have {
        out.push(Difference::Setting { field, want, have });
    }
}

fn argv(v: &Option<Vec<String>>) -> String {
    match v {
        Some(v) if !v.is_empty() => format!("{v:?}"),
        _ => "(none)".into(),
    }
}

fn opt(v: Option<&String>) -> String {
    v.filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| "(none)".into())
}

fn num(v: Option<i64>) -> String {
    v.filter(|n| *n != 0)
        .map_or_else(|| "(none)".into(), |n| n.to_string())
}

fn sorted(v: &[String]) -> String {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    format!("{v:?}")
}

fn map(m: &BTreeMap<String, String>) -> String {
    format!("{m:?}")
}

fn kv(entries: &[String]) -> BTreeMap<&str, &str> {
    entries
        .iter()
        .map(|e| e.split_once('=').unwrap_or((e.as_str(), "")))
        .collect()
}

/// The container's variables against the image's overlaid with the spec's (Docker's merge).
fn env(out: &mut Vec<Difference>, want: &ContainerCreate, have: &EffectiveConfig) {
    let mut wanted = kv(&have.image.env);
    wanted.extend(kv(&want.env));
    let got = kv(&have.container.env);
    for (k, v) in &wanted {
        let change = match got.get(k) {
            None => Change::Missing,
            Some(g) if g != v => Change::Value,
            Some(_) => continue,
        };
        out.push(Difference::Env {
            key: (*k).to_string(),
            change,
        });
    }
    for k in got.keys().filter(|k| !wanted.contains_key(*k)) {
        out.push(Difference::Env {
            key: (*k).to_string(),
            change: Change::Extra,
        });
    }
}

/// berth's and compose's labels are bookkeeping; the image's own labels come with the image.
fn user_label(k: &str) -> bool {
    !k.starts_with("berth.") && !k.starts_with("com.docker.compose.")
}

fn labels(out: &mut Vec<Difference>, want: &ContainerCreate, have: &EffectiveConfig) {
    let mut wanted: BTreeMap<&str, &str> = have
        .image
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    wanted.extend(want.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    wanted.retain(|k, _| user_label(k));
    let got: BTreeMap<&str, &str> = have
        .container
        .labels
        .iter()
        .filter(|(k, _)| user_label(k))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for (k, v) in &wanted {
        let change = match got.get(k) {
            None => Change::Missing,
            Some(g) if g != v => Change::Value,
            Some(_) => continue,
        };
        out.push(Difference::Label {
            key: (*k).to_string(),
            change,
        });
    }
    for k in got.keys().filter(|k| !wanted.contains_key(*k)) {
        out.push(Difference::Label {
            key: (*k).to_string(),
            change: Change::Extra,
        });
    }
}

fn ports(ports: &[crate::engine::PortBinding]) -> String {
    let set: BTreeSet<String> = ports
        .iter()
        .map(|p| {
            let ip = match p.host_ip.as_deref() {
                None | Some("") | Some("0.0.0.0") => String::new(),
                Some(ip) => format!("{ip}:"),
            };
            match p.published {
                Some(h) => format!("{ip}{h}:{}/{}", p.target, p.protocol),
                None => format!("{ip}{}/{}", p.target, p.protocol),
            }
        })
        .collect();
    format!("{set:?}")
}

/// Bind, volume and tmpfs mounts as `kind source:target[:ro]`. On the container's side
/// (`container`), an anonymous volume's generated name is left out, and so are the volumes
/// at `skip`: the image's own anonymous `VOLUME`s the spec does not mount (Docker makes those
/// for every container of the image).
fn mounts(spec: &ContainerCreate, skip: &BTreeSet<&str>, container: bool) -> String {
    let set: BTreeSet<String> = spec
        .mounts
        .iter()
        .filter(|m| !(m.kind == "volume" && skip.contains(m.target.as_str())))
        .map(|m| {
            let source = match (m.kind.as_str(), &m.source) {
                ("volume", Some(s)) if container && looks_anonymous(s) => "",
                (_, Some(s)) => s.as_str(),
                (_, None) => "",
            };
            let ro = if m.read_only { ":ro" } else { "" };
            format!("{} {source}:{}{ro}", m.kind, m.target)
        })
        .collect();
    format!("{set:?}")
}

/// Docker names an anonymous volume with 64 hex digits.
fn looks_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

fn networks(out: &mut Vec<Difference>, want: &ContainerCreate, c: &ContainerCreate) {
    if let Some(mode) = &want.network_mode {
        setting(
            out,
            "network_mode",
            mode.clone(),
            opt(c.network_mode.as_ref()),
        );
        return;
    }
    // Without one, the container must be on its networks, not in host, none or another's.
    if let Some(mode) = c.network_mode.as_deref()
        && (mode == "host" || mode == "none" || mode.starts_with("container:"))
    {
        setting(out, "network_mode", "(none)".into(), mode.to_string());
        return;
    }
    let names = |n: &[crate::engine::NetworkAttach]| {
        n.iter().map(|a| a.network.clone()).collect::<BTreeSet<_>>()
    };
    setting(
        out,
        "networks",
        format!("{:?}", names(&want.networks)),
        format!("{:?}", names(&c.networks)),
    );
    for w in &want.networks {
        let Some(h) = c.networks.iter().find(|h| h.network == w.network) else {
            continue;
        };
        // Docker and compose add their own aliases (the short ID, the container name).
        let missing: Vec<&String> = w
            .aliases
            .iter()
            .filter(|a| !h.aliases.contains(a))
            .collect();
        if !missing.is_empty() {
            out.push(Difference::Setting {
                field: "aliases",
                want: format!("{} on {}", w.aliases.join(","), w.network),
                have: h.aliases.join(","),
            });
        }
        if w.ipv4_address.is_some() && w.ipv4_address != h.ipv4_address {
            setting(
                out,
                "ipv4_address",
                opt(w.ipv4_address.as_ref()),
                opt(h.ipv4_address.as_ref()),
            );
        }
        if w.ipv6_address.is_some() && w.ipv6_address != h.ipv6_address {
            setting(
                out,
                "ipv6_address",
                opt(w.ipv6_address.as_ref()),
                opt(h.ipv6_address.as_ref()),
            );
        }
    }
}

/// Docker's merge of a create's healthcheck with the image's: an empty test or a zero field
/// takes the image's.
fn merge_health(
    want: Option<&HealthcheckSpec>,
    image: Option<&HealthcheckSpec>,
) -> Option<HealthcheckSpec> {
    match (want, image) {
        (None, i) => i.cloned(),
        (Some(w), None) => Some(w.clone()),
        (Some(w), Some(i)) => Some(HealthcheckSpec {
            test: if w.test.is_empty() {
                i.test.clone()
            } else {
                w.test.clone()
            },
            interval: w.interval.or(i.interval),
            timeout: w.timeout.or(i.timeout),
            retries: w.retries.or(i.retries),
            start_period: w.start_period.or(i.start_period),
            start_interval: w.start_interval.or(i.start_interval),
        }),
    }
}

fn health(h: &Option<HealthcheckSpec>) -> String {
    match h {
        None => "(none)".into(),
        Some(h) if h.test.first().is_some_and(|t| t == "NONE") => "disabled".into(),
        Some(h) => format!(
            "{:?} every {:?} timeout {:?} retries {:?} start {:?}",
            h.test, h.interval, h.timeout, h.retries, h.start_period
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::effective::ImageDefaults;
    use crate::engine::{MountSpec, NetworkAttach, PortBinding};

    /// What berth would create for a small web service.
    fn spec() -> ContainerCreate {
        ContainerCreate {
            name: "shop-web-1".into(),
            image: "sha256:app1".into(),
            env: vec!["MODE=prod".into(), "TOKEN=s3cret".into()],
            labels: BTreeMap::from([
                ("berth.managed".into(), "true".into()),
                ("com.docker.compose.project".into(), "shop".into()),
                ("team".into(), "web".into()),
            ]),
            ports: vec![PortBinding {
                target: 80,
                protocol: "tcp".into(),
                host_ip: None,
                published: Some(8080),
                published_end: None,
            }],
            mounts: vec![MountSpec {
                kind: "volume".into(),
                source: Some("shop_data".into()),
                target: "/data".into(),
                read_only: false,
                options: Vec::new(),
            }],
            networks: vec![NetworkAttach {
                network: "shop_default".into(),
                aliases: vec!["web".into()],
                ipv4_address: None,
                ipv6_address: None,
            }],
            restart: "unless-stopped".into(),
            ..ContainerCreate::default()
        }
    }

    /// The same container as docker compose 1.29 made it and Docker reports it: the image's
    /// defaults filled in, compose's labels and aliases, its own name and network mode.
    fn compose_made() -> EffectiveConfig {
        let mut c = spec();
        c.name = "shop_web_1".into();
        c.command = Some(vec!["serve".into()]);
        c.env = vec![
            "TOKEN=s3cret".into(),
            "MODE=prod".into(),
            "PATH=/usr/bin".into(),
        ];
        c.labels = BTreeMap::from([
            ("com.docker.compose.project".into(), "shop".into()),
            ("com.docker.compose.version".into(), "1.29.2".into()),
            ("team".into(), "web".into()),
            ("org.opencontainers.image.title".into(), "app".into()),
        ]);
        c.ports[0].host_ip = Some("0.0.0.0".into());
        c.mounts.push(MountSpec {
            kind: "volume".into(),
            source: Some("ab".repeat(32)),
            target: "/cache".into(),
            read_only: false,
            options: Vec::new(),
        });
        c.networks[0].aliases = vec!["web".into(), "4f2a1c0e9b7d".into()];
        c.network_mode = Some("shop_default".into());
        c.runtime = Some("runc".into());
        c.log_driver = Some("json-file".into());
        c.shm_size = Some(67_108_864);
        c.hostname = Some("4f2a1c0e9b7d".into());
        EffectiveConfig {
            container: c,
            image: ImageDefaults {
                cmd: Some(vec!["serve".into()]),
                env: vec!["PATH=/usr/bin".into()],
                labels: BTreeMap::from([("org.opencontainers.image.title".into(), "app".into())]),
                volumes: vec!["/cache".into()],
                ..ImageDefaults::default()
            },
        }
    }

    #[test]
    fn what_compose_made_from_the_same_spec_matches() {
        assert_eq!(differences(&spec(), &compose_made()), []);
    }

    #[test]
    fn every_setting_that_changes_what_runs_is_a_difference_naming_its_field() {
        type Mutation = (&'static str, fn(&mut ContainerCreate));
        let mutations: &[Mutation] = &[
            ("command", |c| c.command = Some(vec!["worker".into()])),
            ("entrypoint", |c| {
                c.entrypoint = Some(vec!["/bin/sh".into()])
            }),
            ("user", |c| c.user = Some("1000".into())),
            ("working_dir", |c| c.working_dir = Some("/srv".into())),
            ("ports", |c| c.ports[0].published = Some(9090)),
            ("ports", |c| c.ports[0].host_ip = Some("127.0.0.1".into())),
            ("volumes", |c| c.mounts[0].read_only = true),
            ("volumes", |c| {
                c.mounts[0].source = Some("other_data".into())
            }),
            ("volumes", |c| c.mounts.remove(0).kind.clear()),
            ("tmpfs", |c| c.tmpfs = vec!["/run".into()]),
            ("networks", |c| c.networks[0].network = "shop_back".into()),
            ("aliases", |c| c.networks[0].aliases = vec!["www".into()]),
            ("network_mode", |c| c.network_mode = Some("host".into())),
            ("restart", |c| c.restart = "always".into()),
            ("healthcheck", |c| {
                c.healthcheck = Some(crate::engine::HealthcheckSpec {
                    test: vec!["CMD".into(), "true".into()],
                    interval: Some(Duration::from_secs(5)),
                    timeout: None,
                    retries: None,
                    start_period: None,
                    start_interval: None,
                })
            }),
            ("cap_add", |c| c.cap_add = vec!["NET_ADMIN".into()]),
            ("cap_drop", |c| c.cap_drop = vec!["ALL".into()]),
            ("privileged", |c| c.privileged = true),
            ("read_only", |c| c.read_only = true),
            ("extra_hosts", |c| {
                c.extra_hosts = vec!["db:10.0.0.2".into()]
            }),
            ("dns", |c| c.dns = vec!["1.1.1.1".into()]),
            ("init", |c| c.init = Some(true)),
            ("sysctls", |c| {
                c.sysctls.insert("net.core.somaxconn".into(), "1024".into());
            }),
            ("ulimits", |c| {
                c.ulimits.insert("nofile".into(), (1024, 2048));
            }),
            ("cpus", |c| c.nano_cpus = Some(500_000_000)),
            ("mem_limit", |c| c.memory = Some(1 << 30)),
            ("pids_limit", |c| c.pids_limit = Some(100)),
            ("runtime", |c| c.runtime = Some("nvidia".into())),
            ("security_opt", |c| {
                c.security_opt = vec!["no-new-privileges:true".into()]
            }),
            ("stop_signal", |c| c.stop_signal = Some("SIGINT".into())),
        ];
        for (field, mutate) in mutations {
            let mut have = compose_made();
            mutate(&mut have.container);
            let d = differences(&spec(), &have);
            assert!(
                d.iter()
                    .any(|d| matches!(d, Difference::Setting { field: f, .. } if f == field)),
                "{field}: {d:?}"
            );
        }
        let mut have = compose_made();
        have.container.image = "sha256:app2".into();
        assert!(matches!(
            differences(&spec(), &have)[..],
            [Difference::Image { .. }]
        ));
    }

    #[test]
    fn environment_and_labels_are_compared_by_key_and_values_are_never_shown() {
        let mut have = compose_made();
        have.container.env = vec!["TOKEN=0ld".into(), "PATH=/usr/bin".into(), "X=1".into()];
        have.container.labels.insert("owner".into(), "ops".into());
        have.container.labels.remove("team");
        let d = differences(&spec(), &have);
        let text: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "environment MODE: not set in the container",
                "environment TOKEN: another value",
                "environment X: set in the container only",
                "label team: not set in the container",
                "label owner: set in the container only",
            ]
        );
        assert!(!text.join(" ").contains("s3cret") && !text.join(" ").contains("0ld"));
    }

    #[test]
    fn docker_merges_the_image_defaults_as_a_create_leaves_them_out() {
        // An entrypoint given at create drops the image's CMD.
        let mut want = spec();
        want.entrypoint = Some(vec!["/entry".into()]);
        let mut have = compose_made();
        have.container.entrypoint = Some(vec!["/entry".into()]);
        assert!(!differences(&want, &have).is_empty(), "CMD kept: differs");
        have.container.command = None;
        assert_eq!(differences(&want, &have), []);
        // The image's user and healthcheck are what a create without them gets.
        let mut have = compose_made();
        have.image.user = Some("app".into());
        have.container.user = Some("app".into());
        assert_eq!(differences(&spec(), &have), []);
    }
}
