//! berth keeps a Docker host in the state a directory of Compose files describes.
//!
//! # Layout
//! - [`desired`]: load a directory of Compose projects into a validated
//!   [`desired::DesiredState`] (pure apart from reading files):
//!   - `discover` finds projects and reads files (the only IO),
//!   - `identity` reads the `COMPOSE_*` variables (project name and where it came from,
//!     files, profiles), `node` parses YAML into positioned trees (several documents, compose's
//!     `!reset`/`!override` tags), `interpolate` + `envfile` substitute variables, `assemble`
//!     applies `include` and `extends` (other files read through `discover`), `merge` applies
//!     the next file or document,
//!   - `convert/` builds the typed `model` field by field (`service/` one file per field
//!     group: build, environment, publish, mounts, relations, runtime; `syntax/` holds the
//!     small string grammars: durations, sizes, ports, volumes, image references, names),
//!   - `validate` cross-checks services and projects, `hash` gives each service its revision
//!     identity, `context` the files a `build:` sends (`.dockerignore`) and their incremental
//!     content hash, `load` runs the pipeline, `diag` carries positioned diagnostics.
//! - [`engine`]: the Docker boundary — the [`engine::Engine`] trait and its engine-neutral
//!   types (errors name their operation as an [`engine::EngineOp`]), `docker/` (bollard,
//!   production; one file per object kind: containers, images, networks, system, with
//!   `create_body` and `errors` for the translation), `fake/` (in memory, tests; its state,
//!   the controls tests play the world with, the calls by object kind), `labels`
//!   (ownership labels and compose-compatible names), `auth` (registry credentials for pulls
//!   and builds, found as the Docker CLI finds them), `claim` (one berth per engine: the
//!   claim container and the rule for a holder that died), `liveness` (a bounded ping: is the
//!   engine answering now, for readiness and status).
//! - [`reconcile`]: `observed` (what exists), `drift` (pure: does each replica have the
//!   networks, published ports and mounts its revision's recorded spec asks for; one that
//!   does not is connected or replaced, never promoted), `plan/` (pure: desired × observed × records ×
//!   now → steps with causes, record changes, events; `jobs`, `depends`), `rollout/` (pure:
//!   the state machine of one long-running service — its `phase`, begin, one replica's step
//!   through the gate, revert, quarantine, pins, smoke/pre-deploy gates, self-heal, failed
//!   builds), `action` (the engine calls a plan is made of, shared by plan and rollout),
//!   `reason` (closed sets of wait, block, held, fail, heal and event reasons: `Display` for
//!   people, `label()` for metrics and event reasons), `gate` (pure: is a candidate ready,
//!   progressing or failed), `event` (what a person should hear about), `container_spec`
//!   (pure: a service → what a create sends, a network → what its create sends), `takeover`
//!   (pure: compose containers from a project's directory under another project name), `scope` (pure: what a round observes besides
//!   the containers — the inventory unless every service is settled, the restart counts of
//!   gated replicas), `observe` and `execute` (the only code here that calls the engine;
//!   `execute` saves records before steps), `round` (one reconcile round, the only place that
//!   strings records → observe → plan → execute together; a typed `Outcome`), `probe`
//!   (berth's HTTP/TCP/exec probes and their threshold tracker) and `prober` (runs them in the
//!   background per container).
//! - [`apply`]: one pass to convergence (`berth apply`), round after round, and when to stop.
//! - [`controller`]: the long-running loop (`berth run`): triggers, resync, one round per
//!   wake-up, the next wake-up from the round's outcome (`error_policy` when it failed).
//! - [`control`]: the operator's manual controls (`berth history`, `retry`, `hold`, `release`,
//!   `rollback`): pure decisions on a service's record and the `history` table; the CLI
//!   writes the control file and wakes `berth run` ([`lock::wake_controller`]).
//! - [`errors`]: `chain`, an error with all its causes on one line, for whatever reaches a
//!   person (logs, status API, CLI).
//! - [`lock`]: one berth per data directory, and waking (SIGHUP) the `berth run` holding it.
//! - [`proxy`]: the port-handoff proxy (`berth proxy`, a process of its own): `routes` (the
//!   routes file berth writes, pure), `table` (one published port's backends: round-robin,
//!   drain), `tcp` and `http` (the two modes), `admin` (`/state`, `/metrics`), and `mod`
//!   (applying a routes file, following it).
//! - [`report`]: summaries of a load for `berth validate`.
//! - [`source`]: where `berth run` reads the desired state: `dir` (notify-debounced watch,
//!   fingerprint of each re-load), `git/` (a bare clone driven by the git CLI, fetched on an
//!   interval and on webhook, each commit in its own tree, switched atomically: `command`,
//!   `repo`, `sync`), `webhook`
//!   (signature checks and the `POST /hooks/git` handler).
//! - [`store`]: the revision store in `DATA_DIR/state/` (pure `ServiceRecord` rules for
//!   revisions, revert targets, quarantine, pruning, job runs; atomic JSON files per service).
//! - [`telemetry`]: observability — the hub the controller reports every round to, the
//!   status model (`berth status`, `/api/v1/status`), Prometheus metrics, the event log
//!   (ring + `events.jsonl`), notification webhooks (`notify/`: delivery, receivers and their
//!   filters, each receiver's native format), the HTTP server (`--listen`) and the read-only
//!   web dashboard it serves at `/` (`dashboard/`).
//! - [`http_client`]: the one HTTP/1.1 client (hyper's client connection over TCP or
//!   rustls, every exchange under a timeout, bodies read up to a limit) the probes, the
//!   notifications, the CLI and the registry checks share (`error`: typed failures naming
//!   `host:port`; `url`; `tls`: the one rustls set-up, the system's roots, or the bundled ones
//!   when it has none, plus a CA file or a registry's `certs.d` directory).
//! - [`redact`]: values from host env files (`--env-dir`) masked by value in every output
//!   (logs, status, events, metrics, notifications, CLI output).
//! - [`update`]: image update automation (`x-berth.update`): `spec` and `choose` (pure: the
//!   policy, which tag it picks, window and minimum age), `rewrite` (pure: the byte-exact edit
//!   of a Compose `image:` value or the `.env` variable behind it), `registry` (a Registry HTTP
//!   API v2 client: tags, manifests, digests, token and basic auth), `check` (one round of
//!   checks: one tag list per repository, shared by the services that use it).
//! - [`util`]: what several modules share, written once: `id::short`, and `time` (the wall
//!   clock read, civil dates).
//! - The binary: `main.rs` parses the arguments (`cli/args.rs`, clap) and dispatches to
//!   `cli/`, one file per command (`validate`, `plan`, `apply`, `run`, `status`, `events`,
//!   `control`: history/retry/hold/release/rollback, `completions`, `man`), with `setup`
//!   (runtime, engine connection, loading), `client` (asking a running berth) and
//!   `telemetry` (`berth run`'s hub and HTTP server).
//!
//! # Data flow
//! One round (`reconcile::round`), the same for `apply`, `run`, `plan` and `status DIR`:
//! ```text
//! DIR ─► desired::load ─► DesiredState ────────────────────────────────────┐
//! store ─► records (+ operator control) ─┐                                  │
//! engine ─► containers ──────────────────┼─► record job runs ─► records ────┤
//!   (+ prober verdicts, last round's     │                                  │
//!    step errors and failed builds)      └─► scope (pure) ─► inventory,     │
//!                                                restart counts ─► observed ┤
//!                                                                           ▼
//!                                          plan (pure, once a round, takes now) ─► Plan
//!                                                  │ records ─► store (saved first)
//!                                                  │ steps   ─► execute ─► engine
//!                                                  │   (pulls and builds first, then services)
//!                                                  └ events  ─► logs ─► Outcome
//!  apply: rounds until converged, failed or timed out; plan, status DIR: one round, not
//!  executed; controller: a round per wake-up (engine events, resync, probe changes,
//!  SIGHUP), the next wake-up from the Outcome (or error_policy)
//! ```

pub mod apply;
pub mod changes;
pub mod control;
pub mod controller;
pub mod desired;
pub mod engine;
pub mod errors;
pub mod fleet;
pub mod http_client;
pub mod lock;
pub mod logs;
pub mod progress;
pub mod proxy;
pub mod prune;
pub mod reconcile;
pub mod redact;
pub mod report;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod update;
pub mod util;
