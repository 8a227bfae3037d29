//! `networks:`, `depends_on:` and the implicit dependency edges (`network_mode:
//! service:…`, `volumes_from`).

use std::collections::BTreeMap;

use crate::desired::convert::read::Reader;
use crate::desired::diag::Loc;
use crate::desired::model::*;
use crate::desired::node::{Node, Value};

pub(super) fn read_networks(
    r: &mut Reader<'_>,
    n: &Node,
    what: &str,
) -> BTreeMap<String, ServiceNetwork> {
    let mut out = BTreeMap::new();
    match &n.value {
        Value::Seq(items) => {
            for item in items {
                if let Some(s) = r.string(item, what) {
                    out.insert(s, ServiceNetwork::default());
                }
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                let w = format!("{what}.{}", k.name);
                let mut sn = ServiceNetwork::default();
                if let Some(m) = r.map(v, &w) {
                    r.check_keys(
                        m,
                        &w,
                        &["aliases", "ipv4_address", "ipv6_address"],
                        &[
                            "priority",
                            "link_local_ips",
                            "mac_address",
                            "driver_opts",
                            "gw_priority",
                            "interface_name",
                        ],
                    );
                    sn.aliases = v
                        .get("aliases")
                        .map(|a| r.strings(a, &format!("{w}.aliases")))
                        .unwrap_or_default();
                    sn.ipv4_address = v
                        .get("ipv4_address")
                        .and_then(|a| r.string(a, &format!("{w}.ipv4_address")));
                    sn.ipv6_address = v
                        .get("ipv6_address")
                        .and_then(|a| r.string(a, &format!("{w}.ipv6_address")));
                }
                out.insert(k.name.clone(), sn);
            }
        }
        _ => r.error(
            &n.loc,
            format!(
                "{what} must be a list of network names or a mapping, found {}",
                n.kind()
            ),
        ),
    }
    out
}

pub(super) fn read_depends(
    r: &mut Reader<'_>,
    n: &Node,
    what: &str,
) -> BTreeMap<String, Dependency> {
    let mut out = BTreeMap::new();
    let plain = |loc: &Loc| Dependency {
        condition: Condition::ServiceStarted,
        required: true,
        restart: false,
        implicit: false,
        loc: loc.clone(),
    };
    match &n.value {
        Value::Seq(items) => {
            for item in items {
                if let Some(s) = r.string(item, what) {
                    out.insert(s, plain(&item.loc));
                }
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                let w = format!("{what}.{}", k.name);
                let mut d = plain(&k.loc);
                if let Some(m) = r.map(v, &w) {
                    r.check_keys(m, &w, &["condition", "required", "restart"], &[]);
                    if let Some(c) = v.get("condition") {
                        match c.scalar_text().as_deref() {
                            Some("service_started") => d.condition = Condition::ServiceStarted,
                            Some("service_healthy") => d.condition = Condition::ServiceHealthy,
                            Some("service_completed_successfully") => d.condition = Condition::ServiceCompletedSuccessfully,
                            _ => r.error(&c.loc, format!("invalid condition {} in {w}: use service_started, service_healthy or service_completed_successfully", c.shown())),
                        }
                    }
                    if let Some(b) = v
                        .get("required")
                        .and_then(|b| r.bool(b, &format!("{w}.required")))
                    {
                        d.required = b;
                    }
                    if let Some(b) = v
                        .get("restart")
                        .and_then(|b| r.bool(b, &format!("{w}.restart")))
                    {
                        d.restart = b;
                    }
                }
                out.insert(k.name.clone(), d);
            }
        }
        _ => r.error(
            &n.loc,
            format!(
                "{what} must be a list of service names or a mapping, found {}",
                n.kind()
            ),
        ),
    }
    out
}

/// `links`, `volumes_from` and `network_mode: service:x` imply "start x first", as in compose.
pub(super) fn add_implicit_edges(
    r: &mut Reader<'_>,
    node: &Node,
    name: &str,
    network_mode: Option<&str>,
    deps: &mut BTreeMap<String, Dependency>,
) {
    let mut add = |svc: &str, loc: &Loc| {
        deps.entry(svc.to_string()).or_insert(Dependency {
            condition: Condition::ServiceStarted,
            required: true,
            restart: false,
            implicit: true,
            loc: loc.clone(),
        });
    };
    if let Some(n) = node.get("links") {
        for item in r
            .seq(n, &format!("services.{name}.links"))
            .unwrap_or_default()
        {
            if let Some(s) = item.scalar_text() {
                add(s.split(':').next().unwrap_or(&s), &item.loc);
            }
        }
    }
    if let Some(n) = node.get("volumes_from") {
        for item in r
            .seq(n, &format!("services.{name}.volumes_from"))
            .unwrap_or_default()
        {
            if let Some(s) = item.scalar_text()
                && !s.starts_with("container:")
            {
                add(s.split(':').next().unwrap_or(&s), &item.loc);
            }
        }
    }
    if let (Some(svc), Some(n)) = (
        network_mode.and_then(|m| m.strip_prefix("service:")),
        node.get("network_mode"),
    ) {
        add(svc, &n.loc);
    }
}
