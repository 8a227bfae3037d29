//! `berth fleet status`'s view: every host of the hosts file with whether its status could be
//! read (or why not), the source revision it applies, each project's services with phase and
//! revision, and its wave position (which wave, and what a gated service waits for).
//!
//! Pure: [`build`] takes the hosts file and the statuses `peers::read_statuses` fetched (or why
//! there is none) and returns an [`Overview`]; [`Overview::text`] renders the table, the JSON
//! is the overview serialised. `cli/fleet` does the IO.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::desired::model::HostsFile;
use crate::telemetry::status::{Status, WaveGate};

/// Every host of the fleet, in the hosts file's order of names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overview {
    /// The hosts.
    pub hosts: Vec<HostOverview>,
}

/// One host as `fleet status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostOverview {
    /// Its name in the hosts file.
    pub name: String,
    /// Its wave (1 first); `None` when no waves are declared.
    pub wave: Option<usize>,
    /// How many waves the hosts file declares.
    pub waves: usize,
    /// Its berth's status URL, from the hosts file.
    pub status_url: Option<String>,
    /// Whether its status was read.
    pub reachable: bool,
    /// Why its status was not read (no `status_url`, refused, timed out, not a status).
    pub error: Option<String>,
    /// The name its berth reports for itself, when it differs from `name`.
    pub answers_as: Option<String>,
    /// Its source: `git` or `dir`, and the revision it applies (a commit, or a fingerprint).
    pub source: Option<HostSource>,
    /// Its services.
    pub services: Vec<ServiceOverview>,
}

/// A host's source, from its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostSource {
    /// `git` or `dir`.
    pub kind: String,
    /// The revision applied.
    pub revision: Option<String>,
    /// Whether its desired state is valid.
    pub valid: bool,
}

/// One service on one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceOverview {
    /// Project.
    pub project: String,
    /// Service.
    pub service: String,
    /// Phase (as in its status).
    pub phase: String,
    /// Ready replicas.
    pub ready: u32,
    /// Desired replicas.
    pub replicas: u32,
    /// The spec hash it wants (12 hex digits).
    pub hash: String,
    /// berth's revision number of it, once recorded.
    pub revision: Option<u64>,
    /// The wave gate on it, if any.
    pub wave: Option<WaveGate>,
}

/// The overview of `hosts` given what each host answered (a host absent from `answers` was
/// not asked: it has no `status_url`).
pub fn build(hosts: &HostsFile, answers: &BTreeMap<String, Result<Status, String>>) -> Overview {
    let hosts = hosts
        .hosts
        .values()
        .map(|h| {
            let wave = hosts.wave_of(&h.name).map(|w| w + 1);
            let base = HostOverview {
                name: h.name.clone(),
                wave,
                waves: hosts.waves.len(),
                status_url: h.status_url.clone(),
                reachable: false,
                error: None,
                answers_as: None,
                source: None,
                services: Vec::new(),
            };
            match answers.get(&h.name) {
                None => HostOverview {
                    error: Some(format!("no status_url in {}", hosts.file)),
                    ..base
                },
                Some(Err(why)) => HostOverview {
                    error: Some(why.clone()),
                    ..base
                },
                Some(Ok(status)) => HostOverview {
                    reachable: true,
                    answers_as: status.host.clone().filter(|n| *n != h.name),
                    source: Some(HostSource {
                        kind: status.source.kind.clone(),
                        revision: status.source.revision.clone(),
                        valid: status.source.valid,
                    }),
                    services: status
                        .services
                        .iter()
                        .map(|s| ServiceOverview {
                            project: s.project.clone(),
                            service: s.service.clone(),
                            phase: s.phase.as_str().to_string(),
                            ready: s.ready,
                            replicas: s.replicas,
                            hash: s.desired.hash.clone(),
                            revision: s.desired.revision,
                            wave: s.wave.clone(),
                        })
                        .collect(),
                    ..base
                },
            }
        })
        .collect();
    Overview { hosts }
}

impl Overview {
    /// The text `berth fleet status` prints: one line per host, then one per service.
    pub fn text(&self) -> String {
        let mut rows = vec![vec![
            "HOST".to_string(),
            "WAVE".into(),
            "STATUS".into(),
            "SOURCE".into(),
        ]];
        for h in &self.hosts {
            let wave = h
                .wave
                .map_or("-".to_string(), |w| format!("{w} of {}", h.waves));
            let status = match (&h.error, &h.answers_as) {
                (Some(e), _) if h.status_url.is_none() => format!("not asked: {e}"),
                (Some(e), _) => format!("unreachable: {e}"),
                (None, Some(other)) => format!("reachable (answers as host {other})"),
                (None, None) => "reachable".to_string(),
            };
            let source = h.source.as_ref().map_or("-".to_string(), |s| {
                let rev = s.revision.as_deref().unwrap_or("-");
                let invalid = if s.valid { "" } else { " (invalid)" };
                format!("{} {rev}{invalid}", s.kind)
            });
            rows.push(vec![h.name.clone(), wave, status, source]);
        }
        let mut out = table(&rows);
        let mut services = vec![vec![
            "HOST".to_string(),
            "SERVICE".into(),
            "PHASE".into(),
            "READY".into(),
            "REVISION".into(),
            "WAVE GATE".into(),
        ]];
        for h in &self.hosts {
            for s in &h.services {
                let revision = match s.revision {
                    Some(r) => format!("r{r} {}", s.hash),
                    None => s.hash.clone(),
                };
                let gate = s.wave.as_ref().map_or("-".to_string(), |g| {
                    format!("{} for host {} ({})", g.state, g.host, g.reason)
                });
                services.push(vec![
                    h.name.clone(),
                    format!("{}/{}", s.project, s.service),
                    s.phase.clone(),
                    format!("{}/{}", s.ready, s.replicas),
                    revision,
                    gate,
                ]);
            }
        }
        if services.len() > 1 {
            out.push('\n');
            out.push_str(&table(&services));
        }
        out
    }
}

/// Rows as columns padded to the widest cell (the last column unpadded).
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::model::Host;
    use crate::telemetry::status::{DesiredRevision, Phase, ServiceStatus, SourceStatus};
    use crate::telemetry::time::Timestamp;

    fn hosts() -> HostsFile {
        let host = |name: &str, url: Option<&str>| Host {
            name: name.into(),
            status_url: url.map(String::from),
            ..Host::default()
        };
        HostsFile {
            file: "berth-hosts.yaml".into(),
            hosts: [
                host("canary", Some("http://10.0.0.1:9469")),
                host("web-1", Some("http://10.0.0.2:9469")),
                host("worker-1", None),
            ]
            .into_iter()
            .map(|h| (h.name.clone(), h))
            .collect(),
            waves: vec![
                vec!["canary".into()],
                vec!["web-1".into(), "worker-1".into()],
            ],
            ..HostsFile::default()
        }
    }

    fn service(phase: Phase, ready: u32, wave: Option<WaveGate>) -> ServiceStatus {
        ServiceStatus {
            project: "shop".into(),
            service: "web".into(),
            job: false,
            desired: DesiredRevision {
                hash: "3f9a1c2b4d5e".into(),
                image: "app:2".into(),
                revision: (ready > 0).then_some(3),
            },
            running: vec![],
            ready,
            replicas: 2,
            phase,
            since: Timestamp(0),
            reason: String::new(),
            conditions: vec![],
            last_rollout: None,
            update: None,
            traffic: vec![],
            wave,
        }
    }

    fn status(host: &str, services: Vec<ServiceStatus>) -> Status {
        Status {
            generated_at: Timestamp(0),
            round: None,
            source: SourceStatus {
                kind: "git".into(),
                location: "https://git.example/ops/fleet.git".into(),
                revision: Some("0a1b2c3d4e5f".into()),
                valid: true,
                errors: 0,
                warnings: 0,
                diagnostics: vec![],
            },
            engine_reachable: Some(true),
            conditions: vec![],
            services,
            orphans: vec![],
            not_ours: vec![],
            host: Some(host.into()),
        }
    }

    #[test]
    fn every_host_is_shown_with_its_wave_its_source_and_why_it_was_not_read() {
        let soaking = WaveGate {
            state: "waiting".into(),
            reason: "wave_soaking".into(),
            host: "canary".into(),
            message: "waiting for an earlier wave: host canary is ready, soaking 42s more".into(),
        };
        let answers = BTreeMap::from([
            (
                "canary".to_string(),
                Ok(status("canary", vec![service(Phase::Idle, 2, None)])),
            ),
            (
                "web-1".to_string(),
                Ok(status(
                    "web-1",
                    vec![service(Phase::Progressing, 0, Some(soaking))],
                )),
            ),
        ]);
        let view = build(&hosts(), &answers);
        assert_eq!(
            view.text(),
            "\
HOST      WAVE    STATUS                                        SOURCE
canary    1 of 2  reachable                                     git 0a1b2c3d4e5f
web-1     2 of 2  reachable                                     git 0a1b2c3d4e5f
worker-1  2 of 2  not asked: no status_url in berth-hosts.yaml  -

HOST    SERVICE   PHASE        READY  REVISION         WAVE GATE
canary  shop/web  Idle         2/2    r3 3f9a1c2b4d5e  -
web-1   shop/web  Progressing  0/2    3f9a1c2b4d5e     waiting for host canary (wave_soaking)
"
        );
    }

    #[test]
    fn an_unreachable_host_and_a_host_answering_under_another_name_say_so() {
        let answers = BTreeMap::from([
            ("canary".to_string(), Err("connection refused".to_string())),
            ("web-1".to_string(), Ok(status("web-9", vec![]))),
        ]);
        let view = build(&hosts(), &answers);
        assert!(!view.hosts[0].reachable);
        assert_eq!(view.hosts[0].error.as_deref(), Some("connection refused"));
        assert_eq!(view.hosts[1].answers_as.as_deref(), Some("web-9"));
        assert!(
            view.text()
                .contains("web-1     2 of 2  reachable (answers as host web-9)")
        );
        let json = serde_json::to_value(&view).expect("serialises");
        assert_eq!(json["hosts"][0]["error"], "connection refused");
        assert_eq!(json["hosts"][2]["wave"], 2);
    }
}
