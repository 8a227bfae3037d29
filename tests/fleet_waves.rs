//! The wave rule (`fleet::wave`): property tests over random fleets and peer reports, and the
//! planner obeying a decision (a waiting or holding host creates nothing).
//!
//! The properties: a host goes with revision R exactly when every earlier-wave host of the
//! project reports R ready for at least the soak time; a peer that cannot be read never lets
//! it go; a peer that reports R failed holds it; hosts of the same or later waves never matter.

use std::collections::BTreeMap;
use std::time::Duration;

use berth::desired::model::HostsFile;
use berth::desired::{LoadOptions, load_inline};
use berth::fleet::peer::{PeerReport, PeerService, PeerState, PeerView, ProjectRevision};
use berth::fleet::wave::{Decision, WaveHold, WaveInput, WaveWait, decide, earlier_hosts};
use berth::reconcile::observed::ObservedState;
use berth::reconcile::plan::{PlanOptions, Records, plan};
use proptest::prelude::*;

mod support {
    pub mod sim;
}

const PROJECT: &str = "shop";

/// What one peer reports for one service.
#[derive(Debug, Clone)]
enum Svc {
    Missing,
    OtherHash,
    Ready(u64),
    NotReady,
    Failed,
}

fn svc() -> impl Strategy<Value = Svc> {
    // Small ranges: readiness, soak and now meet at the boundaries often; mostly ready, so
    // that whole waves are ready often enough to test going.
    prop_oneof![
        1 => Just(Svc::Missing),
        1 => Just(Svc::OtherHash),
        8 => (0u64..30).prop_map(Svc::Ready),
        1 => Just(Svc::NotReady),
        1 => Just(Svc::Failed),
    ]
}

/// A peer: unreachable, not asked, or answering with one entry per service.
#[derive(Debug, Clone)]
enum Peer {
    Unreachable,
    NotAsked,
    Answers(Vec<Svc>),
}

fn peer(services: usize) -> impl Strategy<Value = Peer> {
    prop_oneof![
        1 => Just(Peer::Unreachable),
        1 => Just(Peer::NotAsked),
        10 => prop::collection::vec(svc(), services).prop_map(Peer::Answers),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    waves: Vec<Vec<String>>,
    placed: Vec<String>,
    me: String,
    services: usize,
    peers: BTreeMap<String, Peer>,
    soak: u64,
    now: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(1usize..3, 1..4),
        1usize..3,
        0u64..10,
        15u64..40,
    )
        .prop_flat_map(|(sizes, services, soak, now)| {
            let waves: Vec<Vec<String>> = sizes
                .iter()
                .enumerate()
                .map(|(w, n)| (0..*n).map(|i| format!("h{w}-{i}")).collect())
                .collect();
            let all: Vec<String> = waves.iter().flatten().cloned().collect();
            let n = all.len();
            (
                Just(waves),
                prop::collection::vec(any::<bool>(), n),
                0..n,
                prop::collection::vec(peer(services), n),
                Just((services, soak, now, all)),
            )
        })
        .prop_map(
            |(waves, placed_bits, me, peers, (services, soak, now, all))| {
                let me = all[me].clone();
                let mut placed: Vec<String> = all
                    .iter()
                    .zip(&placed_bits)
                    .filter(|(h, on)| **on || **h == me)
                    .map(|(h, _)| h.clone())
                    .collect();
                placed.dedup();
                Case {
                    waves,
                    placed,
                    me,
                    services,
                    peers: all.into_iter().zip(peers).collect(),
                    soak,
                    now,
                }
            },
        )
}

fn revision(services: usize) -> ProjectRevision {
    (0..services)
        .map(|i| (format!("s{i}"), format!("{i:012x}")))
        .collect()
}

fn views(c: &Case) -> BTreeMap<String, PeerView> {
    let rev = revision(c.services);
    c.peers
        .iter()
        .filter_map(|(host, p)| {
            let view = match p {
                Peer::NotAsked => return None,
                Peer::Unreachable => PeerView::Unreachable("connect: refused".into()),
                Peer::Answers(list) => {
                    let mut report = PeerReport::default();
                    let services = report.projects.entry(PROJECT.into()).or_default();
                    for ((name, hash), s) in rev.iter().zip(list) {
                        let (hash, state) = match s {
                            Svc::Missing => continue,
                            Svc::OtherHash => ("ffffffffffff".to_string(), PeerState::NotReady),
                            Svc::Ready(since) => (hash.clone(), PeerState::Ready { since: *since }),
                            Svc::NotReady => (hash.clone(), PeerState::NotReady),
                            Svc::Failed => (hash.clone(), PeerState::Failed),
                        };
                        services.insert(name.clone(), PeerService { hash, state });
                    }
                    PeerView::Answered(report)
                }
            };
            Some((host.clone(), view))
        })
        .collect()
}

fn hosts_file(c: &Case) -> HostsFile {
    HostsFile {
        waves: c.waves.clone(),
        soak: Duration::from_secs(c.soak),
        ..HostsFile::default()
    }
}

fn run(c: &Case, peers: &BTreeMap<String, PeerView>) -> Decision {
    let hosts = hosts_file(c);
    let rev = revision(c.services);
    decide(&WaveInput {
        hosts: &hosts,
        me: &c.me,
        placed_on: &c.placed,
        revision: &rev,
        project: PROJECT,
        peers,
        now: c.now,
    })
}

fn earlier(c: &Case) -> Vec<String> {
    earlier_hosts(&hosts_file(c), &c.me, &c.placed)
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// The host is ready with every service of R, and has been for the soak time.
fn soaked(c: &Case, host: &str) -> bool {
    match c.peers.get(host) {
        Some(Peer::Answers(list)) => list
            .iter()
            .all(|s| matches!(s, Svc::Ready(since) if since + c.soak <= c.now)),
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Go exactly when every earlier-wave host of the project reports R ready for the soak
    /// time: never before (safety), and not later than that (the fleet moves).
    #[test]
    fn a_host_goes_exactly_when_every_earlier_wave_host_soaked_r(c in case()) {
        let d = run(&c, &views(&c));
        let all_soaked = earlier(&c).iter().all(|h| soaked(&c, h));
        prop_assert_eq!(d == Decision::Go, all_soaked, "{:?} for {:?}", d, c);
    }

    /// A peer of an earlier wave that cannot be read (or was not asked) never lets the host
    /// go: it waits, or holds when another earlier host reports R failed.
    #[test]
    fn an_unreachable_earlier_peer_always_means_wait(c in case()) {
        let d = run(&c, &views(&c));
        let unreadable = earlier(&c)
            .iter()
            .any(|h| matches!(c.peers.get(h), Some(Peer::Unreachable | Peer::NotAsked)));
        if unreadable {
            prop_assert!(matches!(d, Decision::Wait(_) | Decision::Hold(_)), "{:?}", d);
        }
        let failed = earlier(&c).iter().any(|h| matches!(
            c.peers.get(h),
            Some(Peer::Answers(l)) if l.iter().any(|s| matches!(s, Svc::Failed))
        ));
        if unreadable && !failed {
            prop_assert!(matches!(d, Decision::Wait(_)), "{:?}", d);
        }
    }

    /// R failed on a reachable earlier-wave host: the host holds, naming that host.
    #[test]
    fn a_failure_on_an_earlier_wave_holds_r(c in case()) {
        let d = run(&c, &views(&c));
        let failed_on: Vec<String> = earlier(&c)
            .into_iter()
            .filter(|h| matches!(
                c.peers.get(h),
                Some(Peer::Answers(l)) if l.iter().any(|s| matches!(s, Svc::Failed))
            ))
            .collect();
        match &d {
            Decision::Hold(WaveHold { host, .. }) => prop_assert!(failed_on.contains(host)),
            _ => prop_assert!(failed_on.is_empty(), "{:?}", d),
        }
    }

    /// Hosts of the same or later waves, and hosts that do not run the project, never change
    /// the decision.
    #[test]
    fn only_earlier_wave_hosts_of_the_project_matter(c in case()) {
        let before = run(&c, &views(&c));
        let keep = earlier(&c);
        let mut other = views(&c);
        for (host, v) in other.iter_mut() {
            if !keep.contains(host) {
                *v = PeerView::Unreachable("cut".into());
            }
        }
        prop_assert_eq!(before, run(&c, &other));
    }
}

/// Steps of the service itself (project-wide objects such as its network are not gated).
fn service_steps(p: &berth::reconcile::plan::Plan) -> usize {
    p.steps.iter().filter(|s| s.service.is_some()).count()
}

fn notes(p: &berth::reconcile::plan::Plan) -> Vec<String> {
    p.notes.iter().map(ToString::to_string).collect()
}

#[test]
fn a_waiting_or_holding_host_starts_nothing_of_the_project_and_says_why() {
    let l = load_inline(
        "name: shop\nservices:\n  web:\n    image: app:1\n",
        &LoadOptions::default(),
    );
    let desired = l.state.unwrap_or_else(|| panic!("{}", l.diagnostics));
    let mut observed = ObservedState::default().with_inventory(vec![], vec![], vec![]);
    let round = |o: &ObservedState| {
        plan(
            &desired,
            o,
            &Records::default(),
            PlanOptions::default(),
            1_000,
        )
    };
    let go = round(&observed);
    assert!(
        service_steps(&go) > 0,
        "without a wave rule the image is pulled: {go}"
    );
    observed.waves.insert("shop".into(), Decision::Go);
    assert_eq!(round(&observed).steps, go.steps, "Go changes nothing");
    observed.waves.insert(
        "shop".into(),
        Decision::Wait(WaveWait::Soaking {
            host: "canary".into(),
            left: 42,
        }),
    );
    let wait = round(&observed);
    assert_eq!(service_steps(&wait), 0, "{wait}");
    assert!(wait.records.is_empty(), "no revision is recorded: {wait}");
    assert_eq!(
        notes(&wait),
        ["shop/web  waits: waiting for an earlier wave: host canary is ready, soaking 42s more"]
    );
    observed.waves.insert(
        "shop".into(),
        Decision::Hold(WaveHold {
            host: "canary".into(),
            service: "web".into(),
        }),
    );
    let hold = round(&observed);
    assert_eq!(service_steps(&hold), 0, "{hold}");
    assert_eq!(
        notes(&hold),
        [
            "shop/web  blocked: this revision failed on host canary of an earlier wave (service web): it is not started here until the desired state changes"
        ]
    );
}

/// A fleet repository loaded for `host`: `shop` on a, b and c (labels), `blog` on b only.
fn fleet_state(host: &str) -> (tempfile::TempDir, berth::desired::DesiredState) {
    let t = tempfile::tempdir().expect("tempdir");
    let write = |rel: &str, body: &str| {
        let p = t.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, body).expect("write");
    };
    write(
        "berth-hosts.yaml",
        "hosts:\n  a: {labels: {env: prod}, status_url: 'http://10.0.0.1:9469'}\n  b: {labels: {env: prod}, status_url: 'http://10.0.0.2:9469'}\n  c: {labels: {env: prod}}\nwaves: [[a], [b], [c]]\nsoak: 10s\n",
    );
    write(
        "shop/compose.yaml",
        "services:\n  web:\n    image: app:1\nx-berth:\n  placement: {labels: {env: prod}}\n",
    );
    write(
        "blog/compose.yaml",
        "services:\n  ghost:\n    image: ghost:5\nx-berth:\n  placement: {hosts: [b]}\n",
    );
    let opts = LoadOptions {
        host: berth::desired::HostChoice::Named(host.into()),
        ..LoadOptions::default()
    };
    let l = berth::desired::load(t.path(), &opts);
    let state = l.state.unwrap_or_else(|| panic!("{}", l.diagnostics));
    (t, state)
}

#[test]
fn a_host_reads_only_the_earlier_waves_it_shares_a_project_with() {
    use berth::fleet::wave::{gates, peers_to_read};
    let (_t, a) = fleet_state("a");
    let fleet = a.fleet.as_ref().expect("fleet");
    assert!(
        peers_to_read(fleet).is_empty(),
        "the first wave reads nobody"
    );
    assert!(gates(&a, &BTreeMap::new(), 0).is_empty());
    let (_t, c) = fleet_state("c");
    assert_eq!(c.projects.keys().collect::<Vec<_>>(), ["shop"]);
    assert_eq!(
        peers_to_read(c.fleet.as_ref().expect("fleet")),
        [
            ("a".to_string(), "http://10.0.0.1:9469".to_string()),
            ("b".to_string(), "http://10.0.0.2:9469".to_string())
        ]
    );
    // Nobody answered yet: c waits, naming the first host of the earliest wave.
    assert_eq!(
        gates(&c, &BTreeMap::new(), 0)["shop"].to_string(),
        "waiting for an earlier wave: host a cannot be read (not asked yet); the wave holds until it answers"
    );
    // Both earlier hosts ready with c's own revision long enough: c goes.
    let rev = berth::fleet::peer::revision_of(&c.projects["shop"]);
    let ready = |since| {
        let mut r = PeerReport::default();
        let shop = r.projects.entry("shop".into()).or_default();
        for (service, hash) in &rev {
            shop.insert(
                service.clone(),
                PeerService {
                    hash: hash.clone(),
                    state: PeerState::Ready { since },
                },
            );
        }
        PeerView::Answered(r)
    };
    let peers = BTreeMap::from([("a".to_string(), ready(100)), ("b".to_string(), ready(105))]);
    assert_eq!(
        gates(&c, &peers, 110)["shop"].to_string(),
        "waiting for an earlier wave: host b is ready, soaking 5s more"
    );
    assert_eq!(gates(&c, &peers, 115)["shop"], Decision::Go);
}

/// berth's side of a simulated host across rounds: the in-memory engine, records, a clock.
struct Sim {
    host: support::sim::Host,
    records: Records,
    now: u64,
}

impl Sim {
    /// Plans one round with this wave decision for `shop`, saves the records, applies the steps.
    fn round(
        &mut self,
        d: &berth::desired::DesiredState,
        wave: Option<&Decision>,
    ) -> berth::reconcile::plan::Plan {
        let mut observed = self.host.observed();
        if let Some(w) = wave {
            observed.waves.insert("shop".into(), w.clone());
        }
        let p = plan(
            d,
            &observed,
            &self.records,
            PlanOptions::default(),
            self.now,
        );
        self.records
            .extend(p.records.iter().map(|(k, r)| (k.clone(), r.clone())));
        for s in &p.steps {
            self.host
                .step(&s.action)
                .unwrap_or_else(|e| panic!("{}: {e}", s.action));
        }
        self.now += 1;
        p
    }

    /// The images of the running containers of shop/web.
    fn running(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .host
            .containers()
            .into_iter()
            .filter(|c| c.state == berth::engine::RunState::Running)
            .map(|c| c.labels.get("berth.image").cloned().unwrap_or(c.image_id))
            .collect();
        v.sort();
        v
    }
}

fn web(image: &str) -> berth::desired::DesiredState {
    let l = load_inline(
        &format!("name: shop\nservices:\n  web:\n    image: '{image}'\n"),
        &LoadOptions::default(),
    );
    l.state.unwrap_or_else(|| panic!("{}", l.diagnostics))
}

/// A host still rolling out r2 when r3 arrives and must wait for its wave finishes r2 (from
/// r2's recorded template), rather than leaving it half done; r3 is not begun.
#[test]
fn a_rollout_under_way_finishes_while_the_next_revision_waits_for_its_wave() {
    let mut sim = Sim {
        host: support::sim::Host::new(),
        records: Records::default(),
        now: 1_000,
    };
    let (d1, d2, d3) = (web("app:1"), web("app:2"), web("app:3"));
    for _ in 0..30 {
        if sim.round(&d1, None).is_empty() {
            break;
        }
    }
    assert_eq!(sim.running(), ["sha256:app:1"]);
    // r2 begins: its candidate runs beside r1.
    sim.round(&d2, None);
    sim.round(&d2, None);
    assert_eq!(sim.running(), ["sha256:app:1", "sha256:app:2"]);
    // r3 arrives, and the wave says wait: r2 completes, r3 is not begun.
    let wait = Decision::Wait(WaveWait::Soaking {
        host: "canary".into(),
        left: 600,
    });
    let mut last = None;
    for _ in 0..30 {
        let p = sim.round(&d3, Some(&wait));
        let done = p.is_empty();
        last = Some(p);
        if done {
            break;
        }
    }
    let last = last.expect("rounds ran");
    assert!(last.is_empty(), "r2 still moving after 30 rounds: {last}");
    assert_eq!(
        sim.running(),
        ["sha256:app:2"],
        "r2 completed, r1 gone, r3 never created"
    );
    assert_eq!(
        notes(&last),
        ["shop/web  waits: waiting for an earlier wave: host canary is ready, soaking 600s more"]
    );
    // The wave opens: r3 rolls out.
    for _ in 0..30 {
        if sim.round(&d3, Some(&Decision::Go)).is_empty() {
            break;
        }
    }
    assert_eq!(sim.running(), ["sha256:app:3"]);
}
