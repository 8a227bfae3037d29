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
use berth::apply::{self, ApplyOptions, Progress};
use berth::controller;
use berth::desired::{self, DesiredState, LoadOptions};
use berth::engine::Engine;
use berth::engine::docker::DockerEngine;
use berth::lock::DataDirLock;
use berth::reconcile::observe::observe_and_plan;
use berth::reconcile::plan::{PlanOptions, Records};
use berth::report;
use berth::store::Store;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// berth keeps a Docker host in the state a directory of Compose files describes.
#[derive(Parser)]
#[command(name = "berth", version, about, propagate_version = true)]
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
    dir: PathBuf,
    /// Activate a Compose profile (repeatable); `*` activates all.
    #[arg(long = "profile", value_name = "NAME")]
    profiles: Vec<String>,
    /// Directory of host-side variables: DIR/<project>.env feeds interpolation.
    #[arg(long, value_name = "DIR")]
    env_dir: Option<PathBuf>,
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
        after_help = "Services whose dependencies are not ready yet show as `waits:`; apply plans them in a later round.\n\nExit status: 0 ok, 1 invalid state or engine error; with --exit-code, 2 when changes are pending."
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
        after_help = "Exit status: 0 converged, 1 invalid state, a failed step, a blocked service (failed job) or timeout."
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
        after_help = "Example:\n  berth run --dir /srv/stacks --data-dir /var/lib/berth\n\nSIGTERM or SIGINT finish the current step and exit 0."
    )]
    Run(RunArgs),
}

/// `berth run`'s arguments.
#[derive(Args)]
struct RunArgs {
    /// The desired-state directory (a project, or a directory of projects).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
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
        Command::Validate { source, format } => validate(&source, format),
        Command::Plan {
            source,
            engine,
            exit_code,
            prune,
            data_dir,
        } => {
            let Some(desired) = load(&source)? else {
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
                let (_, plan) =
                    observe_and_plan(
                        &engine,
                        &desired,
                        &records,
                        PlanOptions { prune },
                        berth::apply::unix_now(),
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
            let Some(desired) = load(&source)? else {
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
    let _lock = DataDirLock::acquire(&args.data_dir, "berth run")?;
    let store = Store::open(&args.data_dir).context("failed to open berth's records")?;
    let rt = runtime()?;
    rt.block_on(async {
        let engine = Arc::new(connect(&args.engine).await?);
        let stop = Arc::new(AtomicBool::new(false));
        let wakeups = controller::Wakeups::new();
        let handle = wakeups.handle();
        let on_signal = stop.clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("failed to install the SIGTERM handler")?;
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
        let dir = args.dir.clone();
        tracing::info!(dir = %dir.display(), resync = ?args.resync, "berth run: watching");
        controller::run(
            engine,
            move || desired::load(&dir, &load_opts),
            opts,
            stop,
            wakeups,
            Some(store),
        )
        .await;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
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

/// Loads the desired state; prints diagnostics (warnings always, errors when invalid).
fn load(source: &Source) -> anyhow::Result<Option<DesiredState>> {
    let loaded = desired::load(
        &source.dir,
        &load_options(&source.profiles, &source.env_dir),
    );
    let mut err = std::io::stderr().lock();
    write!(err, "{}", loaded.diagnostics)?;
    if loaded.state.is_none() {
        writeln!(
            err,
            "{}: invalid desired state ({})",
            source.dir.display(),
            report::counts(&loaded.diagnostics)
        )?;
    }
    Ok(loaded.state)
}

fn validate(source: &Source, format: Format) -> anyhow::Result<ExitCode> {
    let loaded = desired::load(
        &source.dir,
        &load_options(&source.profiles, &source.env_dir),
    );
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
                    source.dir.display(),
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
