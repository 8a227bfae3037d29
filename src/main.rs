//! The `berth` command line: parses arguments, runs one command, maps the outcome to an exit
//! code (0 ok, 1 failure or invalid desired state, 2 usage).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use berth::desired::{self, LoadOptions};
use berth::report;
use clap::{Parser, Subcommand, ValueEnum};

/// berth keeps a Docker host in the state a directory of Compose files describes.
#[derive(Parser)]
#[command(name = "berth", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load and check the desired state: every problem as file:line:col, or a summary.
    #[command(
        after_help = "Examples:\n  berth validate examples/quickstart\n  berth validate /srv/stacks --profile debug --format json\n\nExit status: 0 valid, 1 invalid, 2 usage error."
    )]
    Validate {
        /// A project directory, or a directory whose subdirectories are projects.
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Activate a Compose profile (repeatable); `*` activates all.
        #[arg(long = "profile", value_name = "NAME")]
        profiles: Vec<String>,
        /// Directory of host-side variables: DIR/<project>.env feeds interpolation.
        #[arg(long, value_name = "DIR")]
        env_dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate {
            dir,
            format,
            profiles,
            env_dir,
        } => {
            let opts = LoadOptions {
                profiles,
                env_dir,
                ..LoadOptions::from_process_env()
            };
            let loaded = desired::load(&dir, &opts);
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
                            dir.display(),
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
    }
}
