//! Documentation generated from the CLI definition itself: `berth completions SHELL` (shell
//! completion scripts, clap_complete) and `berth man` (roff manual pages, clap_mangen). Both
//! read the same `clap` command that parses the arguments, so they cannot drift from it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

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

/// Prints the completion script for `args.shell` on stdout.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "berth", &mut out);
    out.flush()
        .context("failed to write the completion script")?;
    Ok(ExitCode::SUCCESS)
}

/// Prints berth(1), or writes every page into `args.dir`.
pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    let cmd = Cli::command();
    match args.dir {
        None => {
            let mut out = std::io::stdout().lock();
            page(cmd)
                .render(&mut out)
                .context("failed to write the manual page")?;
            out.flush().context("failed to write the manual page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
            let mut cmd = cmd.disable_help_subcommand(true);
            cmd.build();
            write_pages(&cmd, &dir)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A page with berth's title line (`berth(1) ... berth 0.1.0 (commit ...)`).
fn page(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd)
        .source(format!("berth {}", super::VERSION))
        .manual("berth manual")
}

/// Writes the page of `cmd` and of each of its visible subcommands, recursively.
fn write_pages(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir)?;
    }
    let path = page(cmd.clone())
        .generate_to(dir)
        .with_context(|| format!("failed to write a manual page into {}", dir.display()))?;
    // A closed stdout (`| head`) is not an error worth a panic: the pages are written.
    let _ = writeln!(std::io::stdout(), "{}", path.display());
    Ok(())
}
