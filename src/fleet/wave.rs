//! The wave decision: may this host start a project's new revision now, must it wait (and
//! why), or must it hold because the revision failed on an earlier wave?
//!
//! Pure, takes `now`. The controller asks it before a round for every project placed on this
//! host and on hosts of earlier waves; the rollout driver consults the answer only when it
//! would *begin* an update (a rollout under way, a revert and self-heal are never gated). The
//! rule: a host starts revision R only when every earlier-wave host that runs the project
//! reports R ready for at least the hosts file's soak time. A peer that cannot be read means
//! wait — never a guess; a peer that reports R failed means hold, until the desired state
//! changes.

use std::collections::BTreeMap;
use std::fmt;

use super::peer::{PeerState, PeerView, ProjectRevision, revision_of};
use crate::desired::DesiredState;
use crate::desired::model::{Fleet, HostsFile};

/// What the wave rule says for one project on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start the revision (no earlier wave runs the project, or every earlier host is ready).
    Go,
    /// Not yet: a later round asks again.
    Wait(WaveWait),
    /// The revision failed on an earlier wave: it is not started here.
    Hold(WaveHold),
}

/// Why a host waits for its wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaveWait {
    /// An earlier-wave host could not be read.
    PeerUnreachable {
        /// The host.
        host: String,
        /// What went wrong, for people.
        error: String,
    },
    /// An earlier-wave host does not report the revision ready yet.
    PeerNotReady {
        /// The host.
        host: String,
        /// The first service that is not there yet.
        service: String,
        /// Where that service stands on the peer.
        seen: PeerSeen,
    },
    /// Every earlier-wave host is ready, but not for the soak time yet.
    Soaking {
        /// The host that became ready last.
        host: String,
        /// Seconds of soak left.
        left: u64,
    },
}

/// Where a peer's service stands, for a wait's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSeen {
    /// The peer does not report the service (not loaded there yet, or not placed there).
    Missing,
    /// The peer wants another revision (it has not read this commit yet, or its spec differs).
    OtherRevision,
    /// It is rolling the revision out, or waiting.
    NotReady,
}

/// Why a host holds a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveHold {
    /// The earlier-wave host where it failed.
    pub host: String,
    /// The service that failed there.
    pub service: String,
}

impl WaveWait {
    /// Stable label for metrics and event reasons; never parsed back.
    pub fn label(&self) -> &'static str {
        match self {
            WaveWait::PeerUnreachable { .. } => "wave_peer_unreachable",
            WaveWait::PeerNotReady { .. } => "wave_earlier_not_ready",
            WaveWait::Soaking { .. } => "wave_soaking",
        }
    }
}

impl WaveWait {
    /// The earlier-wave host it waits for.
    pub fn host(&self) -> &str {
        match self {
            WaveWait::PeerUnreachable { host, .. }
            | WaveWait::PeerNotReady { host, .. }
            | WaveWait::Soaking { host, .. } => host,
        }
    }
}

impl fmt::Display for WaveWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaveWait::PeerUnreachable { host, error } => write!(
                f,
                "waiting for an earlier wave: host {host} cannot be read ({error}); the wave holds until it answers"
            ),
            WaveWait::PeerNotReady {
                host,
                service,
                seen,
            } => {
                let how = match seen {
                    PeerSeen::Missing => "does not report it yet",
                    PeerSeen::OtherRevision => "wants another revision of it",
                    PeerSeen::NotReady => "is not ready with it yet",
                };
                write!(
                    f,
                    "waiting for an earlier wave: host {host} {how} (service {service})"
                )
            }
            WaveWait::Soaking { host, left } => write!(
                f,
                "waiting for an earlier wave: host {host} is ready, soaking {left}s more"
            ),
        }
    }
}

impl fmt::Display for WaveHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this revision failed on host {} of an earlier wave (service {}): it is not started here until the desired state changes",
            self.host, self.service
        )
    }
}

/// The inputs of one decision.
#[derive(Debug, Clone, Copy)]
pub struct WaveInput<'a> {
    /// The hosts file: waves and soak time.
    pub hosts: &'a HostsFile,
    /// This host.
    pub me: &'a str,
    /// The hosts the project is placed on.
    pub placed_on: &'a [String],
    /// The revision this host would start.
    pub revision: &'a ProjectRevision,
    /// The project.
    pub project: &'a str,
    /// The peers as read this round (a host missing here counts as unreachable).
    pub peers: &'a BTreeMap<String, PeerView>,
    /// Now, unix seconds.
    pub now: u64,
}

/// The hosts of earlier waves that run the project, in wave order; empty when this host is
/// in the first wave of the project, or no waves are declared.
pub fn earlier_hosts<'a>(hosts: &'a HostsFile, me: &str, placed_on: &[String]) -> Vec<&'a str> {
    let Some(mine) = hosts.wave_of(me) else {
        return Vec::new();
    };
    hosts.waves[..mine]
        .iter()
        .flatten()
        .filter(|h| placed_on.iter().any(|p| p == *h))
        .map(String::as_str)
        .collect()
}

/// Decides for one project: Hold when an earlier-wave host reports the revision failed; else
/// Wait while any earlier-wave host is unreadable, not ready with it, or ready for less than
/// the soak time; else Go.
pub fn decide(input: &WaveInput<'_>) -> Decision {
    let earlier = earlier_hosts(input.hosts, input.me, input.placed_on);
    let soak = input.hosts.soak.as_secs();
    // A known failure wins over everything: it will not become ready by waiting.
    for host in &earlier {
        if let Some(PeerView::Answered(report)) = input.peers.get(*host)
            && let Some(services) = report.projects.get(input.project)
        {
            for (service, hash) in input.revision {
                if let Some(s) = services.get(service)
                    && s.hash == *hash
                    && s.state == PeerState::Failed
                {
                    return Decision::Hold(WaveHold {
                        host: host.to_string(),
                        service: service.clone(),
                    });
                }
            }
        }
    }
    let mut soaking: Option<(String, u64)> = None;
    for host in &earlier {
        let report = match input.peers.get(*host) {
            Some(PeerView::Answered(r)) => r,
            Some(PeerView::Unreachable(error)) => {
                return Decision::Wait(WaveWait::PeerUnreachable {
                    host: host.to_string(),
                    error: error.clone(),
                });
            }
            None => {
                return Decision::Wait(WaveWait::PeerUnreachable {
                    host: host.to_string(),
                    error: "not asked yet".into(),
                });
            }
        };
        let services = report.projects.get(input.project);
        for (service, hash) in input.revision {
            let wait = |seen| {
                Decision::Wait(WaveWait::PeerNotReady {
                    host: host.to_string(),
                    service: service.clone(),
                    seen,
                })
            };
            let Some(s) = services.and_then(|p| p.get(service)) else {
                return wait(PeerSeen::Missing);
            };
            if s.hash != *hash {
                return wait(PeerSeen::OtherRevision);
            }
            match s.state {
                PeerState::Ready { since } => {
                    let left = (since.saturating_add(soak)).saturating_sub(input.now);
                    if left > 0 && soaking.as_ref().is_none_or(|(_, l)| left > *l) {
                        soaking = Some((host.to_string(), left));
                    }
                }
                PeerState::NotReady | PeerState::Failed => return wait(PeerSeen::NotReady),
            }
        }
    }
    match soaking {
        Some((host, left)) => Decision::Wait(WaveWait::Soaking { host, left }),
        None => Decision::Go,
    }
}

/// The peers this host reads: every host of an earlier wave that shares a project with it,
/// with its status URL (the hosts file guarantees one for every host before the last wave).
pub fn peers_to_read(fleet: &Fleet) -> Vec<(String, String)> {
    let Some(me) = fleet.this_host.as_deref() else {
        return Vec::new();
    };
    let mut hosts: Vec<&str> = fleet
        .placement
        .values()
        .filter(|on| on.iter().any(|h| h == me))
        .flat_map(|on| earlier_hosts(&fleet.hosts, me, on))
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts
        .into_iter()
        .filter_map(|h| {
            let url = fleet.hosts.hosts.get(h)?.status_url.clone()?;
            Some((h.to_string(), url))
        })
        .collect()
}

/// The decision for every project of `desired` (this host's) that earlier waves also run;
/// projects absent from the map go ahead.
pub fn gates(
    desired: &DesiredState,
    peers: &BTreeMap<String, PeerView>,
    now: u64,
) -> BTreeMap<String, Decision> {
    let Some(fleet) = &desired.fleet else {
        return BTreeMap::new();
    };
    let Some(me) = fleet.this_host.as_deref() else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (name, project) in &desired.projects {
        let Some(placed_on) = fleet.placement.get(name) else {
            continue;
        };
        if earlier_hosts(&fleet.hosts, me, placed_on).is_empty() {
            continue;
        }
        let revision = revision_of(project);
        let d = decide(&WaveInput {
            hosts: &fleet.hosts,
            me,
            placed_on,
            revision: &revision,
            project: name,
            peers,
            now,
        });
        out.insert(name.clone(), d);
    }
    out
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Go => f.write_str("earlier waves are ready: go"),
            Decision::Wait(w) => w.fmt(f),
            Decision::Hold(h) => h.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fleet::peer::{PeerReport, PeerService};

    fn hosts() -> HostsFile {
        HostsFile {
            waves: vec![vec!["canary".into()], vec!["web-1".into(), "web-2".into()]],
            soak: Duration::from_secs(60),
            ..HostsFile::default()
        }
    }

    fn ready(hash: &str, since: u64) -> PeerView {
        report(hash, PeerState::Ready { since })
    }

    fn report(hash: &str, state: PeerState) -> PeerView {
        let mut r = PeerReport::default();
        r.projects.entry("shop".into()).or_default().insert(
            "web".into(),
            PeerService {
                hash: hash.into(),
                state,
            },
        );
        PeerView::Answered(r)
    }

    fn decide_for(me: &str, peers: &[(&str, PeerView)], now: u64) -> Decision {
        let h = hosts();
        let placed: Vec<String> = ["canary", "web-1", "web-2"].map(String::from).to_vec();
        let rev: ProjectRevision = [("web".to_string(), "aaaa".to_string())].into();
        let peers: BTreeMap<String, PeerView> = peers
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect();
        decide(&WaveInput {
            hosts: &h,
            me,
            placed_on: &placed,
            revision: &rev,
            project: "shop",
            peers: &peers,
            now,
        })
    }

    #[test]
    fn the_canary_goes_at_once() {
        assert_eq!(decide_for("canary", &[], 0), Decision::Go);
    }

    #[test]
    fn a_later_wave_goes_once_the_canary_soaked() {
        assert_eq!(
            decide_for("web-1", &[("canary", ready("aaaa", 100))], 130),
            Decision::Wait(WaveWait::Soaking {
                host: "canary".into(),
                left: 30
            })
        );
        assert_eq!(
            decide_for("web-1", &[("canary", ready("aaaa", 100))], 160),
            Decision::Go
        );
    }

    #[test]
    fn a_canary_failure_holds_the_later_waves() {
        let d = decide_for(
            "web-2",
            &[("canary", report("aaaa", PeerState::Failed))],
            500,
        );
        assert_eq!(
            d,
            Decision::Hold(WaveHold {
                host: "canary".into(),
                service: "web".into()
            })
        );
    }

    #[test]
    fn an_unreachable_canary_means_wait_and_says_so() {
        let d = decide_for(
            "web-1",
            &[("canary", PeerView::Unreachable("connect: refused".into()))],
            500,
        );
        assert_eq!(
            d.to_string(),
            "waiting for an earlier wave: host canary cannot be read (connect: refused); the wave holds until it answers"
        );
    }

    #[test]
    fn a_canary_on_another_revision_is_not_ready() {
        let d = decide_for("web-1", &[("canary", ready("bbbb", 0))], 500);
        assert_eq!(
            d,
            Decision::Wait(WaveWait::PeerNotReady {
                host: "canary".into(),
                service: "web".into(),
                seen: PeerSeen::OtherRevision
            })
        );
    }
}
