//! The hosts file, `berth-hosts.yaml` at the desired-state root: the fleet's hosts (name,
//! labels, status URL, projects listed under them), the waves a new revision goes through and
//! their soak time.
//!
//! Pure: `load` reads the file (through `discover`) and hands its parsed tree to [`convert`],
//! which checks it field by field into a [`HostsFile`] and records every problem as a
//! positioned diagnostic. Which projects land where is `placement`'s job.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::convert::placement::read_labels;
use super::convert::read::Reader;
use super::diag::{Diagnostics, Loc};
use super::model::{Host, HostsFile};
use super::node::Node;
use super::syntax::{names, suggest};

/// The hosts file's name at the desired-state root.
pub const HOSTS_FILE: &str = "berth-hosts.yaml";

/// Converts the hosts file's tree (`file` relative to the root); `None` after recording why
/// when it is unusable. Problems that leave the rest usable (an unknown key) are warnings.
pub fn convert(doc: &Node, file: &str, diags: &mut Diagnostics) -> Option<HostsFile> {
    let errors_before = diags.errors();
    let mut r = Reader { diags };
    let top = r.map(doc, "the hosts file")?;
    r.check_keys(top, "", &["hosts", "waves", "soak"], &[]);
    let mut out = HostsFile {
        file: file.to_string(),
        ..HostsFile::default()
    };
    match doc.get("hosts") {
        None => r.error(
            &Loc::new(doc.loc.file.clone(), 1, 1),
            "the hosts file has no hosts: mapping; list each host by name (hosts: {web-1: {labels: {env: prod}}})",
        ),
        Some(hosts) => {
            for (k, v) in r.map(hosts, "hosts").unwrap_or_default() {
                if let Err(e) = names::check_host_name(&k.name) {
                    r.error(&k.loc, format!("hosts: {e}"));
                    continue;
                }
                let host = read_host(&mut r, &k.name, &k.loc, v);
                out.hosts.insert(k.name.clone(), host);
            }
            if out.hosts.is_empty() {
                r.error(&hosts.loc, "hosts is empty: list at least one host");
            }
        }
    }
    if let Some(soak) = doc.get("soak") {
        out.soak = r.duration(soak, "soak").unwrap_or(Duration::ZERO);
    }
    if let Some(waves) = doc.get("waves") {
        out.waves = read_waves(&mut r, waves, &out.hosts);
        check_waves(&mut r, &out);
    }
    (r.diags.errors() == errors_before).then_some(out)
}

fn read_host(r: &mut Reader<'_>, name: &str, loc: &Loc, n: &Node) -> Host {
    let what = format!("hosts.{name}");
    let mut host = Host {
        name: name.to_string(),
        loc: loc.clone(),
        ..Host::default()
    };
    let Some(entries) = r.map(n, &what) else {
        return host;
    };
    r.check_keys(entries, &what, &["labels", "status_url", "projects"], &[]);
    if let Some(l) = n.get("labels") {
        host.labels = read_labels(r, l, &format!("{what}.labels"));
    }
    if let Some(u) = n.get("status_url") {
        let w = format!("{what}.status_url");
        if let Some(text) = r.string(u, &w) {
            match text.parse::<crate::http_client::HttpUrl>() {
                Ok(_) => host.status_url = Some(text.trim_end_matches('/').to_string()),
                Err(e) => r.error(
                    &u.loc,
                    format!(
                        "invalid {w}: {e}; give the base URL of its berth (http://10.0.0.2:9469)"
                    ),
                ),
            }
        }
    }
    if let Some(p) = n.get("projects") {
        let w = format!("{what}.projects");
        for e in r.seq(p, &w).unwrap_or_default() {
            match e.scalar_text() {
                Some(project) => host.projects.push((project, e.loc.clone())),
                None => r.error(
                    &e.loc,
                    format!("{w} entries must be project names, found {}", e.kind()),
                ),
            }
        }
    }
    host
}

/// `waves:` is a list of waves, each a list of host names (or one name).
fn read_waves(r: &mut Reader<'_>, n: &Node, hosts: &BTreeMap<String, Host>) -> Vec<Vec<String>> {
    let mut waves = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, wave) in r.seq(n, "waves").unwrap_or_default().iter().enumerate() {
        let members: Vec<&Node> = match wave.as_seq() {
            Some(list) => list.iter().collect(),
            None => vec![wave],
        };
        let mut names_here = Vec::new();
        for m in members {
            let Some(name) = m.scalar_text() else {
                r.error(
                    &m.loc,
                    format!("waves[{i}] entries must be host names, found {}", m.kind()),
                );
                continue;
            };
            if !hosts.contains_key(&name) {
                let hint = suggest::did_you_mean(&name, hosts.keys().map(String::as_str));
                r.error(
                    &m.loc,
                    format!("waves[{i}] names {name:?}, which is not under hosts:{hint}"),
                );
                continue;
            }
            if let Some(first) = seen.insert(name.clone(), i) {
                r.error(
                    &m.loc,
                    format!(
                        "host {name:?} is in waves[{first}] and waves[{i}]; a host takes a \
                         revision in one wave: remove one"
                    ),
                );
                continue;
            }
            names_here.push(name);
        }
        if wave.as_seq().is_some_and(<[Node]>::is_empty) || wave.is_null() {
            r.error(
                &wave.loc,
                format!("waves[{i}] names no host: list its hosts, or remove it"),
            );
        }
        waves.push(names_here);
    }
    waves
}

/// With waves declared, every host is in one, and every host a later wave waits for has a
/// status URL to be read at.
fn check_waves(r: &mut Reader<'_>, hosts: &HostsFile) {
    if hosts.waves.is_empty() {
        return;
    }
    let in_a_wave: BTreeSet<&str> = hosts.waves.iter().flatten().map(String::as_str).collect();
    let last = hosts.waves.len() - 1;
    for host in hosts.hosts.values() {
        if !in_a_wave.contains(host.name.as_str()) {
            r.error(
                &host.loc,
                format!(
                    "host {:?} is in no wave: add it to waves (a host in no wave would never \
                     know when to start a revision)",
                    host.name
                ),
            );
            continue;
        }
        let wave = hosts.wave_of(&host.name).unwrap_or(last);
        if wave < last && host.status_url.is_none() {
            r.error(
                &host.loc,
                format!(
                    "host {:?} is in waves[{wave}] and later waves read its status: set \
                     status_url (its berth's address, e.g. http://10.0.0.2:9469)",
                    host.name
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::desired::node::parse_documents;

    fn hosts(text: &str) -> (Option<HostsFile>, String) {
        let file: Arc<str> = Arc::from(HOSTS_FILE);
        let docs = parse_documents(&file, text).expect("yaml");
        let mut d = Diagnostics::default();
        let h = convert(&docs[0].root, HOSTS_FILE, &mut d);
        (h, d.to_string())
    }

    #[test]
    fn hosts_labels_waves_and_soak_are_read() {
        let (h, d) = hosts(
            "hosts:\n  canary:\n    labels: {env: prod}\n    status_url: http://10.0.0.1:9469/\n  web-1:\n    labels: {env: prod, role: web}\nwaves:\n  - canary\n  - [web-1]\nsoak: 5m\n",
        );
        assert_eq!(d, "");
        let h = h.expect("valid");
        assert_eq!(
            h.waves,
            vec![vec!["canary".to_string()], vec!["web-1".to_string()]]
        );
        assert_eq!(h.soak, Duration::from_secs(300));
        assert_eq!(
            h.hosts["canary"].status_url.as_deref(),
            Some("http://10.0.0.1:9469")
        );
        assert_eq!(h.hosts["web-1"].labels["role"], "web");
        assert_eq!(h.wave_of("web-1"), Some(1));
    }

    #[test]
    fn a_wave_naming_an_unknown_host_is_a_positioned_error_with_a_suggestion() {
        let (h, d) = hosts(
            "hosts:\n  canary: {status_url: http://a:1}\n  web-1: {}\nwaves:\n  - [canary]\n  - [web-11]\n",
        );
        assert!(h.is_none());
        assert_eq!(
            d,
            "berth-hosts.yaml:3:3: error: host \"web-1\" is in no wave: add it to waves (a host in no wave would never know when to start a revision)\n\
             berth-hosts.yaml:6:6: error: waves[1] names \"web-11\", which is not under hosts: (did you mean \"web-1\"?)\n"
        );
    }

    #[test]
    fn a_host_that_later_waves_wait_for_needs_a_status_url() {
        let (h, d) = hosts("hosts:\n  canary: {}\n  web-1: {}\nwaves: [[canary], [web-1]]\n");
        assert!(h.is_none());
        assert!(
            d.starts_with("berth-hosts.yaml:2:3: error: host \"canary\" is in waves[0] and later waves read its status: set status_url"),
            "{d}"
        );
    }

    #[test]
    fn malformed_hosts_are_positioned_errors() {
        let (h, d) =
            hosts("hosts:\n  web_1: {}\n  web-2:\n    labels: [a]\n    status_url: ftp://x\n");
        assert!(h.is_none());
        assert!(
            d.contains("berth-hosts.yaml:2:3: error: hosts: invalid host name \"web_1\""),
            "{d}"
        );
        assert!(
            d.contains(
                "berth-hosts.yaml:4:13: error: hosts.web-2.labels must be a mapping, found a list"
            ),
            "{d}"
        );
        assert!(
            d.contains("berth-hosts.yaml:5:17: error: invalid hosts.web-2.status_url"),
            "{d}"
        );
    }

    #[test]
    fn a_host_in_two_waves_is_refused() {
        let (h, d) = hosts("hosts:\n  a: {status_url: http://a:1}\nwaves: [[a], [a]]\n");
        assert!(h.is_none());
        assert!(d.contains("host \"a\" is in waves[0] and waves[1]"), "{d}");
    }
}
