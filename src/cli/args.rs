//! The command line's definition (clap): every command, flag and help text, and the
//! defaults they fall back on. No behaviour: `main` dispatches, one file per command runs it.
//! `berth completions` and `berth man` render this same definition.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth::control::{self, ServiceRef};
use berth::source::git::{GitAuth, GitOptions};
use berth::telemetry::notify::Target;
use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

/// berth's version and the commit it was built from (build.rs; `unknown` without git).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BERTH_BUILD_COMMIT"),
    ")"
);

const TOP_HELP: &str = "Examples:
  berth validate /srv/berth              check the desired state; errors as file:line:col
  berth plan /srv/berth                  what apply would do now, one step per line
  berth apply /srv/berth                 converge once and wait for the rollouts
  berth run --dir /srv/berth             the controller (deploy/berth.service runs it)
  berth run --git https://git.example/ops/state.git --ref main
  berth status                           what runs and why (asks the running berth)
  berth history shop/web                 revisions, quarantine, pins of one service
  berth rollback shop/web                back to the previous stable revision, held
  berth completions bash > /etc/bash_completion.d/berth
  berth man | man -l -

Exit status: 0 ok, 1 failure or invalid desired state, 2 usage error.
Guides: docs/getting-started.md, docs/operations.md, docs/troubleshooting.md.";

/// berth keeps a Docker host in the state a directory of Compose files describes.
#[derive(Parser)]
#[command(
    name = "berth",
    version = VERSION,
    about,
    after_help = TOP_HELP,
    propagate_version = true
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// More logs (-v: info, -vv: debug with every engine call). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Where the desired state is.
#[derive(Args)]
pub struct Source {
    /// A project directory, or a directory whose subdirectories are projects.
    #[arg(required_unless_present = "git")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub git: GitArgs,
    /// Activate a Compose profile (repeatable); `*` activates all.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Directory of host-side variables: DIR/<project>.env feeds interpolation.
    #[arg(long, value_name = "DIR")]
    pub env_dir: Option<PathBuf>,
    /// age key file that opens encrypted env files (`.env.age`, SOPS dotenv); else the file
    /// SOPS_AGE_KEY_FILE names, else the keys in SOPS_AGE_KEY.
    #[arg(long, value_name = "FILE")]
    pub age_key_file: Option<PathBuf>,
    /// This host's name in the fleet's hosts file (berth-hosts.yaml): only the projects
    /// placed on it are loaded. Default: the machine's host name, when there is a hosts file.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

/// A git repository as the desired state (see docs/sources.md).
#[derive(Args)]
pub struct GitArgs {
    /// Read the desired state from this git repository (URL or path) instead of a directory.
    #[arg(long, value_name = "URL")]
    pub git: Option<String>,
    /// Branch, tag or full commit SHA to follow (default: the remote's default branch).
    #[arg(long = "ref", value_name = "REF", requires = "git")]
    pub reference: Option<String>,
    /// The desired-state directory inside the repository (default: its root).
    #[arg(long, value_name = "SUBDIR", requires = "git")]
    pub path: Option<PathBuf>,
    /// SSH private key (a deploy key) for the repository; without it git's own ssh
    /// settings and GIT_SSH_COMMAND apply.
    #[arg(long, value_name = "FILE", requires = "git")]
    pub git_ssh_key: Option<PathBuf>,
    /// File holding an HTTPS token for the repository (re-read at each fetch); else the
    /// BERTH_GIT_TOKEN environment variable. Never logged.
    #[arg(long, value_name = "FILE", requires = "git")]
    pub git_token_file: Option<PathBuf>,
    /// User name sent with the HTTPS token.
    #[arg(long, value_name = "NAME", default_value = "x-access-token")]
    pub git_username: String,
    /// Refuse commits whose signature `git verify-commit` does not accept (GPG, or SSH with
    /// an allowed-signers file); the last good commit keeps running.
    #[arg(long, requires = "git")]
    pub verify_signatures: bool,
    /// Allowed-signers file for SSH commit signatures (git's gpg.ssh.allowedSignersFile).
    #[arg(long, value_name = "FILE", requires = "verify_signatures")]
    pub git_allowed_signers: Option<PathBuf>,
}

impl GitArgs {
    /// The git source's options, when --git is given.
    pub fn options(&self, interval: Duration) -> Option<GitOptions> {
        Some(GitOptions {
            url: self.git.clone()?,
            reference: self.reference.clone(),
            path: self.path.clone(),
            interval,
            verify_signatures: self.verify_signatures,
            allowed_signers: self.git_allowed_signers.clone(),
            auth: GitAuth {
                ssh_key: self.git_ssh_key.clone(),
                token_file: self.git_token_file.clone(),
                token: std::env::var("BERTH_GIT_TOKEN").ok(),
                username: self.git_username.clone(),
            },
        })
    }
}

/// How to reach the engine.
#[derive(Args)]
pub struct EngineArgs {
    /// Docker endpoint (unix:///var/run/docker.sock, tcp://HOST:PORT); default: DOCKER_HOST or the local socket.
    #[arg(long, value_name = "URL")]
    pub docker_host: Option<String>,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Load and check the desired state: every problem as file:line:col, or a summary.
    #[command(
        after_help = "Examples:\n  berth validate examples/quickstart\n  berth validate /srv/stacks --profile debug --format json\n\nExit status: 0 valid, 1 invalid, 2 usage error."
    )]
    Validate(ValidateArgs),
    /// Show what `apply` would do now against the engine, one line per step with its cause.
    #[command(
        after_help = "Examples:\n  berth plan /srv/berth\n  berth plan /srv/berth --exit-code --data-dir /var/lib/berth   exit 2 when something would change\n\nServices whose dependencies are not ready yet show as `waits:`; apply plans them in a later round.\n\nExit status: 0 ok, 1 invalid state or engine error; with --exit-code, 2 when changes are pending."
    )]
    Plan(PlanArgs),
    /// Show what the desired state changes for each service, field by field, against the
    /// revision berth records as running.
    #[command(
        after_help = "Examples:\n  berth diff /srv/berth\n  berth diff /srv/berth shop --data-dir /var/lib/berth\n\nReads the desired state and berth's records only (no Docker needed; `berth plan` also looks at the containers). Environment values are never shown, only which keys changed.\n\nExit status: 0 ok, 1 invalid state, unreadable records or no such project; with --exit-code, 2 when something would be rolled out."
    )]
    Diff(DiffArgs),
    /// Converge the engine to the desired state once, and wait for it.
    #[command(
        after_help = "Examples:\n  berth apply examples/quickstart --data-dir /tmp/berth-data\n  berth apply /srv/berth --timeout 10m --prune\n\nExit status: 0 converged, 1 invalid state, a failed step, a blocked service (failed job) or timeout."
    )]
    Apply(ApplyArgs),
    /// The controller: keep the engine converged to DIR, reacting to engine events and
    /// re-reading DIR at every reconcile (and at least every --resync).
    #[command(
        after_help = "Examples:\n  berth run --dir /srv/berth --env-dir /etc/berth/env\n  berth run --git https://git.example/ops/state.git --ref main --webhook-secret-file /etc/berth/webhook-secret\n  berth run --dir /srv/berth --notify slack+http://127.0.0.1:9470/slack\n\nSIGTERM or SIGINT finish the current step and exit 0; SIGHUP reconciles now (`berth hold`, `release`, `rollback` and `retry` send it)."
    )]
    Run(RunArgs),
    /// Remove one project that is no longer in the desired state: its containers, the
    /// networks berth created for it, its image pins and built images, then its records.
    #[command(
        after_help = "Examples:\n  berth prune shop /srv/berth --data-dir /var/lib/berth\n  berth prune shop /srv/berth --yes --volumes\n\nDIR is the desired state: a project still in it is refused (berth would deploy it again) unless --force. berth shows what it will remove first and asks on a terminal; off one it needs --yes. Volumes are kept unless --volumes. `berth apply --prune` removes every orphaned project at once.\n\nExit status: 0 removed, 1 refused, declined, nothing of the project found, or a step failed."
    )]
    Prune(PruneArgs),
    /// Show a service's revisions, quarantines, rollout in progress and operator control.
    #[command(
        after_help = "Examples:\n  berth history shop/web\n  berth history shop/web --json --data-dir /var/lib/berth\n\nReads berth's records only (no Docker needed). Exit status: 0 ok, 1 no record of the service."
    )]
    History(HistoryArgs),
    /// Try quarantined revisions again and lift a degraded state (what failed until now).
    #[command(after_help = CONTROL_HELP)]
    Retry(ServiceArgs),
    /// Keep a service exactly as it runs: no rollout, no revert, until `berth release`.
    #[command(after_help = CONTROL_HELP)]
    Hold(ServiceArgs),
    /// End a `berth hold` or `berth rollback`: the service follows the desired state again.
    #[command(after_help = CONTROL_HELP)]
    Release(ServiceArgs),
    /// Roll a service back to a stable revision (through the readiness gate) and hold it there
    /// until `berth release`.
    #[command(after_help = CONTROL_HELP)]
    Rollback(RollbackArgs),
    /// What runs and why: per service the desired and running revisions, ready replicas,
    /// phase, since when, and the reason.
    #[command(
        after_help = "Examples:\n  berth status                      ask the berth run on 127.0.0.1:9469\n  berth status --server http://127.0.0.1:9469 --json\n  berth status /srv/stacks          no berth run: observe the engine and read the data dir\n\nExit status: 0 shown, 1 no berth run answered (and no DIR) or the engine failed."
    )]
    Status(StatusArgs),
    /// berth's events (rollouts, reverts, degradations, self-heals, invalid desired state),
    /// from a running berth (--server) or the data dir's event file.
    #[command(
        after_help = "Examples:\n  berth events --since 1h\n  berth events --follow --server http://127.0.0.1:9469\n\nExit status: 0 ok, 1 the server or the file could not be read."
    )]
    Events(EventsArgs),
    /// A project's or a service's container output, prefixed by container like `docker
    /// compose logs`; or the kept last lines of a failed revision (--revision).
    #[command(
        after_help = "Examples:\n  berth logs shop                     every container of the project\n  berth logs shop/web --follow --tail 20\n  berth logs shop/web --since 10m\n  berth logs shop/web --revision r3   the failed candidate's last lines, kept by berth\n\nExit status: 0 ok, 1 nothing to show or the engine failed."
    )]
    Logs(LogsArgs),
    /// Image updates (`x-berth.update`): what the registries offer each service now, pending
    /// or skipped and why; `berth updates apply PROJECT/SERVICE DIR` writes one now.
    #[command(
        after_help = "Examples:\n  berth updates /srv/berth\n  berth updates /srv/berth --json\n  berth updates apply shop/web /srv/berth   write the pending update now (window and min_age ignored)\n\nAsks each registry once per repository; credentials as for pulls (DOCKER_CONFIG). Exit status: 0 ok, 1 invalid state, a registry that could not be asked, or nothing to apply.",
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true
    )]
    Updates(UpdatesArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  berth completions bash > /etc/bash_completion.d/berth\n  berth completions zsh > \"${fpath[1]}/_berth\"\n  berth completions fish > ~/.config/fish/completions/berth.fish"
    )]
    Completions(CompletionsArgs),
    /// Print the manual page berth(1), or write all pages into a directory.
    #[command(
        after_help = "Examples:\n  berth man | man -l -\n  berth man --dir /usr/local/share/man/man1 && mandb"
    )]
    Man(ManArgs),
    /// The port-handoff proxy: hold the published ports of services with x-berth.handoff and
    /// forward to their ready replicas, following the routes file berth writes.
    #[command(
        after_help = "Examples:\n  berth proxy --routes /var/lib/berth/proxy/routes.json --admin 127.0.0.1:9470\n\nberth run and berth apply start it, detached, when services hand off ports and nothing answers on their --proxy-admin address (docs/rollouts.md#port-handoff); it keeps its last routes when the file is missing or invalid. SIGTERM or SIGINT stop it.\n\nExit status: 0 stopped, 1 the admin address could not be bound."
    )]
    Proxy(ProxyArgs),
    /// The fleet (berth-hosts.yaml): `berth fleet status` asks every host's berth for its
    /// status and shows them on one screen.
    #[command(
        subcommand,
        after_help = "Examples:\n  berth fleet status /srv/fleet --fleet-token-file /etc/berth/fleet-token\n  berth fleet status --git https://git.example/ops/fleet.git --format json\n\nSee docs/fleet.md."
    )]
    Fleet(FleetCommand),
}

/// `berth fleet …`.
#[derive(Subcommand)]
pub enum FleetCommand {
    /// Every host of the hosts file: reachable or why not, the source revision it applies, each
    /// service's phase and revision, its wave and what a gated service waits for.
    #[command(
        after_help = "Examples:\n  berth fleet status /srv/fleet --fleet-token-file /etc/berth/fleet-token\n  berth fleet status --git https://git.example/ops/fleet.git --format json\n\nAsks every host's status_url (GET /api/v1/status) at once, each bounded by --timeout. Needs no engine.\n\nExit status: 0 every host answered, 1 a host could not be read or the desired state is invalid."
    )]
    Status(FleetStatusArgs),
}

/// `berth fleet status`'s arguments.
#[derive(Args)]
pub struct FleetStatusArgs {
    #[command(flatten)]
    pub source: Source,
    /// File holding the fleet's shared token, sent to every host as a bearer token.
    #[arg(long, value_name = "FILE")]
    pub fleet_token_file: Option<PathBuf>,
    /// How long each host may take to answer.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `berth proxy`'s arguments.
#[derive(Args)]
pub struct ProxyArgs {
    /// The routes file berth writes (read every 200 ms).
    #[arg(long, value_name = "FILE", default_value_os_t = default_data_dir().join("proxy/routes.json"))]
    pub routes: PathBuf,
    /// Address of the admin endpoint (/state, /metrics, /healthz); `none` for no endpoint.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9470", value_parser = parse_listen)]
    pub admin: Listen,
}

const CONTROL_HELP: &str = "Examples:\n  berth hold shop/db              freeze it as it runs\n  berth rollback shop/web --to 3  back to r3 (see `berth history`), held there\n  berth release shop/web          follow the desired state again\n  berth retry shop/web            try a quarantined revision again\n\nWrites only the service's control file in the data dir (no Docker needed) and wakes a running `berth run` with SIGHUP; without one, the change takes effect at the next `berth apply` or `berth run`.\n\nExit status: 0 ok, 1 refused or failed, 2 usage error.";

/// `berth updates`' arguments: list, or `apply`.
#[derive(Args)]
pub struct UpdatesArgs {
    #[command(subcommand)]
    pub command: Option<UpdatesCommand>,
    #[command(flatten)]
    pub list: UpdatesList,
}

/// `berth updates [DIR]`: what the checks find now.
#[derive(Args)]
pub struct UpdatesList {
    #[command(flatten)]
    pub source: Source,
    /// berth's state directory: rollouts that failed there are never proposed again.
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// One JSON object per service instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `berth updates apply`.
#[derive(Subcommand)]
pub enum UpdatesCommand {
    /// Write one service's update now (a directory source): the `image:` line or its `.env`
    /// variable; a running `berth run --dir` rolls it out like any edit.
    Apply(UpdatesApply),
}

/// `berth updates apply PROJECT/SERVICE DIR`.
#[derive(Args)]
pub struct UpdatesApply {
    /// The service, as PROJECT/SERVICE (e.g. shop/web).
    #[arg(value_name = "PROJECT/SERVICE")]
    pub service: ServiceRef,
    #[command(flatten)]
    pub list: UpdatesList,
}

/// The service a manual control acts on.
#[derive(Args)]
pub struct ServiceArgs {
    /// The service, as PROJECT/SERVICE (e.g. shop/web).
    #[arg(value_name = "PROJECT/SERVICE")]
    pub service: ServiceRef,
    /// berth's state directory (the one `berth run`/`apply` use).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// `berth run`'s arguments.
#[derive(Args)]
pub struct RunArgs {
    /// The desired-state directory (a project, or a directory of projects), watched for
    /// changes.
    #[arg(long, value_name = "DIR", required_unless_present = "git")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub git: GitArgs,
    /// Fetch the git repository at least this often (and on webhook pushes).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Wait for this much quiet after a file change in DIR before re-reading it.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub debounce: Duration,
    /// File holding the secret of the git webhook (POST /hooks/git); else the
    /// BERTH_WEBHOOK_SECRET environment variable. Without a secret the webhook is off.
    #[arg(long, value_name = "FILE", requires = "git")]
    pub webhook_secret_file: Option<PathBuf>,
    /// Activate a Compose profile (repeatable); `*` activates all.
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Directory of host-side variables: DIR/<project>.env feeds interpolation.
    #[arg(long, value_name = "DIR")]
    pub env_dir: Option<PathBuf>,
    /// age key file that opens encrypted env files (`.env.age`, SOPS dotenv); else the file
    /// SOPS_AGE_KEY_FILE names, else the keys in SOPS_AGE_KEY.
    #[arg(long, value_name = "FILE")]
    pub age_key_file: Option<PathBuf>,
    /// This host's name in the fleet's hosts file (berth-hosts.yaml): only the projects
    /// placed on it are applied. Default: the machine's host name, when there is a hosts file.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// berth's state directory (holds the lock: one berth per engine).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Admin address of the port-handoff proxy: berth starts `berth proxy` there when
    /// services hand off ports and none answers; `none`: run it yourself.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9470", value_parser = parse_listen)]
    pub proxy_admin: Listen,
    /// Full reconcile at least this often, whatever happens (e.g. 60s).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub resync: Duration,
    /// Remove projects that are no longer in the desired state.
    #[arg(long)]
    pub prune: bool,
    /// Allow a desired state with no services while managed containers run.
    #[arg(long)]
    pub allow_empty: bool,
    /// Services worked on at once.
    #[arg(long, default_value_t = 8)]
    pub parallelism: usize,
    /// Never check registries for image updates, whatever `x-berth.update` says (`berth
    /// updates` still can).
    #[arg(long)]
    pub no_update_checks: bool,
    /// Push update commits to this branch (rebuilt from the tracked branch and force-pushed
    /// at each update, for review) instead of the tracked branch (--git only).
    #[arg(
        long,
        value_name = "NAME",
        requires = "git",
        conflicts_with = "no_update_checks"
    )]
    pub update_branch: Option<String>,
    /// File holding the fleet's shared token: sent to the peers whose status this host's waves
    /// wait for, and required from non-loopback clients of this host's /api/v1/* and /metrics.
    /// Never logged.
    #[arg(long, value_name = "FILE")]
    pub fleet_token_file: Option<PathBuf>,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    berth::desired::syntax::units::parse_duration(s)
}

/// The data dir when `--data-dir` and `BERTH_DATA_DIR` are not given: see [`data_dir_for`].
pub fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    data_dir_for(
        euid,
        |k| std::env::var_os(k),
        Path::new("/var/lib/berth").exists(),
    )
}

/// The data dir by the effective user (not `$USER`, which `sudo` and service managers set
/// or leave as they like): `BERTH_DATA_DIR` when set; `/var/lib/berth` for root, and for anyone
/// once it exists (a system install's records, which read commands then find without
/// `--data-dir`); otherwise `$XDG_STATE_HOME/berth` or `~/.local/state/berth`.
pub fn data_dir_for(
    euid: u32,
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
    system_dir_exists: bool,
) -> PathBuf {
    if let Some(dir) = env("BERTH_DATA_DIR") {
        return PathBuf::from(dir);
    }
    if euid == 0 || system_dir_exists {
        return PathBuf::from("/var/lib/berth");
    }
    env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("berth")
}

/// Where berth's HTTP server listens by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9469";
/// Where `berth status` and `berth events` look for a running berth by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9469";

/// `berth run`'s observability flags.
#[derive(Args)]
pub struct TelemetryArgs {
    /// Serve the dashboard (/), /metrics, /healthz, /readyz, /api/v1/status and /api/v1/events
    /// here (`off`: no server).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
    pub listen: Listen,
    /// POST meaningful transitions (rollout succeeded/failed/reverted, degraded, desired state
    /// invalid, recovered) to this webhook (repeatable), over HTTP or HTTPS:
    /// [FORMAT+]http[s]://HOST[:PORT]/PATH[#FILTER]. FORMAT: json (the event; the default),
    /// slack, discord, teams, ntfy or gotify. FILTER: events=KIND,...&severity=warning&projects=NAME,...
    #[arg(long, value_name = "URL", value_parser = parse_target)]
    pub notify: Vec<Target>,
    /// Also trust the CA certificates in this PEM file for https:// receivers (besides the
    /// system's roots).
    #[arg(long, value_name = "FILE")]
    pub notify_ca: Option<PathBuf>,
}

/// `--listen`: an address, or none.
#[derive(Debug, Clone, Copy)]
pub struct Listen(pub Option<SocketAddr>);

fn parse_listen(s: &str) -> Result<Listen, String> {
    if matches!(s, "off" | "none" | "") {
        return Ok(Listen(None));
    }
    s.parse::<SocketAddr>()
        .map(|a| Listen(Some(a)))
        .map_err(|_| format!("{s}: expected IP:PORT (e.g. 127.0.0.1:9469, [::1]:9469) or off"))
}

fn parse_target(s: &str) -> Result<Target, String> {
    s.parse()
}

/// `berth status`'s arguments.
#[derive(Args)]
pub struct StatusArgs {
    /// Build the status from the engine, this desired-state directory and the data dir
    /// instead of asking a running berth.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Ask the berth run serving here (default: http://127.0.0.1:9469 when no DIR is given).
    #[arg(long, value_name = "URL", conflicts_with = "dir")]
    pub server: Option<String>,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
    /// Activate a Compose profile (repeatable), with DIR.
    #[arg(long = "profile", value_name = "NAME", requires = "dir")]
    pub profiles: Vec<String>,
    /// Directory of host-side variables, with DIR.
    #[arg(long, value_name = "DIR", requires = "dir")]
    pub env_dir: Option<PathBuf>,
    /// age key file that opens encrypted env files, with DIR (else SOPS_AGE_KEY_FILE).
    #[arg(long, value_name = "FILE", requires = "dir")]
    pub age_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// berth's state directory (its records are read, never written), with DIR.
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Admin address of the port-handoff proxy, asked (with DIR) who receives traffic and
    /// what drains; `none`: not asked (the routes file alone, connections unknown).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9470", value_parser = parse_listen, requires = "dir")]
    pub proxy_admin: Listen,
}

/// `berth events`'s arguments.
#[derive(Args)]
pub struct EventsArgs {
    /// Ask the berth run serving here instead of reading the data dir's event file.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Only events after this: a sequence number, an RFC 3339 time, or a duration (10m).
    #[arg(long, value_name = "SINCE")]
    pub since: Option<String>,
    /// Keep printing new events as they come (Ctrl-C ends).
    #[arg(short, long)]
    pub follow: bool,
    /// One JSON object a line.
    #[arg(long)]
    pub json: bool,
    /// berth's state directory (holds events.jsonl).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// `berth logs`'s arguments.
#[derive(Args)]
pub struct LogsArgs {
    /// PROJECT or PROJECT/SERVICE (e.g. shop or shop/web).
    #[arg(value_name = "PROJECT[/SERVICE]")]
    pub target: berth::logs::LogsTarget,
    /// Keep printing new output until the containers stop (Ctrl-C ends).
    #[arg(short, long, conflicts_with = "revision")]
    pub follow: bool,
    /// Only output since then: a duration (10m, 1h) or an RFC 3339 time.
    #[arg(long, value_name = "SINCE", conflicts_with = "revision")]
    pub since: Option<String>,
    /// Only the last N lines of each container.
    #[arg(short = 'n', long, value_name = "N")]
    pub tail: Option<usize>,
    /// The last lines berth kept of revision N's failed candidate or gate (see `berth
    /// history`): readable after its container is gone. Needs PROJECT/SERVICE.
    #[arg(long, value_name = "REV", value_parser = control::parse_revision)]
    pub revision: Option<u64>,
    /// berth's state directory (for --revision, and the secrets to mask).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `berth completions`'s arguments.
#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// `berth man`'s arguments.
#[derive(Args)]
pub struct ManArgs {
    /// Write berth.1 and one page per command (berth-apply.1, ...) into this directory instead
    /// of printing berth(1) on stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `berth validate`'s arguments.
#[derive(Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub source: Source,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Check every host's part of the fleet (berth-hosts.yaml) and print which project lands
    /// where.
    #[arg(long, conflicts_with = "host")]
    pub all_hosts: bool,
}

/// `berth plan`'s arguments.
#[derive(Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Exit 2 when the plan has steps.
    #[arg(long)]
    pub exit_code: bool,
    /// Print which project lands on which host of the fleet (berth-hosts.yaml) instead of a
    /// plan; needs no engine.
    #[arg(long, conflicts_with = "host")]
    pub all_hosts: bool,
    /// Also plan removing projects that are no longer in the desired state.
    #[arg(long)]
    pub prune: bool,
    /// berth's state directory (its records are read, never written, by plan).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// `berth diff`'s arguments.
#[derive(Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub source: Source,
    /// Only this project.
    #[arg(value_name = "PROJECT")]
    pub project: Option<String>,
    /// Exit 2 when something would be rolled out.
    #[arg(long)]
    pub exit_code: bool,
    /// berth's state directory (its records are read, never written).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// `berth apply`'s arguments.
#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Remove projects that are no longer in the desired state.
    #[arg(long)]
    pub prune: bool,
    /// Allow a desired state with no services while managed containers run.
    #[arg(long)]
    pub allow_empty: bool,
    /// berth's state directory (holds the lock: one berth per engine).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Give up waiting for dependencies after this long (e.g. 5m).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Services worked on at once.
    #[arg(long, default_value_t = 8)]
    pub parallelism: usize,
    /// Admin address of the port-handoff proxy: berth starts `berth proxy` there when
    /// services hand off ports and none answers; `none`: run it yourself.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9470", value_parser = parse_listen)]
    pub proxy_admin: Listen,
}

/// `berth prune`'s arguments.
#[derive(Args)]
pub struct PruneArgs {
    /// The project to remove (its compose project name).
    pub project: String,
    #[command(flatten)]
    pub source: Source,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// berth's state directory (holds the lock and the project's records).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
    /// Remove without asking (needed when standard input is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Prune the project even though it is still in the desired state (the next `apply`
    /// or `run` deploys it again, from scratch).
    #[arg(long)]
    pub force: bool,
    /// Remove the volumes berth created for the project too, with their data.
    #[arg(long)]
    pub volumes: bool,
}

/// `berth history`'s arguments.
#[derive(Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// Print the record as JSON (container templates left out: they hold secrets).
    #[arg(long)]
    pub json: bool,
}

/// `berth rollback`'s arguments.
#[derive(Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub target: ServiceArgs,
    /// The revision (N or rN, see `berth history`); default: the newest stable revision
    /// older than the current one.
    #[arg(long, value_name = "REV", value_parser = control::parse_revision)]
    pub to: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_data_dir_follows_the_effective_user_not_user() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        // Root without USER (a unit, `sudo -i`, a container): the system dir.
        assert_eq!(
            data_dir_for(0, env(&[("HOME", "/root")]), false),
            PathBuf::from("/var/lib/berth")
        );
        // USER=root does not make an ordinary user root.
        assert_eq!(
            data_dir_for(1000, env(&[("USER", "root"), ("HOME", "/home/ann")]), false),
            PathBuf::from("/home/ann/.local/state/berth")
        );
        // Once the system dir exists, operators' read commands find it.
        assert_eq!(
            data_dir_for(1000, env(&[("HOME", "/home/ann")]), true),
            PathBuf::from("/var/lib/berth")
        );
        assert_eq!(
            data_dir_for(
                1000,
                env(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")]),
                false
            ),
            PathBuf::from("/x/berth")
        );
        assert_eq!(
            data_dir_for(0, env(&[("BERTH_DATA_DIR", "/srv/d")]), true),
            PathBuf::from("/srv/d")
        );
    }
}
