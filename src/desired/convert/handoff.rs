//! `x-berth.handoff`: which published ports berth's proxy holds for a service, in which mode
//! (HTTP or TCP), and how long old replicas drain after a switch.
//!
//! Pure, part of `convert`. Two spellings: `handoff: http` (or `tcp`) hands every published
//! port over in that mode; the mapping form `{mode, ports: {PUBLISHED: http|tcp},
//! drain_timeout, proxy_protocol}` sets the mode per published port. Every published port of
//! a service with handoff must be covered (one left to Docker would still be bound twice, so
//! the service could not go start-first), and every problem is a positioned error: a service
//! with bad handoff settings is invalid, and berth changes nothing while the state is invalid.

use std::time::Duration;

use super::read::Reader;
use crate::desired::diag::Loc;
use crate::desired::model::{Handoff, HandoffMode, HandoffPort, Port, Protocol};
use crate::desired::node::{Key, Node};
use crate::desired::syntax::ports;

/// Drain timeout when neither `handoff.drain_timeout` nor `stop_grace_period` is set
/// (Docker's own default grace period).
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the service around `handoff` says that handoff depends on.
pub struct ServiceFacts<'a> {
    /// `services.<name>`.
    pub name: &'a str,
    /// Its `ports:`.
    pub ports: &'a [Port],
    /// `stop_grace_period:`.
    pub stop_grace_period: Option<Duration>,
    /// `container_name:`.
    pub container_name: Option<&'a str>,
}

/// The top-level `x-berth.handoff` is refused: handing over a port is a service's decision.
pub fn refuse_project_default(r: &mut Reader<'_>, defaults: Option<&Node>) {
    if let Some((k, _)) = entry(defaults) {
        r.error(
            &k.loc,
            "x-berth.handoff cannot be a project default: set it in the x-berth of each service that publishes a port",
        );
    }
}

/// Reads `services.<name>.x-berth.handoff` (`own` is the service's `x-berth` block).
pub fn read(r: &mut Reader<'_>, own: Option<&Node>, svc: &ServiceFacts<'_>) -> Option<Handoff> {
    let (key, n) = entry(own)?;
    let what = format!("services.{}.x-berth.handoff", svc.name);
    let mut default_mode = None;
    let mut per_port: Vec<(u16, HandoffMode, Loc)> = Vec::new();
    let mut drain_timeout = None;
    let mut proxy_protocol = None;
    let mut ok = true;
    if n.as_map().is_some() {
        let entries = r.map(n, &what)?;
        r.check_keys(
            entries,
            &what,
            &["mode", "ports", "drain_timeout", "proxy_protocol"],
            &[],
        );
        if let Some(m) = n.get("mode") {
            default_mode = mode(r, m, &format!("{what}.mode"));
            ok &= default_mode.is_some();
        }
        if let Some(p) = n.get("ports") {
            ok &= read_ports(r, p, &format!("{what}.ports"), &mut per_port);
        }
        if let Some(d) = n.get("drain_timeout") {
            let w = format!("{what}.drain_timeout");
            match r.duration(d, &w) {
                Some(v) if v.is_zero() => {
                    r.error(&d.loc, format!("{w} must be longer than 0s"));
                    ok = false;
                }
                Some(v) => drain_timeout = Some(v),
                None => ok = false,
            }
        }
        if let Some(p) = n.get("proxy_protocol") {
            proxy_protocol = r.bool(p, &format!("{what}.proxy_protocol")).map(|b| (b, p));
            ok &= proxy_protocol.is_some();
        }
        if default_mode.is_none() && per_port.is_empty() && ok {
            r.error(
                &n.loc,
                format!("{what} needs mode: (http or tcp) or ports: {{PUBLISHED: http|tcp}}"),
            );
            return None;
        }
    } else {
        default_mode = mode(r, n, &what);
        default_mode?;
    }
    if let Some(c) = svc.container_name {
        r.error(
            &key.loc,
            format!(
                "{what} runs the service's new replica beside the old one, which container_name {c:?} cannot: remove container_name"
            ),
        );
        ok = false;
    }
    let published: Vec<&Port> = svc.ports.iter().filter(|p| p.published.is_some()).collect();
    if published.is_empty() {
        r.error(
            &key.loc,
            format!(
                "{what} is set but service {:?} publishes no host port: add ports: [\"HOST:CONTAINER\"] or remove handoff",
                svc.name
            ),
        );
        return None;
    }
    for (port, _, loc) in &per_port {
        if !published.iter().any(|p| p.published == Some(*port)) {
            let list = published
                .iter()
                .filter_map(|p| p.published.map(|v| v.to_string()))
                .collect::<Vec<_>>()
                .join(", ");
            r.error(
                loc,
                format!(
                    "{what}.ports names host port {port}, which service {:?} does not publish (it publishes {list})",
                    svc.name
                ),
            );
            ok = false;
        }
    }
    let mut out = Vec::new();
    for p in &published {
        let Some(host) = p.published else { continue };
        let m = per_port
            .iter()
            .find(|(h, _, _)| *h == host)
            .map(|(_, m, _)| *m)
            .or(default_mode);
        let Some(m) = m else {
            r.error(
                &p.loc,
                format!(
                    "service {:?} publishes host port {host}, which {what} does not cover: add it under handoff.ports or set handoff.mode (a port left to Docker cannot be bound twice)",
                    svc.name
                ),
            );
            ok = false;
            continue;
        };
        if p.published_end.is_some() {
            r.error(
                &p.loc,
                format!("{what} needs one host port per container port, not a range"),
            );
            ok = false;
        }
        if p.protocol != Protocol::Tcp {
            r.error(
                &p.loc,
                format!(
                    "{what}: port {host} is not TCP; the proxy hands over TCP ports only (publish UDP ports without handoff in another service)"
                ),
            );
            ok = false;
        }
        out.push(HandoffPort {
            host_ip: p.host_ip.clone(),
            published: host,
            target: p.target,
            mode: m,
            proxy_protocol: false,
        });
    }
    if let Some((true, node)) = proxy_protocol {
        if out.iter().any(|p| p.mode == HandoffMode::Tcp) {
            for p in out.iter_mut().filter(|p| p.mode == HandoffMode::Tcp) {
                p.proxy_protocol = true;
            }
        } else {
            r.error(
                &node.loc,
                format!(
                    "{what}.proxy_protocol applies to tcp ports only; HTTP ports carry the client address in X-Forwarded-For and Forwarded"
                ),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    Some(Handoff {
        ports: out,
        drain_timeout: drain_timeout
            .or(svc.stop_grace_period.filter(|d| !d.is_zero()))
            .unwrap_or(DEFAULT_DRAIN_TIMEOUT),
    })
}

fn entry(block: Option<&Node>) -> Option<(&Key, &Node)> {
    block?
        .as_map()?
        .iter()
        .find(|(k, _)| k.name == "handoff")
        .map(|(k, v)| (k, v))
}

fn mode(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<HandoffMode> {
    match n.scalar_text().as_deref() {
        Some("http") => Some(HandoffMode::Http),
        Some("tcp") => Some(HandoffMode::Tcp),
        _ => {
            r.error(
                &n.loc,
                format!("invalid {what} {}: use http or tcp", n.shown()),
            );
            None
        }
    }
}

/// `ports: {"80": http, 5432: tcp}`; false when something was wrong (already reported).
fn read_ports(
    r: &mut Reader<'_>,
    n: &Node,
    what: &str,
    out: &mut Vec<(u16, HandoffMode, Loc)>,
) -> bool {
    let Some(entries) = r.map(n, what) else {
        return false;
    };
    let mut ok = true;
    for (k, v) in entries {
        let port = match ports::parse_port_number(&k.name) {
            Ok(p) => p,
            Err(e) => {
                r.error(
                    &k.loc,
                    format!("invalid host port {:?} in {what}: {e}", k.name),
                );
                ok = false;
                continue;
            }
        };
        match mode(r, v, &format!("{what}.{port}")) {
            Some(m) => out.push((port, m, k.loc.clone())),
            None => ok = false,
        }
    }
    ok
}
