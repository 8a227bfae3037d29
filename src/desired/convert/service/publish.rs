//! `ports:` and `expose:`: the short string and the long mapping forms.

use crate::desired::convert::read::Reader;
use crate::desired::model::*;
use crate::desired::node::Node;
use crate::desired::syntax::ports;

pub(super) fn read_ports(r: &mut Reader<'_>, n: &Node, what: &str) -> Vec<Port> {
    let Some(items) = r.seq(n, what) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        if item.as_map().is_some() {
            if let Some(p) = read_port_long(r, item, what) {
                out.extend(p);
            }
            continue;
        }
        let Some(text) = r.string(item, what) else {
            continue;
        };
        match ports::parse_port_short(&text) {
            Ok(ps) => out.extend(ps.into_iter().map(|mut p| {
                p.loc = item.loc.clone();
                p
            })),
            Err(e) => r.invalid(item, "port", &e),
        }
    }
    out
}

pub(super) fn read_port_long(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<Vec<Port>> {
    let entries = r.map(n, what)?;
    r.check_keys(
        entries,
        what,
        &[
            "target",
            "published",
            "host_ip",
            "protocol",
            "mode",
            "name",
            "app_protocol",
        ],
        &[],
    );
    let Some(t) = n.get("target") else {
        r.error(
            &n.loc,
            format!("each long-syntax entry of {what} needs target: (the container port)"),
        );
        return None;
    };
    let target_text = r.string(t, &format!("{what}.target"))?;
    let target = match ports::parse_port_number(&target_text) {
        Ok(p) => p,
        Err(e) => {
            r.invalid(t, "port", &e);
            return None;
        }
    };
    let protocol = match n
        .get("protocol")
        .and_then(|p| r.string(p, &format!("{what}.protocol")))
    {
        None => Protocol::Tcp,
        Some(p) => match ports::parse_protocol(&p) {
            Ok(p) => p,
            Err(e) => {
                r.error(
                    &n.get("protocol").map(|x| x.loc.clone()).unwrap_or_default(),
                    e,
                );
                Protocol::Tcp
            }
        },
    };
    let host_ip = n
        .get("host_ip")
        .and_then(|h| r.string(h, &format!("{what}.host_ip")));
    if let Some(m) = n
        .get("mode")
        .and_then(Node::scalar_text)
        .filter(|m| m != "host" && m != "ingress")
    {
        r.error(
            &n.get("mode").map(|x| x.loc.clone()).unwrap_or_default(),
            format!("invalid port mode {m:?}: use host or ingress"),
        );
    }
    let published: Vec<(Option<u16>, Option<u16>)> = match n.get("published") {
        None => vec![(None, None)],
        Some(p) => {
            let text = r.string(p, &format!("{what}.published"))?;
            // Reuse the short-syntax parser for `8080` and `8080-8081`.
            match ports::parse_port_short(&format!("{text}:{target}")) {
                Ok(ps) if ps.len() == 1 => vec![(ps[0].published, ps[0].published_end)],
                Ok(_) => {
                    r.error(&p.loc, format!("published {} is a range but target is one port; berth needs one host port per container port", p.shown()));
                    return None;
                }
                Err(e) => {
                    r.invalid(p, "published port", &e);
                    return None;
                }
            }
        }
    };
    Some(
        published
            .into_iter()
            .map(|(published, published_end)| Port {
                host_ip: host_ip.clone(),
                published,
                published_end,
                target,
                protocol,
                loc: n.loc.clone(),
            })
            .collect(),
    )
}
