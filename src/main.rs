//! The `berth` command line: parses arguments (`cli::args`), runs one command (`cli::*`, one
//! file each), maps the outcome to an exit code (0 ok, 1 failure or invalid desired state,
//! 2 usage — and for `plan --exit-code`, changes pending).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use cli::args::{Cli, Command, GitArgs, LogFormat};

mod cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Run(a) => exclusive_source(&a.dir, &a.git),
        Command::Validate(cli::args::ValidateArgs { source, .. })
        | Command::Plan(cli::args::PlanArgs { source, .. })
        | Command::Apply(cli::args::ApplyArgs { source, .. })
        | Command::Prune(cli::args::PruneArgs { source, .. })
        | Command::Diff(cli::args::DiffArgs { source, .. })
        | Command::Fleet(cli::args::FleetCommand::Status(cli::args::FleetStatusArgs {
            source,
            ..
        })) => exclusive_source(&source.dir, &source.git),
        _ => {}
    }
    // The controller reports what it does; one-shot commands print results instead.
    let verbose = if matches!(cli.command, Command::Run(_) | Command::Proxy(_)) {
        cli.verbose.max(1)
    } else {
        cli.verbose
    };
    // `berth apply` prints rollout events as readable lines itself (cli::apply).
    let quiet_events = matches!(cli.command, Command::Apply(_));
    init_logs(cli.log_format, verbose, quiet_events);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(berth::redact::stderr(), "berth: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate(args) => cli::validate::run(args),
        Command::Plan(args) => cli::plan::run(args),
        Command::Diff(args) => cli::diff::run(args),
        Command::Apply(args) => cli::apply::run(args),
        Command::Prune(args) => cli::prune::run(args),
        Command::Run(args) => cli::run::run(args),
        Command::History(args) => cli::control::history(args),
        Command::Retry(target) => cli::control::retry(target),
        Command::Hold(target) => cli::control::hold(target),
        Command::Release(target) => cli::control::release(target),
        Command::Rollback(args) => cli::control::rollback(args),
        Command::Status(args) => cli::status::run(args),
        Command::Events(args) => cli::events::run(args),
        Command::Logs(args) => cli::logs::run(args),
        Command::Updates(args) => cli::updates::run(args),
        Command::Completions(args) => cli::completions::run(args),
        Command::Man(args) => cli::man::run(args),
        Command::Proxy(args) => cli::proxy::run(args),
        Command::Fleet(cli::args::FleetCommand::Status(args)) => cli::fleet::status(args),
    }
}

/// A directory and `--git` exclude each other. Checked here rather than declared to clap: a
/// declared conflict with `--git` would also silence `requires = "git"` on the git options.
fn exclusive_source(dir: &Option<PathBuf>, git: &GitArgs) {
    if dir.is_some() && git.git.is_some() {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "give either a directory or --git URL, not both",
            )
            .exit();
    }
}

/// Logs go to stderr, coloured only when it is a terminal and `NO_COLOR` is unset (files,
/// pipes and the journal get plain text). `quiet_events` leaves rollout events to the command.
fn init_logs(format: LogFormat, verbose: u8, quiet_events: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let mut directives = format!("warn,berth={default}");
    if quiet_events {
        directives.push_str(&format!(",{}=off", berth::reconcile::execute::EVENT_TARGET));
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directives));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(berth::util::colour::stderr())
        .with_writer(berth::redact::MakeRedacted::new(std::io::stderr));
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
