//! `berth man`: the roff manual pages (clap_mangen), generated from the same clap definition
//! that parses the arguments, so they cannot drift from it.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use super::args::{Cli, ManArgs, VERSION};

/// Prints berth(1), or writes every page into `args.dir`.
pub fn run(args: ManArgs) -> anyhow::Result<ExitCode> {
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
        .source(format!("berth {}", VERSION))
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
