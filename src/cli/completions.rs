//! `berth completions SHELL`: the shell completion script (clap_complete), generated from the
//! same clap definition that parses the arguments, so it cannot drift from it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use super::args::{Cli, CompletionsArgs};

/// Prints the completion script for `args.shell` on stdout.
pub fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "berth", &mut out);
    out.flush()
        .context("failed to write the completion script")?;
    Ok(ExitCode::SUCCESS)
}
