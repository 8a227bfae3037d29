//! The top level of a Compose document: name, services, networks, volumes, secrets, configs,
//! profiles, and the references from services to the top-level objects.
//!
//! Pure (files through `Ctx`). Produces a [`Project`] whose services still lack `job` and
//! `spec_hash`; `validate` and `hash` complete them once every project is known.

use std::collections::{BTreeMap, BTreeSet};

use super::Ctx;
use super::read::Reader;
use super::service::{convert_service, resolve};
use crate::desired::diag::{Diagnostics, Loc};
use crate::desired::model::*;
use crate::desired::node::{Key, Node};
use crate::desired::syntax::suggest;

const TOP_KEYS: &[&str] = &[
    "version", "name", "services", "networks", "volumes", "secrets", "configs", "include",
];

/// Converts one merged document into a project named `name` (already validated by the
/// loader). `files` are the Compose files, relative to the root.
pub fn convert_project(
    doc: &Node,
    name: &str,
    files: Vec<String>,
    ctx: &Ctx<'_>,
    diags: &mut Diagnostics,
) -> Option<Project> {
    let mut r = Reader { diags };
    let top = r.map(doc, "the Compose file")?;
    r.check_keys(top, "", TOP_KEYS, &[]);
    for (k, _) in top {
        if k.name == "version" {
            r.warning(
                &k.loc,
                "version is obsolete and ignored, as in docker compose",
            );
        }
    }
    let networks = read_networks(&mut r, doc.get("networks"), name);
    let volumes = read_volumes(&mut r, doc.get("volumes"), name);
    let secrets = read_file_objects(&mut r, doc.get("secrets"), "secrets", ctx);
    let configs = read_file_objects(&mut r, doc.get("configs"), "configs", ctx);

    let defaults = doc.get("x-berth");
    super::handoff::refuse_project_default(&mut r, defaults);
    let placement = super::placement::read(&mut r, defaults);
    let mut services = BTreeMap::new();
    let mut inactive_services = Vec::new();
    match doc.get("services") {
        None => r.error(
            &Loc::new(doc.loc.file.clone(), 1, 1),
            "the Compose file has no services: mapping",
        ),
        Some(s) => {
            for (key, node) in r.map(s, "services").unwrap_or_default() {
                let Some(svc) = convert_service(key, node, defaults, ctx, r.diags) else {
                    continue;
                };
                check_references(&mut r, node, &svc, &networks, &volumes, &secrets, &configs);
                let active = svc.profiles.is_empty()
                    || svc
                        .profiles
                        .iter()
                        .any(|p| ctx.profiles.iter().any(|a| a == p || a == "*"));
                if active {
                    services.insert(key.name.clone(), svc);
                } else {
                    inactive_services.push(key.name.clone());
                }
            }
        }
    }
    Some(Project {
        name_source: crate::desired::model::NameSource::Directory,
        name: name.to_string(),
        dir: ctx.project_dir.to_path_buf(),
        files,
        services,
        inactive_services,
        networks,
        volumes,
        secrets,
        configs,
        placement,
    })
}

fn read_networks(r: &mut Reader<'_>, n: Option<&Node>, project: &str) -> BTreeMap<String, Network> {
    let mut out = BTreeMap::new();
    out.insert(
        "default".to_string(),
        Network {
            name: format!("{project}_default"),
            ..Network::default()
        },
    );
    let Some(n) = n else { return out };
    for (k, v) in r.map(n, "networks").unwrap_or_default() {
        let what = format!("networks.{}", k.name);
        let mut net = Network::default();
        if let Some(e) = r.map(v, &what) {
            r.check_keys(
                e,
                &what,
                &[
                    "driver",
                    "driver_opts",
                    "external",
                    "name",
                    "labels",
                    "internal",
                    "ipam",
                    "attachable",
                    "enable_ipv6",
                ],
                &["enable_ipv4"],
            );
            read_common(
                r,
                v,
                &what,
                &mut net.driver,
                &mut net.driver_opts,
                &mut net.external,
                &mut net.labels,
            );
            net.internal = v
                .get("internal")
                .and_then(|b| r.bool(b, &format!("{what}.internal")))
                .unwrap_or(false);
            net.attachable = v
                .get("attachable")
                .and_then(|b| r.bool(b, &format!("{what}.attachable")))
                .unwrap_or(false);
            net.enable_ipv6 = v
                .get("enable_ipv6")
                .and_then(|b| r.bool(b, &format!("{what}.enable_ipv6")))
                .unwrap_or(false);
            net.ipam = v
                .get("ipam")
                .and_then(|i| read_ipam(r, i, &format!("{what}.ipam")));
        }
        let explicit = v
            .get("name")
            .and_then(|x| r.string(x, &format!("{what}.name")))
            .or_else(|| legacy_external_name(r, v, &what));
        net.name = engine_name(project, k, explicit, net.external);
        out.insert(k.name.clone(), net);
    }
    out
}

fn read_volumes(r: &mut Reader<'_>, n: Option<&Node>, project: &str) -> BTreeMap<String, Volume> {
    let mut out = BTreeMap::new();
    let Some(n) = n else { return out };
    for (k, v) in r.map(n, "volumes").unwrap_or_default() {
        let what = format!("volumes.{}", k.name);
        let mut vol = Volume::default();
        if let Some(e) = r.map(v, &what) {
            r.check_keys(
                e,
                &what,
                &["driver", "driver_opts", "external", "name", "labels"],
                &[],
            );
            read_common(
                r,
                v,
                &what,
                &mut vol.driver,
                &mut vol.driver_opts,
                &mut vol.external,
                &mut vol.labels,
            );
        }
        let explicit = v
            .get("name")
            .and_then(|x| r.string(x, &format!("{what}.name")))
            .or_else(|| legacy_external_name(r, v, &what));
        vol.name = engine_name(project, k, explicit, vol.external);
        out.insert(k.name.clone(), vol);
    }
    out
}

fn read_common(
    r: &mut Reader<'_>,
    v: &Node,
    what: &str,
    driver: &mut Option<String>,
    opts: &mut BTreeMap<String, String>,
    external: &mut bool,
    labels: &mut BTreeMap<String, String>,
) {
    *driver = v
        .get("driver")
        .and_then(|x| r.string(x, &format!("{what}.driver")));
    *opts = v
        .get("driver_opts")
        .map(|x| r.string_map(x, &format!("{what}.driver_opts")))
        .unwrap_or_default();
    *external = read_external(r, v, what);
    *labels = v
        .get("labels")
        .map(|x| r.string_map(x, &format!("{what}.labels")))
        .unwrap_or_default();
}

/// `external: true|false`, or the legacy `external: {name: x}` (external, named `x`).
fn read_external(r: &mut Reader<'_>, v: &Node, what: &str) -> bool {
    match v.get("external") {
        None => false,
        Some(x) if x.as_map().is_some() => true,
        Some(x) => r.bool(x, &format!("{what}.external")).unwrap_or(false),
    }
}

/// The name of a legacy `external: {name: x}`, with compose's deprecation warning.
fn legacy_external_name(r: &mut Reader<'_>, v: &Node, what: &str) -> Option<String> {
    let n = v.get("external")?.get("name")?;
    let name = r.string(n, &format!("{what}.external.name"))?;
    r.warning(
        &n.loc,
        format!("{what}.external.name is deprecated; write external: true and name: {name}"),
    );
    Some(name)
}

fn read_ipam(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<Ipam> {
    let e = r.map(n, what)?;
    r.check_keys(e, what, &["driver", "config", "options"], &[]);
    let mut ipam = Ipam {
        driver: n
            .get("driver")
            .and_then(|x| r.string(x, &format!("{what}.driver"))),
        options: n
            .get("options")
            .map(|x| r.string_map(x, &format!("{what}.options")))
            .unwrap_or_default(),
        config: Vec::new(),
    };
    for c in n
        .get("config")
        .and_then(|c| r.seq(c, &format!("{what}.config")))
        .unwrap_or_default()
    {
        let w = format!("{what}.config");
        let Some(ce) = r.map(c, &w) else { continue };
        r.check_keys(
            ce,
            &w,
            &["subnet", "ip_range", "gateway", "aux_addresses"],
            &[],
        );
        let s =
            |r: &mut Reader<'_>, k: &str| c.get(k).and_then(|x| r.string(x, &format!("{w}.{k}")));
        ipam.config.push(IpamPool {
            subnet: s(r, "subnet"),
            ip_range: s(r, "ip_range"),
            gateway: s(r, "gateway"),
            aux_addresses: c
                .get("aux_addresses")
                .map(|x| r.string_map(x, &format!("{w}.aux_addresses")))
                .unwrap_or_default(),
        });
    }
    Some(ipam)
}

/// compose's rule: `name:` as given, external objects by their key, others `<project>_<key>`.
fn engine_name(project: &str, key: &Key, explicit: Option<String>, external: bool) -> String {
    match explicit {
        Some(n) => n,
        None if external => key.name.clone(),
        None => format!("{project}_{}", key.name),
    }
}

fn read_file_objects(
    r: &mut Reader<'_>,
    n: Option<&Node>,
    kind: &str,
    ctx: &Ctx<'_>,
) -> BTreeMap<String, FileObject> {
    let mut out = BTreeMap::new();
    let Some(n) = n else { return out };
    for (k, v) in r.map(n, kind).unwrap_or_default() {
        let what = format!("{kind}.{}", k.name);
        let Some(e) = r.map(v, &what) else { continue };
        r.check_keys(
            e,
            &what,
            &["file", "environment", "name", "external", "content"],
            &["driver", "driver_opts", "template_driver", "labels"],
        );
        let mut obj = FileObject {
            external: read_external(r, v, &what),
            ..FileObject::default()
        };
        if let Some(c) = v.get("content") {
            if kind == "secrets" {
                r.error(&c.loc, format!("{what}.content: content is for configs; a secret reads file: or environment:"));
            } else {
                // Declaring one is fine; a service that mounts one is refused below.
                obj.content = r.string(c, &format!("{what}.content"));
            }
        }
        if let Some(f) = v.get("file")
            && let Some(p) = r.string(f, &format!("{what}.file"))
        {
            let full = resolve(ctx.project_dir, &p);
            if !full.is_file() {
                r.error(
                    &f.loc,
                    format!(
                        "{what}.file {} does not exist; create it or fix the path",
                        (ctx.display_path)(&full)
                    ),
                );
            }
            obj.file = Some(full);
        }
        if let Some(env) = v.get("environment") {
            obj.environment = r.string(env, &format!("{what}.environment"));
            if let Some(name) = &obj.environment
                && (ctx.lookup)(name).is_none()
            {
                r.error(
                    &env.loc,
                    format!("{what} reads variable {name}, which is not set"),
                );
            }
        }
        if obj.file.is_none() && obj.environment.is_none() && obj.content.is_none() && !obj.external
        {
            r.error(&k.loc, format!("{what} needs file: (a host file) or environment: (a variable); berth has no Swarm secret store"));
        }
        out.insert(k.name.clone(), obj);
    }
    out
}

/// Every network, named volume, secret and config a service names must be declared.
fn check_references(
    r: &mut Reader<'_>,
    node: &Node,
    svc: &Service,
    networks: &BTreeMap<String, Network>,
    volumes: &BTreeMap<String, Volume>,
    secrets: &BTreeMap<String, FileObject>,
    configs: &BTreeMap<String, FileObject>,
) {
    let undeclared = |r: &mut Reader<'_>,
                      loc: &Loc,
                      kind: &str,
                      name: &str,
                      declared: BTreeSet<&str>| {
        let hint = suggest::did_you_mean(name, declared.iter().copied());
        r.error(
            loc,
            format!(
                "service {:?} uses {kind} {name:?}, which is not declared under top-level {kind}s:{hint}",
                svc.name
            ),
        );
    };
    if let Some(n) = node.get("networks") {
        let entries: Vec<(String, Loc)> = match (n.as_seq(), n.as_map()) {
            (Some(s), _) => s
                .iter()
                .filter_map(|i| Some((i.scalar_text()?, i.loc.clone())))
                .collect(),
            (_, Some(m)) => m
                .iter()
                .map(|(k, _)| (k.name.clone(), k.loc.clone()))
                .collect(),
            _ => Vec::new(),
        };
        for (name, loc) in entries {
            if !networks.contains_key(&name) {
                undeclared(
                    r,
                    &loc,
                    "network",
                    &name,
                    networks.keys().map(String::as_str).collect(),
                );
            }
        }
    }
    if let Some(items) = node.get("volumes").and_then(Node::as_seq) {
        for item in items {
            let source = match item.scalar_text() {
                Some(s) => crate::desired::syntax::volumes::parse_volume_short(&s)
                    .ok()
                    .filter(|v| v.kind == MountKind::Volume)
                    .and_then(|v| v.source),
                None => item
                    .get("type")
                    .and_then(Node::scalar_text)
                    .filter(|t| t == "volume")
                    .and_then(|_| item.get("source").and_then(Node::scalar_text)),
            };
            if let Some(s) = source
                && !volumes.contains_key(&s)
            {
                undeclared(
                    r,
                    &item.loc,
                    "volume",
                    &s,
                    volumes.keys().map(String::as_str).collect(),
                );
            }
        }
    }
    for (kind, declared, field) in [
        ("secret", secrets, "secrets"),
        ("config", configs, "configs"),
    ] {
        let Some(items) = node.get(field).and_then(Node::as_seq) else {
            continue;
        };
        for item in items {
            let source = item
                .scalar_text()
                .or_else(|| item.get("source").and_then(Node::scalar_text));
            if let Some(o) = source.as_ref().and_then(|s| declared.get(s))
                && o.external
            {
                r.error(
                    &item.loc,
                    format!(
                        "service {:?} uses external {kind} {:?}: external {kind}s live in a Swarm store, which berth does not have; use file: or environment:",
                        svc.name,
                        source.as_deref().unwrap_or_default()
                    ),
                );
            }
            if let Some(o) = source.as_ref().and_then(|s| declared.get(s))
                && o.content.is_some()
            {
                // Engine API 1.41 has no inline file content: compose writes it to a file and
                // binds that; berth does not yet, and running without it would deploy a
                // container lacking the file.
                r.error(
                    &item.loc,
                    format!(
                        "service {:?} mounts config {:?}, whose text is given as content:, which berth cannot mount yet; put the text in a file next to the compose file and write file: instead",
                        svc.name,
                        source.as_deref().unwrap_or_default()
                    ),
                );
            }
            if let Some(o) = source.as_ref().and_then(|s| declared.get(s))
                && let Some(var) = &o.environment
            {
                // The same gap as content: there is no host file to bind, and a container
                // started without the file would run without its secret.
                r.error(
                    &item.loc,
                    format!(
                        "service {:?} mounts {kind} {:?}, whose value comes from the variable {var} (environment:), which berth cannot mount yet; write the value to a file readable by root only and use file: instead (or pass {var} to the service as an environment variable)",
                        svc.name,
                        source.as_deref().unwrap_or_default()
                    ),
                );
            }
            if let Some(s) = source
                && !declared.contains_key(&s)
            {
                undeclared(
                    r,
                    &item.loc,
                    kind,
                    &s,
                    declared.keys().map(String::as_str).collect(),
                );
            }
        }
    }
}
