//! The `berth` command line: parses arguments, runs one command, maps the outcome to an exit
//! code (0 ok, 1 failure or invalid desired state, 2 usage — and for `plan --exit-code`,
//! changes pending).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use berth::apply::{self, ApplyOptions, Progress, unix_now};
use berth::control::{self, Change, ControlError, ServiceRef};
use berth::controller;
use berth::desired::{self, DesiredState, LoadOptions};
use berth::engine::Engine;
use berth::engine::docker::DockerEngine;
use berth::lock::{self, DataDirLock};
use berth::reconcile::observe::observe_and_plan;
use berth::reconcile::plan::{PlanOptions, Records};
use berth::report;
use berth::source::{self, dir::DirOptions, git::GitAuth, git::GitOptions, webhook};
use berth::store::Store;
use clap::{Args, Parser, Subcommand, ValueEnum};

mod cli_docs;
mod cli_observe;

/// berth's version and the commit it was built from (build.rs; `unknown` without git).
const VERSION: &str = concat!(
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
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// More logs (-v: info, -vv: debug with every engine call). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// Where the desired state is.
#[derive(Args)]
struct Source {
    /// A project directory, or a directory whose subdirectories are projects.
    #[arg(required_unless_present = "git")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    git: GitArgs,
    /// Activate a Compose profile (repeatable); `*` activates all.
    #[arg(long = "profile", value_name = "NAME")]
    profiles: Vec<String>,
    /// Directory of host-side variables: DIR/<project>.env feeds interpolation.
    #[arg(long, value_name = "DIR")]
    env_dir: Option<PathBuf>,
}

/// A git repository as the desired state (see docs/sources.md).
#[derive(Args)]
struct GitArgs {
    /// Read the desired state from this git repository (URL or path) instead of a directory.
    #[arg(long, value_name = "URL")]
    git: Option<String>,
    /// Branch, tag or full commit SHA to follow (default: the remote's default branch).
    #[arg(long = "ref", value_name = "REF", requires = "git")]
    reference: Option<String>,
    /// The desired-state directory inside the repository (default: its root).
    #[arg(long, value_name = "SUBDIR", requires = "git")]
    path: Option<PathBuf>,
    /// SSH private key (a deploy key) for the repository; without it git's own ssh
    /// settings and GIT_SSH_COMMAND apply.
    #[arg(long, value_name = "FILE", requires = "git")]
    git_ssh_key: Option<PathBuf>,
    /// File holding an HTTPS token for the repository (re-read at each fetch); else the
    /// BERTH_GIT_TOKEN environment variable. Never logged.
    #[arg(long, value_name = "FILE", requires = "git")]
    git_token_file: Option<PathBuf>,
    /// User name sent with the HTTPS token.
    #[arg(long, value_name = "NAME", default_value = "x-access-token")]
    git_username: String,
    /// Refuse commits whose signature `git verify-commit` does not accept (GPG, or SSH with
    /// an allowed-signers file); the last good commit keeps running.
    #[arg(long, requires = "git")]
    verify_signatures: bool,
    /// Allowed-signers file for SSH commit signatures (git's gpg.ssh.allowedSignersFile).
    #[arg(long, value_name = "FILE", requires = "verify_signatures")]
    git_allowed_signers: Option<PathBuf>,
}

impl GitArgs {
    /// The git source's options, when --git is given.
    fn options(&self, interval: Duration) -> Option<GitOptions> {
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
struct EngineArgs {
    /// Docker endpoint (unix:///var/run/docker.sock, tcp://HOST:PORT); default: DOCKER_HOST or the local socket.
    #[arg(long, value_name = "URL")]
    docker_host: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Load and check the desired state: every problem as file:line:col, or a summary.
    #[command(
        after_help = "Examples:\n  berth validate examples/quickstart\n  berth validate /srv/stacks --profile debug --format json\n\nExit status: 0 valid, 1 invalid, 2 usage error."
    )]
    Validate {
        #[command(flatten)]
        source: Source,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Show what `apply` would do now against the engine, one line per step with its cause.
    #[command(
        after_help = "Examples:\n  berth plan /srv/berth\n  berth plan /srv/berth --exit-code --data-dir /var/lib/berth   exit 2 when something would change\n\nServices whose dependencies are not ready yet show as `waits:`; apply plans them in a later round.\n\nExit status: 0 ok, 1 invalid state or engine error; with --exit-code, 2 when changes are pending."
    )]
    Plan {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        engine: EngineArgs,
        /// Exit 2 when the plan has steps.
        #[arg(long)]
        exit_code: bool,
        /// Also plan removing projects that are no longer in the desired state.
        #[arg(long)]
        prune: bool,
        /// berth's state directory (its records are read, never written, by plan).
        #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
    },
    /// Converge the engine to the desired state once, and wait for it.
    #[command(
        after_help = "Examples:\n  berth apply examples/quickstart --data-dir /tmp/berth-data\n  berth apply /srv/berth --timeout 10m --prune\n\nExit status: 0 converged, 1 invalid state, a failed step, a blocked service (failed job) or timeout."
    )]
    Apply {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        engine: EngineArgs,
        /// Remove projects that are no longer in the desired state.
        #[arg(long)]
        prune: bool,
        /// Allow a desired state with no services while managed containers run.
        #[arg(long)]
        allow_empty: bool,
        /// berth's state directory (holds the lock: one berth per engine).
        #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
        data_dir: PathBuf,
        /// Give up waiting for dependencies after this long (e.g. 5m).
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        timeout: Duration,
        /// Services worked on at once.
        #[arg(long, default_value_t = 8)]
        parallelism: usize,
    },
    /// The controller: keep the engine converged to DIR, reacting to engine events and
    /// re-reading DIR at every reconcile (and at least every --resync).
    #[command(
        after_help = "Examples:\n  berth run --dir /srv/berth --env-dir /etc/berth/env\n  berth run --git https://git.example/ops/state.git --ref main --webhook-secret-file /etc/berth/webhook-secret\n  berth run --dir /srv/berth --notify slack+http://127.0.0.1:9470/slack\n\nSIGTERM or SIGINT finish the current step and exit 0; SIGHUP reconciles now (`berth hold`, `release`, `rollback` and `retry` send it)."
    )]
    Run(RunArgs),
    /// Show a service's revisions, quarantines, rollout in progress and operator control.
    #[command(
        after_help = "Examples:\n  berth history shop/web\n  berth history shop/web --json --data-dir /var/lib/berth\n\nReads berth's records only (no Docker needed). Exit status: 0 ok, 1 no record of the service."
    )]
    History {
        #[command(flatten)]
        target: ServiceArgs,
        /// Print the record as JSON (container templates left out: they hold secrets).
        #[arg(long)]
        json: bool,
    },
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
    Rollback {
        #[command(flatten)]
        target: ServiceArgs,
        /// The revision (N or rN, see `berth history`); default: the newest stable revision
        /// older than the current one.
        #[arg(long, value_name = "REV", value_parser = control::parse_revision)]
        to: Option<u64>,
    },
    /// What runs and why: per service the desired and running revisions, ready replicas,
    /// phase, since when, and the reason.
    #[command(
        after_help = "Examples:\n  berth status                      ask the berth run on 127.0.0.1:9469\n  berth status --server http://127.0.0.1:9469 --json\n  berth status /srv/stacks          no berth run: observe the engine and read the data dir\n\nExit status: 0 shown, 1 no berth run answered (and no DIR) or the engine failed."
    )]
    Status(cli_observe::StatusArgs),
    /// berth's events (rollouts, reverts, degradations, self-heals, invalid desired state),
    /// from a running berth (--server) or the data dir's event file.
    #[command(
        after_help = "Examples:\n  berth events --since 1h\n  berth events --follow --server http://127.0.0.1:9469\n\nExit status: 0 ok, 1 the server or the file could not be read."
    )]
    Events(cli_observe::EventsArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  berth completions bash > /etc/bash_completion.d/berth\n  berth completions zsh > \"${fpath[1]}/_berth\"\n  berth completions fish > ~/.config/fish/completions/berth.fish"
    )]
    Completions(cli_docs::CompletionsArgs),
    /// Print the manual page berth(1), or write all pages into a directory.
    #[command(
        after_help = "Examples:\n  berth man | man -l -\n  berth man --dir /usr/local/share/man/man1 && mandb"
    )]
    Man(cli_docs::ManArgs),
}

const CONTROL_HELP: &str = "Examples:\n  berth hold shop/db              freeze it as it runs\n  berth rollback shop/web --to 3  back to r3 (see `berth history`), held there\n  berth release shop/web          follow the desired state again\n  berth retry shop/web            try a quarantined revision again\n\nWrites only the service's control file in the data dir (no Docker needed) and wakes a running `berth run` with SIGHUP; without one, the change takes effect at the next `berth apply` or `berth run`.\n\nExit status: 0 ok, 1 refused or failed, 2 usage error.";

/// The service a manual control acts on.
#[derive(Args)]
struct ServiceArgs {
    /// The service, as PROJECT/SERVICE (e.g. shop/web).
    #[arg(value_name = "PROJECT/SERVICE")]
    service: ServiceRef,
    /// berth's state directory (the one `berth run`/`apply` use).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
}

/// `berth run`'s arguments.
#[derive(Args)]
struct RunArgs {
    /// The desired-state directory (a project, or a directory of projects), watched for
    /// changes.
    #[arg(long, value_name = "DIR", required_unless_present = "git")]
    dir: Option<PathBuf>,
    #[command(flatten)]
    git: GitArgs,
    /// Fetch the git repository at least this often (and on webhook pushes).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    interval: Duration,
    /// Wait for this much quiet after a file change in DIR before re-reading it.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    debounce: Duration,
    /// File holding the secret of the git webhook (POST /hooks/git); else the
    /// BERTH_WEBHOOK_SECRET environment variable. Without a secret the webhook is off.
    #[arg(long, value_name = "FILE", requires = "git")]
    webhook_secret_file: Option<PathBuf>,
    /// Activate a Compose profile (repeatable); `*` activates all.
    #[arg(long = "profile", value_name = "NAME")]
    profiles: Vec<String>,
    /// Directory of host-side variables: DIR/<project>.env feeds interpolation.
    #[arg(long, value_name = "DIR")]
    env_dir: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
    /// berth's state directory (holds the lock: one berth per engine).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    data_dir: PathBuf,
    /// Full reconcile at least this often, whatever happens (e.g. 60s).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    resync: Duration,
    /// Remove projects that are no longer in the desired state.
    #[arg(long)]
    prune: bool,
    /// Allow a desired state with no services while managed containers run.
    #[arg(long)]
    allow_empty: bool,
    /// Services worked on at once.
    #[arg(long, default_value_t = 8)]
    parallelism: usize,
    #[command(flatten)]
    telemetry: cli_observe::TelemetryArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    berth::desired::syntax::units::parse_duration(s)
}

fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BERTH_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let root = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Path::new("/var/lib/berth").exists();
    if root {
        return PathBuf::from("/var/lib/berth");
    }
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("berth")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(a) => exclusive_source(&a.dir, &a.git),
        Command::Validate { source, .. }
        | Command::Plan { source, .. }
        | Command::Apply { source, .. } => exclusive_source(&source.dir, &source.git),
        _ => {}
    }
    // The controller reports what it does; one-shot commands print results instead.
    let verbose = if matches!(cli.command, Command::Run(_)) {
        cli.verbose.max(1)
    } else {
        cli.verbose
    };
    init_logs(cli.log_format, verbose);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A directory and `--git` exclude each other. Checked here rather than declared to clap: a
/// declared conflict with `--git` would also silence `requires = "git"` on the git options.
fn exclusive_source(dir: &Option<PathBuf>, git: &GitArgs) {
    if dir.is_some() && git.git.is_some() {
        use clap::CommandFactory;
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "give either a directory or --git URL, not both",
            )
            .exit();
    }
}

fn init_logs(format: LogFormat, verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warn,berth={default}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run_controller(args),
        Command::Status(args) => cli_observe::status(args),
        Command::Events(args) => cli_observe::events(args),
        Command::Completions(args) => cli_docs::completions(args),
        Command::Man(args) => cli_docs::man(args),
        Command::Validate { source, format } => validate(&source, format),
        Command::History { target, json } => history(&target, json),
        Command::Retry(target) => control_command(&target, |rec| {
            Ok(control::retry(&target.service, rec, unix_now()))
        }),
        Command::Hold(target) => control_command(&target, |rec| {
            Ok(control::hold(&target.service, rec, unix_now()))
        }),
        Command::Release(target) => {
            control_command(&target, |rec| Ok(control::release(&target.service, rec)))
        }
        Command::Rollback { target, to } => {
            control_command(&target, |rec| control::rollback(&target.service, rec, to))
        }
        Command::Plan {
            source,
            engine,
            exit_code,
            prune,
            data_dir,
        } => {
            let Some(desired) = load(&source, Some(&data_dir))? else {
                return Ok(ExitCode::from(1));
            };
            let rt = runtime()?;
            rt.block_on(async {
                let engine = connect(&engine).await?;
                // Read-only: records are read when the data dir has them; nothing is created.
                let records = if data_dir.join("state").is_dir() {
                    let store = Store::open(&data_dir).context("failed to open berth's records")?;
                    apply::load_records(&store, &desired)
                        .context("failed to read berth's records")?
                } else {
                    Records::new()
                };
                let (_, plan) = observe_and_plan(
                    &engine,
                    &desired,
                    &records,
                    PlanOptions { prune },
                    unix_now(),
                    &Default::default(),
                )
                .await
                .context("failed to observe the engine")?;
                let mut out = std::io::stdout().lock();
                if plan.is_empty() && plan.notes.is_empty() {
                    writeln!(out, "No changes: the engine is in the desired state.")?;
                } else {
                    write!(out, "{plan}")?;
                }
                Ok(if exit_code && !plan.is_empty() {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                })
            })
        }
        Command::Apply {
            source,
            engine,
            prune,
            allow_empty,
            data_dir,
            timeout,
            parallelism,
        } => {
            if source.git.git.is_some() {
                anyhow::bail!(
                    "berth apply reads a directory; for a git repository use `berth run --git` (containers mount files from its checkout, which must outlive the command)"
                );
            }
            let Some(desired) = load(&source, None)? else {
                return Ok(ExitCode::from(1));
            };
            let _lock = DataDirLock::acquire(&data_dir, "berth apply")?;
            let rt = runtime()?;
            rt.block_on(async {
                let engine = Arc::new(connect(&engine).await?);
                let stop = Arc::new(AtomicBool::new(false));
                let on_signal = stop.clone();
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .context("failed to install the SIGTERM handler")?;
                tokio::spawn(async move {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                    eprintln!("berth: interrupted; finishing the current steps");
                    on_signal.store(true, Ordering::Relaxed);
                });
                let opts = ApplyOptions {
                    plan: PlanOptions { prune },
                    allow_empty,
                    timeout,
                    parallelism,
                    ..ApplyOptions::default()
                };
                let store = Store::open(&data_dir).context("failed to open berth's records")?;
                let report =
                    apply::apply(&engine, &desired, opts, &stop, Some(&store), |p| match p {
                        Progress::Executing(plan) => print!("{plan}"),
                        Progress::Failed(f) => eprintln!("failed: {}: {}", f.step, f.error),
                        // Events are logged as they happen (see reconcile::execute).
                        Progress::Event(_) => {}
                    })
                    .await?;
                print_report(&report);
                Ok(if report.ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            })
        }
    }
}

fn run_controller(args: RunArgs) -> anyhow::Result<ExitCode> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = runtime()?;
    // The handlers go in before the lock is taken: `berth hold` & co. send SIGHUP to the lock's
    // holder, and SIGHUP's default action would end this process.
    let (mut term, mut hup) = {
        let _rt = rt.enter();
        (
            signal(SignalKind::terminate()).context("failed to install the SIGTERM handler")?,
            signal(SignalKind::hangup()).context("failed to install the SIGHUP handler")?,
        )
    };
    let _lock = DataDirLock::acquire(&args.data_dir, "berth run")?;
    let store = Store::open(&args.data_dir).context("failed to open berth's records")?;
    rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let wakeups = controller::Wakeups::new();
        let handle = wakeups.handle();
        // SIGHUP: an operator changed a control file (`berth hold|release|rollback|retry`).
        let on_hup = wakeups.handle();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reconciling now");
                on_hup.trigger();
            }
        });
        let engine = Arc::new(connect(&args.engine).await?);
        let on_signal = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::warn!("stop requested; finishing the current step");
            on_signal.store(true, Ordering::Relaxed);
            handle.trigger();
        });
        let opts = controller::RunOptions {
            resync: args.resync,
            plan: PlanOptions { prune: args.prune },
            allow_empty: args.allow_empty,
            parallelism: args.parallelism,
            ..controller::RunOptions::default()
        };
        let load_opts = load_options(&args.profiles, &args.env_dir);
        let running = start_source(&args, load_opts, wakeups.handle())?;
        // `POST /hooks/git` (served by the HTTP listener) pokes the git source's fetch.
        let _git_hook = git_webhook(&args, &running)?;
        // SIGHUP (`systemctl reload berth`) also fetches now.
        if let Some(git) = running.git() {
            let poke = git.poker();
            let mut hup = signal(SignalKind::hangup())
                .context("failed to install the SIGHUP handler")?;
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    poke();
                }
            });
        }
        tracing::info!(source = %running.status().snapshot().location, resync = ?args.resync, "berth run: watching");
        let telemetry = cli_observe::start(
            &args.telemetry,
            &args.data_dir,
            cli_observe::source_info(&running.status().snapshot()),
            &engine,
            _git_hook.map(berth::telemetry::http::hook_from_pairs),
        )
        .await;
        let observer = telemetry.observer();
        let hub = telemetry.telemetry.clone();
        controller::run(
            engine,
            move || {
                let loaded = running.load();
                hub.set_source(cli_observe::source_info(&running.status().snapshot()));
                loaded
            },
            opts,
            stop,
            wakeups,
            Some(store),
            Some(observer),
        )
        .await;
        telemetry.stop().await;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Starts `berth run`'s desired-state source: the watched directory or the git repository.
fn start_source(
    args: &RunArgs,
    load_opts: LoadOptions,
    wake: controller::Controller,
) -> anyhow::Result<source::Running> {
    let spec = match (args.git.options(args.interval), &args.dir) {
        (Some(git), _) => source::Spec::Git(git),
        (None, Some(dir)) => source::Spec::Dir(DirOptions {
            dir: dir.clone(),
            debounce: args.debounce,
            resync: args.resync,
        }),
        (None, None) => anyhow::bail!("give --dir DIR or --git URL"),
    };
    let load: source::LoadFn = Arc::new(move |root: &Path, run_root: Option<&Path>| {
        let opts = LoadOptions {
            run_root: run_root.map(Path::to_path_buf),
            ..load_opts.clone()
        };
        desired::load(root, &opts)
    });
    source::Running::start(spec, &args.data_dir, load, Arc::new(move || wake.trigger()))
        .context("failed to start the desired-state source")
}

/// The git webhook handler, when the source is git and a secret is configured.
fn git_webhook(
    args: &RunArgs,
    running: &source::Running,
) -> anyhow::Result<Option<webhook::GitHook>> {
    let Some(git) = running.git() else {
        return Ok(None);
    };
    let secret = match &args.webhook_secret_file {
        Some(f) => webhook::Secret::from_file(f)
            .with_context(|| format!("failed to read the webhook secret {}", f.display()))?
            .with_context(|| format!("the webhook secret file {} is empty", f.display()))?,
        None => match webhook::Secret::from_env() {
            Some(s) => s,
            None => return Ok(None),
        },
    };
    Ok(Some(webhook::hook(
        secret,
        args.git.reference.clone(),
        git.poker(),
    )))
}

fn print_report(r: &apply::ApplyReport) {
    for n in &r.orphans {
        eprintln!("{n}");
    }
    for (n, logs) in &r.blocked {
        eprintln!("{n}");
        if let Some(logs) = logs.as_deref().filter(|l| !l.trim().is_empty()) {
            eprintln!("  last output:");
            for line in logs.lines() {
                eprintln!("    {line}");
            }
        }
    }
    for n in &r.waiting {
        eprintln!("{n} (gave up waiting)");
    }
    if r.interrupted {
        eprintln!("interrupted after {} step(s)", r.steps);
    } else if r.ok() {
        println!("Converged: {} step(s) in {} round(s).", r.steps, r.rounds);
    } else {
        eprintln!(
            "Not converged: {} step(s) done, {} failed.",
            r.steps,
            r.failures.len()
        );
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

async fn connect(args: &EngineArgs) -> anyhow::Result<DockerEngine> {
    let engine = DockerEngine::connect(args.docker_host.as_deref())
        .context("failed to connect to the Docker engine")?;
    let info = engine
        .info()
        .await
        .context("failed to reach the Docker engine")?;
    tracing::info!(version = %info.version, api = %info.api_version, endpoint = %info.endpoint, "engine");
    Ok(engine)
}

/// Load options from the command line, with the process environment for interpolation.
fn load_options(profiles: &[String], env_dir: &Option<PathBuf>) -> LoadOptions {
    LoadOptions {
        profiles: profiles.to_vec(),
        env_dir: env_dir.clone(),
        ..LoadOptions::from_process_env()
    }
}

/// Where a one-shot command reads from: DIR, or a fresh checkout of --git (removed when the
/// returned guard drops); prints the commit checked out.
fn source_root(source: &Source) -> anyhow::Result<(PathBuf, Option<source::git::TempCheckout>)> {
    let Some(opts) = source.git.options(source::git::DEFAULT_INTERVAL) else {
        let dir = source.dir.clone().context("give DIR or --git URL")?;
        return Ok((dir, None));
    };
    let co = source::git::checkout_once(&opts)
        .with_context(|| format!("failed to check out {}", opts.location()))?;
    eprintln!(
        "{}: commit {} by {}: {}",
        opts.location(),
        berth::util::id::short(&co.commit.sha),
        co.commit.author,
        co.commit.subject()
    );
    Ok((co.root.clone(), Some(co)))
}

/// Loads the desired state; prints diagnostics (warnings always, errors when invalid). With
/// --git and `data_dir`, paths are resolved as `berth run --git` with that data dir resolves
/// them (so a plan matches what it applied).
fn load(source: &Source, data_dir: Option<&Path>) -> anyhow::Result<Option<DesiredState>> {
    let (root, _checkout) = source_root(source)?;
    let run_root = data_dir
        .zip(source.git.options(source::git::DEFAULT_INTERVAL))
        .map(|(d, git)| git.run_root(d));
    let opts = LoadOptions {
        run_root,
        ..load_options(&source.profiles, &source.env_dir)
    };
    let loaded = desired::load(&root, &opts);
    let mut err = std::io::stderr().lock();
    write!(err, "{}", loaded.diagnostics)?;
    if loaded.state.is_none() {
        writeln!(
            err,
            "{}: invalid desired state ({})",
            root.display(),
            report::counts(&loaded.diagnostics)
        )?;
    }
    Ok(loaded.state)
}

fn validate(source: &Source, format: Format) -> anyhow::Result<ExitCode> {
    let (root, _checkout) = source_root(source)?;
    let loaded = desired::load(&root, &load_options(&source.profiles, &source.env_dir));
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report::json(&loaded))
                .context("failed to write the report")?;
            writeln!(out)?;
        }
        Format::Text => {
            let mut err = std::io::stderr().lock();
            write!(err, "{}", loaded.diagnostics)?;
            if loaded.state.is_some() {
                write!(out, "{}", report::summary_text(&loaded))?;
            } else {
                writeln!(
                    err,
                    "{}: invalid desired state ({})",
                    root.display(),
                    report::counts(&loaded.diagnostics)
                )?;
            }
        }
    }
    Ok(if loaded.state.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `berth history`: reads the record, prints the table (or JSON).
fn history(target: &ServiceArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (_, rec) = open_record(target)?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &control::history_json(&target.service, &rec))
            .context("failed to write the record")?;
        writeln!(out)?;
    } else {
        write!(
            out,
            "{}",
            control::history(&target.service, &rec, unix_now())
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The manual controls: decide on the record, write the control file (never the record: the
/// running controller owns it), wake the controller.
fn control_command(
    target: &ServiceArgs,
    decide: impl FnOnce(&berth::store::ServiceRecord) -> Result<Change, ControlError>,
) -> anyhow::Result<ExitCode> {
    let (store, rec) = open_record(target)?;
    let change = decide(&rec)?;
    println!("{}", change.message);
    if change.control == rec.control {
        return Ok(ExitCode::SUCCESS);
    }
    let ServiceRef { project, service } = &target.service;
    store
        .save_control(project, service, &change.control)
        .with_context(|| format!("failed to write the control file of {}", target.service))?;
    match wake_controller(&target.data_dir) {
        Wake::Woken(pid) => println!("woke berth run (pid {pid}): it reconciles now"),
        Wake::NotRunning => println!(
            "no berth run holds {}: the change takes effect at the next `berth apply` or `berth run`",
            target.data_dir.display()
        ),
        Wake::Other(holder) => println!(
            "{holder} holds {} and read the records when it started: the change takes effect at the next `berth apply` or `berth run`",
            target.data_dir.display()
        ),
        Wake::Failed(pid, why) => eprintln!(
            "berth: warning: failed to wake berth run (pid {pid}): {why:#}; it reads the change at its next resync"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The store and `target`'s record; a service without a record file is an error that lists
/// the services that have one. Creates nothing in the data dir.
fn open_record(target: &ServiceArgs) -> anyhow::Result<(Store, berth::store::ServiceRecord)> {
    let ServiceRef { project, service } = &target.service;
    let state = target.data_dir.join("state");
    let no_record = |known| ControlError::NoRecord {
        service: target.service.to_string(),
        dir: state.clone(),
        known,
    };
    if !state.is_dir() {
        return Err(no_record(Vec::new()).into());
    }
    let store = Store::open(&target.data_dir).context("failed to open berth's records")?;
    let path = store.path(project, service)?;
    if !path.is_file() {
        let known = store
            .services()
            .context("failed to list berth's records")?
            .into_iter()
            .map(|(p, s)| format!("{p}/{s}"))
            .collect();
        return Err(no_record(known).into());
    }
    let rec = store
        .load(project, service)
        .with_context(|| format!("failed to read the record of {}", target.service))?;
    Ok((store, rec))
}

/// What waking the controller came to.
enum Wake {
    /// SIGHUP sent to this `berth run`.
    Woken(u32),
    /// Nobody holds the data dir's lock (or its last holder is gone).
    NotRunning,
    /// Another berth (e.g. `berth apply`) holds it: not signalled.
    Other(String),
    /// A `berth run` seems to hold it but could not be checked or signalled.
    Failed(u32, anyhow::Error),
}

/// Sends SIGHUP to the `berth run` holding `data_dir`'s lock, if one does. The lock file names
/// its last holder; that process is signalled only if it is alive, is a `berth run`, and has
/// this lock file open (so a stale name or a reused pid is never signalled).
fn wake_controller(data_dir: &Path) -> Wake {
    let path = data_dir.join("berth.lock");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Wake::NotRunning;
    };
    let Some((what, pid)) = lock::parse_holder(&text) else {
        return Wake::NotRunning;
    };
    match holds_lock(pid, &path) {
        Ok(None) => Wake::NotRunning,
        Ok(Some(args)) if what == "berth run" && args.iter().any(|a| a == "run") => {
            // SAFETY: kill(2) with a pid and a signal number; no memory is shared.
            let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) };
            if rc == 0 {
                Wake::Woken(pid)
            } else {
                Wake::Failed(pid, std::io::Error::last_os_error().into())
            }
        }
        Ok(Some(_)) => Wake::Other(format!("{what} (pid {pid})")),
        Err(e) => Wake::Failed(pid, e),
    }
}

/// Whether process `pid` is a berth with `lock` open, from Linux's /proc: its arguments if so.
fn holds_lock(pid: u32, lock: &Path) -> anyhow::Result<Option<Vec<String>>> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let cmdline = match std::fs::read(proc.join("cmdline")) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("failed to read {}/cmdline", proc.display()))
            );
        }
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let is_berth = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|n| n.to_string_lossy().starts_with("berth"));
    if !is_berth {
        return Ok(None);
    }
    let lock = std::fs::canonicalize(lock)
        .with_context(|| format!("failed to resolve {}", lock.display()))?;
    let fds = proc.join("fd");
    let entries =
        std::fs::read_dir(&fds).with_context(|| format!("failed to list {}", fds.display()))?;
    for fd in entries.flatten() {
        if std::fs::read_link(fd.path()).is_ok_and(|target| target == lock) {
            return Ok(Some(args[1..].to_vec()));
        }
    }
    Ok(None)
}
