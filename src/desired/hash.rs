//! The spec hash: a service revision's identity.
//!
//! Pure. Two services with the same hash run identical containers. The hash is SHA-256 over a
//! canonical JSON of the normalised model, so spelling does not matter (short vs long syntax,
//! key order, anchors and merge keys, list vs mapping environment) while anything that changes
//! the container does.
//!
//! In: image, command, entrypoint, environment (values included; the hash is one-way),
//! ports, expose, mounts, the service's networks with their engine names and aliases,
//! network_mode, Docker healthcheck, restart policy, labels, user, working_dir, hostname,
//! extra_hosts, dns, capabilities, privileged, read_only, tmpfs, ulimits, logging,
//! stop_signal, init, platform, runtime, security_opt, shm_size, sysctls, secret/config
//! mounts and their host sources (or a config's content), container_name, resource limits
//! (fields added later are left out of the JSON while unset, so existing hashes stay).
//!
//! Out (changing them never recreates a container): replicas, depends_on, profiles,
//! stop_grace_period (passed at stop time), `deploy.update_config`/`rollback_config`,
//! everything in `x-berth` (probes, timings, smoke, hold) except which published ports
//! `x-berth.handoff` hands to the proxy (the containers no longer publish those). `build:` is in through its
//! content hash (context after `.dockerignore`, Dockerfile, args, target, labels, `image:`).

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::model::*;

/// Bumped when the hashed fields change, so that a new berth can tell old hashes apart.
const SCHEME: &str = "berth-spec-v1";

#[derive(Serialize)]
struct HashInput<'a> {
    scheme: &'static str,
    image: &'a Option<String>,
    command: &'a Option<Vec<String>>,
    entrypoint: &'a Option<Vec<String>>,
    environment: BTreeMap<&'a str, &'a str>,
    ports: Vec<&'a Port>,
    expose: Vec<&'a str>,
    mounts: Vec<&'a Mount>,
    networks: BTreeMap<&'a str, (Option<&'a str>, &'a ServiceNetwork)>,
    network_mode: &'a Option<String>,
    healthcheck: &'a Option<Healthcheck>,
    restart: &'a Restart,
    labels: &'a BTreeMap<String, String>,
    user: &'a Option<String>,
    working_dir: &'a Option<String>,
    hostname: &'a Option<String>,
    extra_hosts: Vec<&'a (String, String)>,
    dns: &'a Vec<String>,
    cap_add: BTreeMap<&'a str, ()>,
    cap_drop: BTreeMap<&'a str, ()>,
    privileged: bool,
    read_only: bool,
    tmpfs: &'a Vec<String>,
    ulimits: &'a BTreeMap<String, Ulimit>,
    logging: &'a Option<Logging>,
    stop_signal: &'a Option<String>,
    init: &'a Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime: &'a Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    security_opt: &'a Vec<String>,
    shm_size: &'a Option<u64>,
    sysctls: &'a BTreeMap<String, String>,
    secrets: Vec<(&'a FileMount, Option<&'a FileObject>)>,
    configs: Vec<(&'a FileMount, Option<&'a FileObject>)>,
    container_name: &'a Option<String>,
    limits: &'a Limits,
    /// The build's content hash (`build:` only; absent otherwise, so that the hashes of
    /// services without `build:` stay what they were).
    #[serde(skip_serializing_if = "Option::is_none")]
    build: Option<&'a str>,
    /// Host ports the handoff proxy holds (`x-berth.handoff`): the containers do not publish them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    handed_off: Vec<u16>,
}

/// The spec hash of `svc` in `project`, as 64 hex digits.
pub fn spec_hash(project: &Project, svc: &Service) -> String {
    let mut ports: Vec<&Port> = svc.ports.iter().collect();
    ports.sort();
    ports.dedup();
    let mut mounts: Vec<&Mount> = svc.volumes.iter().collect();
    mounts.sort();
    let mut expose: Vec<&str> = svc.expose.iter().map(String::as_str).collect();
    expose.sort_unstable();
    let mut extra_hosts: Vec<&(String, String)> = svc.extra_hosts.iter().collect();
    extra_hosts.sort();
    let networks = svc
        .networks
        .iter()
        .map(|(k, n)| {
            (
                k.as_str(),
                (project.networks.get(k).map(|x| x.name.as_str()), n),
            )
        })
        .collect();
    let input = HashInput {
        scheme: SCHEME,
        image: &svc.image,
        command: &svc.command,
        entrypoint: &svc.entrypoint,
        environment: svc
            .environment
            .iter()
            .map(|(k, v)| (k.as_str(), v.value.as_str()))
            .collect(),
        ports,
        expose,
        mounts,
        networks,
        network_mode: &svc.network_mode,
        healthcheck: &svc.healthcheck,
        restart: &svc.restart,
        labels: &svc.labels,
        user: &svc.user,
        working_dir: &svc.working_dir,
        hostname: &svc.hostname,
        extra_hosts,
        dns: &svc.dns,
        cap_add: svc.cap_add.iter().map(|c| (c.as_str(), ())).collect(),
        cap_drop: svc.cap_drop.iter().map(|c| (c.as_str(), ())).collect(),
        privileged: svc.privileged,
        read_only: svc.read_only,
        tmpfs: &svc.tmpfs,
        ulimits: &svc.ulimits,
        logging: &svc.logging,
        stop_signal: &svc.stop_signal,
        init: &svc.init,
        platform: &svc.platform,
        runtime: &svc.runtime,
        security_opt: &svc.security_opt,
        shm_size: &svc.shm_size,
        sysctls: &svc.sysctls,
        secrets: files(&svc.secrets, &project.secrets),
        configs: files(&svc.configs, &project.configs),
        container_name: &svc.container_name,
        limits: &svc.limits,
        build: svc
            .build
            .as_ref()
            .map(|b| b.content_hash.as_str())
            .filter(|h| !h.is_empty()),
        handed_off: svc
            .berth
            .handoff
            .as_ref()
            .map(|h| h.ports.iter().map(|p| p.published).collect())
            .unwrap_or_default(),
    };
    // Serialising plain data into a Vec cannot fail (no maps with non-string keys, no IO).
    let bytes = serde_json::to_vec(&input).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn files<'x>(
    mounts: &'x [FileMount],
    objs: &'x BTreeMap<String, FileObject>,
) -> Vec<(&'x FileMount, Option<&'x FileObject>)> {
    mounts.iter().map(|m| (m, objs.get(&m.source))).collect()
}

/// The reference berth tags a built image with: `berth-build/<project>/<service>:<hash12>`
/// (the service's own `image:` name, when set, is part of the content hash instead, so that a
/// build never overwrites a registry tag).
pub fn built_reference(project: &str, service: &str, content_hash: &str) -> String {
    format!(
        "{}:{}",
        built_repository(project, service),
        crate::util::id::short(content_hash)
    )
}

/// The repository of a service's built images: `berth-build/<project>/<service>`.
pub fn built_repository(project: &str, service: &str) -> String {
    format!("berth-build/{project}/{}", service.to_ascii_lowercase())
}

/// Whether `reference` names an image berth built (see [`built_reference`]).
pub fn is_built_reference(reference: &str) -> bool {
    reference.starts_with("berth-build/")
}

/// Fills `spec_hash` of every service; a service that builds runs its built reference.
pub fn hash_all(state: &mut DesiredState) {
    for p in state.projects.values_mut() {
        let pname = p.name.clone();
        for s in p.services.values_mut() {
            if let Some(b) = &s.build
                && !b.content_hash.is_empty()
            {
                s.image = Some(built_reference(&pname, &s.name, &b.content_hash));
            }
        }
        let hashes: Vec<(String, String)> = p
            .services
            .values()
            .map(|s| (s.name.clone(), spec_hash(p, s)))
            .collect();
        for (name, h) in hashes {
            if let Some(s) = p.services.get_mut(&name) {
                s.spec_hash = h;
            }
        }
    }
}
