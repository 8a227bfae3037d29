//! berth's Prometheus metrics (docs/observability.md#metrics), with prometheus-client.
//!
//! Names, labels and units are the contract: `berth_reconcile_total{result}`,
//! `berth_reconcile_duration_seconds`, `berth_desired_state_valid`,
//! `berth_desired_state_info{source,revision}`, `berth_last_applied_timestamp_seconds`,
//! `berth_service_ready{project,service}`, `berth_service_info{project,service,image,revision}`,
//! `berth_rollouts_total{project,service,result}`, `berth_rollout_duration_seconds{project,service}`,
//! `berth_reverts_total{project,service}`, `berth_self_heals_total{project,service,reason}`,
//! `berth_probe_failures_total{project,service,probe}`, `berth_docker_api_errors_total{op}`,
//! `berth_updates_pending{project,service}`, `berth_update_checks_total{result}`,
//! `berth_build_info{version}`, `berth_host_info{host}`,
//! `berth_fleet_wave_waiting{project,reason}`, and the port-handoff proxy's series as berth
//! read them at the scrape (`berth_proxy_up`, `berth_proxy_requests_total{listener,backend}`,
//! `berth_proxy_errors_total{listener,backend}`,
//! `berth_proxy_active_connections{listener,backend,state}`, `berth_proxy_unserved_total{listener}`:
//! `proxy::metrics`). Every counter of a known service starts at 0 (so `increase()`
//! and alerts see the first event); series of services that left the desired state are
//! removed. No container IDs or image digests are ever label values: an image written with a
//! digest is shown without it, and `revision` is berth's short spec hash.
//!
//! Encoded as OpenMetrics text (what Prometheus asks for) or, for clients that ask for
//! `text/plain`, the classic Prometheus text format 0.0.4 (what `promtool check metrics`
//! reads).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::status::{Phase, ServiceStatus};
use crate::engine::EngineOp;
use crate::proxy::metrics::{ProxyCollector, Seen};
use crate::reconcile::reason::HealReason;

/// `reconcile_total{result}` values.
pub const ROUND_RESULTS: &[&str] = &[
    "settled",
    "progressing",
    "failed",
    "error",
    "no_desired_state",
];
/// `rollouts_total{result}` values.
pub const ROLLOUT_RESULTS: &[&str] = &["succeeded", "failed", "reverted"];
/// `docker_api_errors_total{op}` values that start at 0 (others appear when they happen).
pub const ENGINE_OPS: &[EngineOp] = &[
    EngineOp::ListContainers,
    EngineOp::CreateContainer,
    EngineOp::StartContainer,
    EngineOp::StopContainer,
    EngineOp::RemoveContainer,
    EngineOp::PullImage,
    EngineOp::InspectContainer,
];

const RECONCILE_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const ROLLOUT_BUCKETS: [f64; 11] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
    revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ServiceLabels {
    project: String,
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceInfoLabels {
    project: String,
    service: String,
    image: String,
    revision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutLabels {
    project: String,
    service: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealLabels {
    project: String,
    service: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    project: String,
    service: String,
    probe: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaveLabels {
    project: String,
    reason: String,
}

type HistogramFamily = Family<ServiceLabels, Histogram, fn() -> Histogram>;

fn rollout_histogram() -> Histogram {
    Histogram::new(ROLLOUT_BUCKETS)
}

/// What a known service has series for (to remove them when it leaves).
#[derive(Debug, Clone, Default)]
struct Known {
    info: Option<ServiceInfoLabels>,
    probes: BTreeSet<&'static str>,
}

/// The fleet series set last: the host's labels and the gated (project, reason) pairs.
#[derive(Debug, Default)]
struct FleetSeries {
    host: Option<HostLabels>,
    gated: BTreeSet<(String, String)>,
}

/// The registry and every family.
pub struct Metrics {
    registry: Registry,
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_duration: Histogram,
    desired_state_valid: Gauge,
    desired_state_info: Family<SourceLabels, Gauge>,
    last_applied: Gauge,
    service_ready: Family<ServiceLabels, Gauge>,
    service_info: Family<ServiceInfoLabels, Gauge>,
    rollouts_total: Family<RolloutLabels, Counter>,
    rollout_duration: HistogramFamily,
    reverts_total: Family<ServiceLabels, Counter>,
    self_heals_total: Family<HealLabels, Counter>,
    probe_failures_total: Family<ProbeLabels, Counter>,
    docker_api_errors_total: Family<OpLabels, Counter>,
    updates_pending: Family<ServiceLabels, Gauge>,
    update_checks_total: Family<ResultLabels, Counter>,
    host_info: Family<HostLabels, Gauge>,
    wave_waiting: Family<WaveLabels, Gauge>,
    fleet_labels: Mutex<FleetSeries>,
    known: Mutex<BTreeMap<ServiceLabels, Known>>,
    source_labels: Mutex<Option<SourceLabels>>,
    proxy: ProxyCollector,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family registered; the build info set; round results and common engine ops at 0.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("berth");
        let m = Metrics {
            reconcile_total: Family::default(),
            reconcile_duration: Histogram::new(RECONCILE_BUCKETS),
            desired_state_valid: Gauge::default(),
            desired_state_info: Family::default(),
            last_applied: Gauge::default(),
            service_ready: Family::default(),
            service_info: Family::default(),
            rollouts_total: Family::default(),
            rollout_duration: HistogramFamily::new_with_constructor(rollout_histogram),
            reverts_total: Family::default(),
            self_heals_total: Family::default(),
            probe_failures_total: Family::default(),
            docker_api_errors_total: Family::default(),
            updates_pending: Family::default(),
            update_checks_total: Family::default(),
            host_info: Family::default(),
            wave_waiting: Family::default(),
            fleet_labels: Mutex::new(FleetSeries::default()),
            known: Mutex::new(BTreeMap::new()),
            source_labels: Mutex::new(None),
            proxy: ProxyCollector::with_up_gauge(),
            registry: Registry::default(),
        };
        registry.register(
            "reconcile",
            "Reconcile rounds by how they ended: settled (nothing left to do), progressing (a rollout or wait under way), failed (a step failed), error (berth could not do its job, e.g. engine unreachable), no_desired_state",
            m.reconcile_total.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time one reconcile round took (observe, plan, execute)",
            Unit::Seconds,
            m.reconcile_duration.clone(),
        );
        registry.register(
            "desired_state_valid",
            "1 when the last load of the desired state had no errors; 0 while berth keeps applying the last good one",
            m.desired_state_valid.clone(),
        );
        registry.register(
            "desired_state_info",
            "The desired-state source and the revision applied (a git commit, or a fingerprint of a directory's services); always 1",
            m.desired_state_info.clone(),
        );
        registry.register_with_unit(
            "last_applied_timestamp",
            "Unix time at which a round last found the host converged to the desired state",
            Unit::Seconds,
            m.last_applied.clone(),
        );
        registry.register(
            "service_ready",
            "1 when every desired replica of the service is ready (a job: completed with exit 0), else 0",
            m.service_ready.clone(),
        );
        registry.register(
            "service_info",
            "The desired image (without digest) and revision (berth's short spec hash) of each service; always 1",
            m.service_info.clone(),
        );
        registry.register(
            "rollouts",
            "Finished rollouts by result: succeeded, failed (the revision did not pass the readiness gate), reverted (the previous revision runs again)",
            m.rollouts_total.clone(),
        );
        registry.register_with_unit(
            "rollout_duration",
            "Time from the start of a rollout to its success or failure",
            Unit::Seconds,
            m.rollout_duration.clone(),
        );
        registry.register(
            "reverts",
            "Automatic reverts to the previous stable revision",
            m.reverts_total.clone(),
        );
        registry.register(
            "self_heals",
            "Containers restarted or recreated by self-heal, by reason: exited, stopped, missing, unhealthy (Docker healthcheck), liveness (berth's probe), not_started",
            m.self_heals_total.clone(),
        );
        registry.register(
            "probe_failures",
            "Times berth's readiness or liveness probe of a container turned failing (failure_threshold consecutive failures)",
            m.probe_failures_total.clone(),
        );
        registry.register(
            "docker_api_errors",
            "Docker API calls that failed, by operation (not counting already-done outcomes such as removing something gone)",
            m.docker_api_errors_total.clone(),
        );
        registry.register(
            "updates_pending",
            "1 while a newer image fits the service's x-berth.update policy and the desired state does not have it yet (waiting for its window or minimum age, or written and not yet in the source), else 0",
            m.updates_pending.clone(),
        );
        registry.register(
            "update_checks",
            "berth run's image update checks of services, by result: up_to_date, pending, applied, skipped, failed",
            m.update_checks_total.clone(),
        );
        registry.register(
            "host_info",
            "This host's name in the fleet's hosts file (berth-hosts.yaml, --host or the machine's name); always 1, absent without a hosts file",
            m.host_info.clone(),
        );
        registry.register(
            "fleet_wave_waiting",
            "1 while the fleet's wave rule keeps a project's new revision from starting on this host, by reason: wave_earlier_not_ready, wave_soaking, wave_peer_unreachable (waiting), wave_failed_earlier (held: it failed on an earlier wave); the series goes when the revision may start",
            m.wave_waiting.clone(),
        );
        // The port-handoff proxy's series, as berth last read them (`proxy::metrics`).
        registry.register_collector(Box::new(m.proxy.clone()));
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("build_info", "berth's version; always 1", build_info);
        for r in ROUND_RESULTS {
            drop(m.reconcile_total.get_or_create(&ResultLabels {
                result: r.to_string(),
            }));
        }
        for op in ENGINE_OPS {
            drop(m.docker_api_errors_total.get_or_create(&OpLabels {
                op: op.as_str().to_string(),
            }));
        }
        Metrics { registry, ..m }
    }

    /// One round ended with `result` after `duration`; `converged` at `now` sets the last
    /// applied time.
    pub fn round(&self, result: &str, duration: Duration, converged: Option<u64>) {
        self.reconcile_total
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
        self.reconcile_duration.observe(duration.as_secs_f64());
        if let Some(now) = converged {
            self.last_applied.set(now as i64);
        }
    }

    /// The source's validity and revision.
    pub fn source(&self, valid: bool, source: &str, revision: Option<&str>) {
        self.desired_state_valid.set(i64::from(valid));
        let labels = SourceLabels {
            source: source.to_string(),
            revision: revision.unwrap_or("").to_string(),
        };
        let mut last = self.source_labels.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref() != Some(&labels) {
            self.desired_state_info.clear();
            self.desired_state_info.get_or_create(&labels).set(1);
            *last = Some(labels);
        }
    }

    /// Sets the per-service gauges; creates every counter of a new service at 0 (`probes`:
    /// the probe kinds each service has); removes every series of a service no longer listed.
    pub fn services(
        &self,
        services: &[ServiceStatus],
        probes: &BTreeMap<(String, String), BTreeSet<&'static str>>,
    ) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let mut seen = BTreeSet::new();
        for s in services {
            let key = ServiceLabels {
                project: s.project.clone(),
                service: s.service.clone(),
            };
            seen.insert(key.clone());
            let ready = s.ready >= s.replicas && s.phase != Phase::Degraded;
            self.service_ready.get_or_create(&key).set(i64::from(ready));
            let info = ServiceInfoLabels {
                project: s.project.clone(),
                service: s.service.clone(),
                image: strip_digest(&s.desired.image).to_string(),
                revision: s.desired.hash.clone(),
            };
            let entry = known.entry(key.clone()).or_insert_with(|| {
                for r in ROLLOUT_RESULTS {
                    drop(self.rollouts_total.get_or_create(&rollout_labels(&key, r)));
                }
                drop(self.reverts_total.get_or_create(&key));
                for r in HealReason::ALL {
                    drop(
                        self.self_heals_total
                            .get_or_create(&heal_labels(&key, r.label())),
                    );
                }
                Known::default()
            });
            if entry.info.as_ref() != Some(&info) {
                if let Some(old) = entry.info.take() {
                    self.service_info.remove(&old);
                }
                self.service_info.get_or_create(&info).set(1);
                entry.info = Some(info);
            }
            let wanted = probes
                .get(&(s.project.clone(), s.service.clone()))
                .cloned()
                .unwrap_or_default();
            for p in &wanted {
                if entry.probes.insert(p) {
                    drop(
                        self.probe_failures_total
                            .get_or_create(&probe_labels(&key, p)),
                    );
                }
            }
        }
        let gone: Vec<ServiceLabels> = known
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            let Some(k) = known.remove(&key) else {
                continue;
            };
            self.service_ready.remove(&key);
            self.updates_pending.remove(&key);
            if let Some(info) = k.info {
                self.service_info.remove(&info);
            }
            for r in ROLLOUT_RESULTS {
                self.rollouts_total.remove(&rollout_labels(&key, r));
            }
            self.reverts_total.remove(&key);
            self.rollout_duration.remove(&key);
            for r in HealReason::ALL {
                self.self_heals_total.remove(&heal_labels(&key, r.label()));
            }
            for p in k.probes {
                self.probe_failures_total.remove(&probe_labels(&key, p));
            }
        }
    }

    /// A rollout finished with `result` (`succeeded`, `failed`, `reverted`), after `took`
    /// when known.
    pub fn rollout(&self, project: &str, service: &str, result: &str, took: Option<Duration>) {
        let key = service_labels(project, service);
        self.rollouts_total
            .get_or_create(&rollout_labels(&key, result))
            .inc();
        if result == "reverted" {
            self.reverts_total.get_or_create(&key).inc();
        }
        if let Some(d) = took {
            self.rollout_duration
                .get_or_create(&key)
                .observe(d.as_secs_f64());
        }
    }

    /// One update check of a service ended with `result` (an `update::schedule::Act`
    /// label); `pending` when a newer image waits or is on its way.
    pub fn update_check(&self, project: &str, service: &str, result: &str, pending: bool) {
        self.update_checks_total
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
        self.updates_pending
            .get_or_create(&service_labels(project, service))
            .set(i64::from(pending));
    }

    /// The service has no update policy any more: its `updates_pending` series goes.
    pub fn update_forget(&self, project: &str, service: &str) {
        self.updates_pending
            .remove(&service_labels(project, service));
    }

    /// A self-heal restart for `reason` (a [`HealReason`] label).
    pub fn self_heal(&self, project: &str, service: &str, reason: &str) {
        self.self_heals_total
            .get_or_create(&heal_labels(&service_labels(project, service), reason))
            .inc();
    }

    /// A probe (`readiness` or `liveness`) of one of the service's containers turned failing.
    pub fn probe_failure(&self, project: &str, service: &str, probe: &str) {
        self.probe_failures_total
            .get_or_create(&probe_labels(&service_labels(project, service), probe))
            .inc();
    }

    /// The fleet: this host's name (`None`: no hosts file) and every project whose new
    /// revision the wave rule gates, with the reason's label. Series no longer true go.
    pub fn fleet(&self, host: Option<&str>, gated: &BTreeMap<String, String>) {
        let mut last = self.fleet_labels.lock().unwrap_or_else(|p| p.into_inner());
        let host = host.map(|h| HostLabels {
            host: h.to_string(),
        });
        if last.host != host {
            self.host_info.clear();
            if let Some(h) = &host {
                self.host_info.get_or_create(h).set(1);
            }
            last.host = host;
        }
        let now: BTreeSet<(String, String)> =
            gated.iter().map(|(p, r)| (p.clone(), r.clone())).collect();
        for (project, reason) in last.gated.difference(&now) {
            self.wave_waiting.remove(&WaveLabels {
                project: project.clone(),
                reason: reason.clone(),
            });
        }
        for (project, reason) in &now {
            self.wave_waiting
                .get_or_create(&WaveLabels {
                    project: project.clone(),
                    reason: reason.clone(),
                })
                .set(1);
        }
        last.gated = now;
    }

    /// Brings `docker_api_errors_total` up to the engine's running totals by op.
    pub fn docker_errors(&self, totals: &[(EngineOp, u64)]) {
        for (op, total) in totals {
            let c = self.docker_api_errors_total.get_or_create(&OpLabels {
                op: op.as_str().to_string(),
            });
            let have = c.get();
            if *total > have {
                c.inc_by(total - have);
            }
        }
    }

    /// What berth's look at its port-handoff proxy found: the next encodings show
    /// `berth_proxy_up` and the proxy's per-backend series from it.
    pub fn proxy(&self, seen: Seen) {
        self.proxy.set(seen);
    }

    /// OpenMetrics text (ends with `# EOF`).
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text format 0.0.4.
    pub fn prometheus_text(&self) -> String {
        to_prometheus_text(&self.openmetrics())
    }
}

fn service_labels(project: &str, service: &str) -> ServiceLabels {
    ServiceLabels {
        project: project.to_string(),
        service: service.to_string(),
    }
}

fn rollout_labels(k: &ServiceLabels, result: &str) -> RolloutLabels {
    RolloutLabels {
        project: k.project.clone(),
        service: k.service.clone(),
        result: result.to_string(),
    }
}

fn heal_labels(k: &ServiceLabels, reason: &str) -> HealLabels {
    HealLabels {
        project: k.project.clone(),
        service: k.service.clone(),
        reason: reason.to_string(),
    }
}

fn probe_labels(k: &ServiceLabels, probe: &str) -> ProbeLabels {
    ProbeLabels {
        project: k.project.clone(),
        service: k.service.clone(),
        probe: probe.to_string(),
    }
}

/// `app@sha256:…` → `app`; `app:2@sha256:…` → `app:2`.
pub fn strip_digest(image: &str) -> &str {
    image.split_once('@').map_or(image, |(name, _)| name)
}

/// Rewrites OpenMetrics text as Prometheus text 0.0.4: no `# EOF` or `# UNIT` lines, counter
/// families named with their `_total` suffix, `unknown` as `untyped`, `info` as `gauge`.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut lines = openmetrics.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let kind = lines
                .peek()
                .and_then(|l| l.strip_prefix("# TYPE "))
                .and_then(|t| t.split_once(' '))
                .filter(|(n, _)| *n == name)
                .map(|(_, k)| k.to_string());
            let (name, kind) = match kind.as_deref() {
                Some("counter") if !name.ends_with("_total") => {
                    (format!("{name}_total"), "counter")
                }
                Some("counter") => (name.to_string(), "counter"),
                Some("unknown") => (name.to_string(), "untyped"),
                Some("info") => (format!("{name}_info"), "gauge"),
                Some("gaugehistogram") => (name.to_string(), "histogram"),
                Some(k) => (name.to_string(), leak_kind(k)),
                None => {
                    out.push_str(line);
                    out.push('\n');
                    continue;
                }
            };
            lines.next();
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn leak_kind(k: &str) -> &'static str {
    match k {
        "gauge" => "gauge",
        "histogram" => "histogram",
        "summary" => "summary",
        _ => "untyped",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_becomes_prometheus_text() {
        let om = "# HELP berth_reconcile Rounds.\n# TYPE berth_reconcile counter\nberth_reconcile_total{result=\"settled\"} 0\n# HELP berth_reconcile_duration_seconds Time.\n# TYPE berth_reconcile_duration_seconds histogram\n# UNIT berth_reconcile_duration_seconds seconds\nberth_reconcile_duration_seconds_sum 0.0\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP berth_reconcile_total Rounds.\n# TYPE berth_reconcile_total counter\nberth_reconcile_total{result=\"settled\"} 0\n# HELP berth_reconcile_duration_seconds Time.\n# TYPE berth_reconcile_duration_seconds histogram\nberth_reconcile_duration_seconds_sum 0.0\n"
        );
    }

    #[test]
    fn the_fleet_series_follow_the_host_and_the_gated_projects() {
        let m = Metrics::new();
        assert!(!m.openmetrics().contains("berth_host_info{"));
        let gated = BTreeMap::from([("shop".to_string(), "wave_soaking".to_string())]);
        m.fleet(Some("web-1"), &gated);
        let text = m.openmetrics();
        assert!(text.contains("berth_host_info{host=\"web-1\"} 1"), "{text}");
        assert!(
            text.contains("berth_fleet_wave_waiting{project=\"shop\",reason=\"wave_soaking\"} 1"),
            "{text}"
        );
        let held = BTreeMap::from([("shop".to_string(), "wave_failed_earlier".to_string())]);
        m.fleet(Some("web-1"), &held);
        let text = m.openmetrics();
        assert!(!text.contains("reason=\"wave_soaking\""), "{text}");
        assert!(text.contains("reason=\"wave_failed_earlier\"} 1"), "{text}");
        m.fleet(None, &BTreeMap::new());
        let text = m.openmetrics();
        assert!(!text.contains("berth_host_info{"), "{text}");
        assert!(!text.contains("berth_fleet_wave_waiting{"), "{text}");
    }

    #[test]
    fn families_carry_the_design_names() {
        let m = Metrics::new();
        m.round("settled", Duration::from_millis(3), Some(1_700_000_000));
        m.source(true, "dir", Some("abc"));
        m.rollout("shop", "web", "reverted", Some(Duration::from_secs(4)));
        let text = m.openmetrics();
        for name in [
            "berth_reconcile_total{result=\"settled\"} 1",
            "# TYPE berth_reconcile_duration_seconds histogram",
            "berth_desired_state_valid 1",
            "berth_desired_state_info{source=\"dir\",revision=\"abc\"} 1",
            "berth_last_applied_timestamp_seconds 1700000000",
            "berth_rollouts_total{project=\"shop\",service=\"web\",result=\"reverted\"} 1",
            "berth_reverts_total{project=\"shop\",service=\"web\"} 1",
            "berth_rollout_duration_seconds_count{project=\"shop\",service=\"web\"} 1",
            "berth_docker_api_errors_total{op=\"list containers\"} 0",
            "berth_build_info{version=\"",
        ] {
            assert!(text.contains(name), "missing {name} in:\n{text}");
        }
    }

    #[test]
    fn digests_never_become_labels() {
        assert_eq!(strip_digest("app:2@sha256:abcd"), "app:2");
        assert_eq!(strip_digest("app"), "app");
    }
}
