//! berth keeps a Docker host in the state a directory of Compose files describes.
//!
//! # Layout
//! - [`desired`]: load a directory of Compose projects into a validated
//!   [`desired::DesiredState`] (pure apart from reading files):
//!   - `discover` finds projects and reads files (the only IO),
//!   - `node` parses YAML into positioned trees, `interpolate` + `envfile` substitute
//!     variables, `merge` applies the override file,
//!   - `convert/` builds the typed `model` field by field (`syntax/` holds the small string
//!     grammars: durations, sizes, ports, volumes, image references, names),
//!   - `validate` cross-checks services and projects, `hash` gives each service its revision
//!     identity, `context` the files a `build:` sends (`.dockerignore`) and their incremental
//!     content hash, `load` runs the pipeline, `diag` carries positioned diagnostics.
//! - [`engine`]: the Docker boundary — the [`engine::Engine`] trait and its engine-neutral
//!   types, `docker` (bollard, production), `fake` (in memory, tests), `labels` (ownership
//!   labels and compose-compatible names).
//! - [`reconcile`]: `observed` (what exists), `drift` (pure: does each replica have the
//!   networks, published ports and mounts its revision's recorded spec asks for; one that
//!   does not is connected or replaced, never promoted), `plan` (pure: desired × observed × records ×
//!   now → steps with causes, record changes, events), `rollout` (pure: the state machine of
//!   one long-running service — begin, start-first/stop-first replicas through the gate,
//!   revert, quarantine, pins, smoke/pre-deploy gates, self-heal, failed builds), `gate`
//!   (pure: is a candidate ready, progressing or failed), `event` (what a person should hear
//!   about), `container_spec` (pure: a service → what a create sends), `observe` and
//!   `execute` (the only code here that calls the engine; `execute` saves records before
//!   steps), `probe` (berth's HTTP/TCP/exec probes and their threshold tracker) and `prober`
//!   (runs them in the background per container).
//! - [`apply`]: one pass to convergence (`berth apply`), round after round.
//! - [`controller`]: the long-running loop (`berth run`): triggers, resync, backoff.
//! - [`control`]: the operator's manual controls (`berth history`, `retry`, `hold`, `release`,
//!   `rollback`): pure decisions on a service's record and the `history` table; `main.rs`
//!   writes the control file and wakes `berth run` with SIGHUP.
//! - [`lock`]: one berth per data directory.
//! - [`report`]: summaries of a load for `berth validate`.
//! - [`source`]: where `berth run` reads the desired state: `dir` (notify-debounced watch,
//!   fingerprint of each re-load), `git` (a bare clone driven by the git CLI, fetched on an
//!   interval and on webhook, each commit in its own tree, switched atomically), `webhook`
//!   (signature checks and the `POST /hooks/git` handler).
//! - [`store`]: the revision store in `DATA_DIR/state/` (pure `ServiceRecord` rules for
//!   revisions, revert targets, quarantine, pruning, job runs; atomic JSON files per service).
//! - [`telemetry`]: observability — the hub the controller reports every round to, the
//!   status model (`berth status`, `/api/v1/status`), Prometheus metrics, the event log
//!   (ring + `events.jsonl`), notification webhooks, and the HTTP server (`--listen`).
//! - `main.rs`: the CLI.
//!
//! # Data flow
//! ```text
//! DIR ─► desired::load ─► DesiredState ───┐
//! engine ─► observe ─► ObservedState ─────┤   (+ prober verdicts, last round's step errors
//!                                         │      and failed builds)
//! store ─► records (+ operator control) ──┼─► plan (pure, takes now) ─► Plan
//!                                         │        │ records ─► store (saved first)
//!                                         │        │ steps   ─► execute ─► engine
//!                                         │        │   (pulls and builds first, then services)
//!        apply: rounds until converged ───┘        └ events  ─► logs
//!        controller: on events, resync, probe changes, SIGHUP, wake-ups
//! ```

pub mod apply;
pub mod control;
pub mod controller;
pub mod desired;
pub mod engine;
pub mod lock;
pub mod reconcile;
pub mod report;
pub mod source;
pub mod store;
pub mod telemetry;
