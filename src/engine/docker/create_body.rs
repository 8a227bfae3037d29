//! Pure translation of a [`ContainerCreate`] into the body of Docker's create call: mounts
//! (binds that may create their host path, volume and tmpfs options), published ports,
//! restart, health check, resources and security options.

use std::collections::HashMap;

use bollard::ClientVersion;
use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, HostConfigLogConfig, Mount, MountBindOptions,
    MountBindOptionsPropagationEnum, MountTmpfsOptions, MountType, MountVolumeOptions,
    NetworkingConfig, PortBinding as BollardPortBinding, ResourcesUlimits, RestartPolicy,
    RestartPolicyNameEnum,
};

use super::networks::endpoint_settings;
use super::{hash, nanos, non_empty};
use crate::engine::{ContainerCreate, MountSpec, PortBinding};

/// What a [`MountSpec`]'s options say, whichever syntax (`rshared` or `propagation=rshared`)
/// they came in.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct MountOptions {
    read_only: bool,
    propagation: Option<String>,
    selinux: Option<String>,
    create_host_path: Option<bool>,
    nocopy: bool,
    subpath: Option<String>,
    size: Option<i64>,
    mode: Option<i64>,
}

pub(super) fn mount_options(m: &MountSpec) -> Result<MountOptions, String> {
    const PROPAGATION: [&str; 6] = [
        "private", "rprivate", "shared", "rshared", "slave", "rslave",
    ];
    let mut o = MountOptions {
        read_only: m.read_only,
        ..MountOptions::default()
    };
    for option in &m.options {
        let (key, value) = option.split_once('=').unwrap_or((option.as_str(), ""));
        match (key, value) {
            ("ro", "") | ("readonly", "") => o.read_only = true,
            ("rw", "") | ("cached" | "delegated" | "consistent", "") => {}
            ("nocopy", "") => o.nocopy = true,
            (p, "") if PROPAGATION.contains(&p) => o.propagation = Some(p.to_owned()),
            ("propagation", p) if PROPAGATION.contains(&p) => o.propagation = Some(p.to_owned()),
            (s @ ("z" | "Z"), "") | ("selinux", s @ ("z" | "Z")) => o.selinux = Some(s.to_owned()),
            ("create_host_path", "true") => o.create_host_path = Some(true),
            ("create_host_path", "false") => o.create_host_path = Some(false),
            ("subpath", s) if !s.is_empty() => o.subpath = Some(s.to_owned()),
            ("size", s) => {
                o.size = Some(
                    s.parse()
                        .map_err(|_| format!("mount {}: size {s:?} is not bytes", m.target))?,
                );
            }
            ("mode", s) => {
                o.mode = Some(
                    i64::from_str_radix(s, 8)
                        .map_err(|_| format!("mount {}: mode {s:?} is not octal", m.target))?,
                );
            }
            _ => return Err(format!("mount {}: unknown option {option:?}", m.target)),
        }
    }
    Ok(o)
}

pub(super) fn propagation(p: &str) -> MountBindOptionsPropagationEnum {
    match p {
        "private" => MountBindOptionsPropagationEnum::PRIVATE,
        "rprivate" => MountBindOptionsPropagationEnum::RPRIVATE,
        "shared" => MountBindOptionsPropagationEnum::SHARED,
        "rshared" => MountBindOptionsPropagationEnum::RSHARED,
        "slave" => MountBindOptionsPropagationEnum::SLAVE,
        "rslave" => MountBindOptionsPropagationEnum::RSLAVE,
        _ => MountBindOptionsPropagationEnum::EMPTY,
    }
}

/// Mounts as Docker wants them: `HostConfig.Mounts`, except binds that may create their host
/// path or need an SELinux relabel, which only `HostConfig.Binds` can express (moby#43483; compose
/// does the same). A bind creates its missing host directory unless `create_host_path=false`.
pub(super) fn host_mounts(
    mounts: &[MountSpec],
    api: ClientVersion,
) -> Result<(Vec<String>, Vec<Mount>), String> {
    let mut binds = Vec::new();
    let mut out = Vec::new();
    for m in mounts {
        let o = mount_options(m)?;
        match m.kind.as_str() {
            "bind" => {
                let source = m
                    .source
                    .clone()
                    .ok_or_else(|| format!("bind mount {} has no source", m.target))?;
                if o.create_host_path != Some(false) || o.selinux.is_some() {
                    let mut opts = Vec::new();
                    if o.read_only {
                        opts.push("ro".to_owned());
                    }
                    opts.extend(o.propagation.clone());
                    opts.extend(o.selinux.clone());
                    let mut bind = format!("{source}:{}", m.target);
                    if !opts.is_empty() {
                        bind = format!("{bind}:{}", opts.join(","));
                    }
                    binds.push(bind);
                } else {
                    out.push(Mount {
                        typ: Some(MountType::BIND),
                        source: Some(source),
                        target: Some(m.target.clone()),
                        read_only: Some(o.read_only),
                        bind_options: o.propagation.as_deref().map(|p| MountBindOptions {
                            propagation: Some(propagation(p)),
                            ..MountBindOptions::default()
                        }),
                        ..Mount::default()
                    });
                }
            }
            "volume" => {
                if o.subpath.is_some()
                    && api
                        < (ClientVersion {
                            major_version: 1,
                            minor_version: 45,
                        })
                {
                    return Err(format!(
                        "volume mount {}: subpath needs Docker API 1.45 or newer (engine speaks {api})",
                        m.target
                    ));
                }
                out.push(Mount {
                    typ: Some(MountType::VOLUME),
                    source: m.source.clone(),
                    target: Some(m.target.clone()),
                    read_only: Some(o.read_only),
                    volume_options: (o.nocopy || o.subpath.is_some()).then(|| MountVolumeOptions {
                        no_copy: o.nocopy.then_some(true),
                        subpath: o.subpath.clone(),
                        ..MountVolumeOptions::default()
                    }),
                    ..Mount::default()
                });
            }
            "tmpfs" => out.push(Mount {
                typ: Some(MountType::TMPFS),
                target: Some(m.target.clone()),
                read_only: Some(o.read_only),
                tmpfs_options: (o.size.is_some() || o.mode.is_some()).then_some(
                    MountTmpfsOptions {
                        size_bytes: o.size,
                        mode: o.mode,
                        ..MountTmpfsOptions::default()
                    },
                ),
                ..Mount::default()
            }),
            other => return Err(format!("mount {}: unknown kind {other:?}", m.target)),
        }
    }
    Ok((binds, out))
}

pub(super) fn port_bindings(
    ports: &[PortBinding],
) -> HashMap<String, Option<Vec<BollardPortBinding>>> {
    let mut map: HashMap<String, Option<Vec<BollardPortBinding>>> = HashMap::new();
    for p in ports {
        map.entry(format!("{}/{}", p.target, p.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(BollardPortBinding {
                host_ip: p.host_ip.clone(),
                host_port: p.published.map(|first| match p.published_end {
                    Some(last) if last > first => format!("{first}-{last}"),
                    _ => first.to_string(),
                }),
            });
    }
    map
}

/// The create body for `spec`: everything but networks after the first.
pub(super) fn create_body(
    spec: &ContainerCreate,
    api: ClientVersion,
) -> Result<ContainerCreateBody, String> {
    let (binds, mounts) = host_mounts(&spec.mounts, api)?;
    let restart = match spec.restart.as_str() {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => return Err(format!("unknown restart policy {other:?}")),
    };
    let tmpfs: HashMap<String, String> = spec
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, opts)) => (path.to_owned(), opts.to_owned()),
            None => (t.clone(), String::new()),
        })
        .collect();
    let host_config = HostConfig {
        binds: non_empty(binds),
        mounts: non_empty(mounts),
        port_bindings: (!spec.ports.is_empty()).then(|| port_bindings(&spec.ports)),
        network_mode: spec.network_mode.clone(),
        restart_policy: Some(RestartPolicy {
            name: Some(restart),
            maximum_retry_count: spec.restart_max.map(i64::from),
        }),
        extra_hosts: non_empty(spec.extra_hosts.clone()),
        dns: non_empty(spec.dns.clone()),
        cap_add: non_empty(spec.cap_add.clone()),
        cap_drop: non_empty(spec.cap_drop.clone()),
        privileged: spec.privileged.then_some(true),
        readonly_rootfs: spec.read_only.then_some(true),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        ulimits: non_empty(
            spec.ulimits
                .iter()
                .map(|(name, (soft, hard))| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(*soft),
                    hard: Some(*hard),
                })
                .collect(),
        ),
        log_config: (spec.log_driver.is_some() || !spec.log_options.is_empty()).then(|| {
            HostConfigLogConfig {
                typ: spec.log_driver.clone(),
                config: Some(hash(&spec.log_options)),
            }
        }),
        init: spec.init,
        shm_size: spec.shm_size,
        sysctls: (!spec.sysctls.is_empty()).then(|| hash(&spec.sysctls)),
        nano_cpus: spec.nano_cpus,
        memory: spec.memory,
        pids_limit: spec.pids_limit,
        runtime: spec.runtime.clone(),
        security_opt: non_empty(spec.security_opt.clone()),
        ..HostConfig::default()
    };
    let networking_config = spec.networks.first().map(|n| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(n.network.clone(), endpoint_settings(n))])),
    });
    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: spec.command.clone(),
        entrypoint: spec.entrypoint.clone(),
        env: non_empty(spec.env.clone()),
        labels: Some(hash(&spec.labels)),
        user: spec.user.clone(),
        working_dir: spec.working_dir.clone(),
        hostname: spec.hostname.clone(),
        exposed_ports: non_empty(spec.exposed.clone()),
        healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
            test: Some(h.test.clone()),
            interval: h.interval.map(nanos),
            timeout: h.timeout.map(nanos),
            retries: h.retries.map(i64::from),
            start_period: h.start_period.map(nanos),
            start_interval: h.start_interval.map(nanos),
        }),
        stop_signal: spec.stop_signal.clone(),
        stop_timeout: spec.stop_timeout,
        host_config: Some(host_config),
        networking_config,
        ..ContainerCreateBody::default()
    })
}
