//! `x-berth.placement`: which hosts of the fleet run a project (`hosts:` by name, `labels:` a
//! selector on the hosts file's labels).
//!
//! Pure, part of `convert`. Only the shape is checked here (names and labels are strings);
//! whether the names and labels match hosts is `desired::placement`'s job, once the hosts file
//! and every project are known. Placement is a project's decision: in a service's `x-berth`
//! it is a positioned error.

use std::collections::BTreeMap;

use super::read::Reader;
use crate::desired::model::Placement;
use crate::desired::node::Node;
use crate::desired::syntax::names;

/// Reads the project's `x-berth.placement` (`defaults` is the top-level `x-berth` block).
pub fn read(r: &mut Reader<'_>, defaults: Option<&Node>) -> Option<Placement> {
    let (key, n) = defaults?
        .as_map()?
        .iter()
        .find(|(k, _)| k.name == "placement")?;
    let what = "x-berth.placement";
    let entries = r.map(n, what)?;
    r.check_keys(entries, what, &["hosts", "labels"], &[]);
    let mut placement = Placement {
        loc: key.loc.clone(),
        ..Placement::default()
    };
    if let Some(hosts) = n.get("hosts") {
        for h in r.seq(hosts, &format!("{what}.hosts")).unwrap_or_default() {
            match h.scalar_text() {
                Some(name) if names::check_host_name(&name).is_ok() => {
                    placement.hosts.push((name, h.loc.clone()))
                }
                Some(name) => {
                    let why = names::check_host_name(&name).err().unwrap_or_default();
                    r.error(&h.loc, format!("{what}.hosts: {why}"));
                }
                None => r.error(
                    &h.loc,
                    format!(
                        "{what}.hosts entries must be host names, found {}",
                        h.kind()
                    ),
                ),
            }
        }
    }
    if let Some(labels) = n.get("labels") {
        placement.labels_loc = Some(labels.loc.clone());
        placement.labels = read_labels(r, labels, &format!("{what}.labels"));
    }
    if placement.hosts.is_empty() && placement.labels.is_empty() {
        r.error(
            &key.loc,
            format!(
                "{what} selects no host: name hosts (hosts: [web-1]) or a label selector \
                 (labels: {{env: prod}}) from berth-hosts.yaml"
            ),
        );
    }
    Some(placement)
}

/// A `key: value` mapping of labels (values as text); errors for anything else.
pub fn read_labels(r: &mut Reader<'_>, n: &Node, what: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in r.map(n, what).unwrap_or_default() {
        match v.scalar_text() {
            Some(text) => {
                out.insert(k.name.clone(), text);
            }
            None => r.error(
                &v.loc,
                format!("{what}.{} must be a string, found {}", k.name, v.kind()),
            ),
        }
    }
    out
}

/// A service's `x-berth.placement` is refused: a project runs on a host as a whole.
pub fn refuse_in_service(r: &mut Reader<'_>, own: Option<&Node>, service: &str) {
    if let Some((k, _)) = own
        .and_then(Node::as_map)
        .and_then(|m| m.iter().find(|(k, _)| k.name == "placement"))
    {
        r.error(
            &k.loc,
            format!(
                "services.{service}.x-berth.placement: placement is per project (a project runs \
                 on a host as a whole); move it to the top-level x-berth"
            ),
        );
    }
}
