//! `berth validate`: load and check the desired state; every problem as file:line:col, or a
//! summary per project (text or JSON). In a fleet (a hosts file), this host's part, or with
//! `--all-hosts` every host's and the table of which project lands where.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use berth::desired::{self, LoadOptions};
use berth::report;

use super::args::{Format, ValidateArgs};
use super::setup::{host_choice, load_options, source_root};

/// Runs `berth validate`.
pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let ValidateArgs {
        source,
        format,
        all_hosts,
    } = args;
    let (root, _checkout) = source_root(&source)?;
    let opts = LoadOptions {
        host: host_choice(source.host.as_deref(), all_hosts),
        ..load_options(&source.profiles, &source.env_dir, &source.age_key_file)?
    };
    let loaded = desired::load(&root, &opts);
    let mut out = berth::redact::stdout();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report::json(&loaded))
                .context("failed to write the report")?;
            writeln!(out)?;
        }
        Format::Text => {
            let mut err = berth::redact::stderr();
            write!(err, "{}", loaded.diagnostics)?;
            match &loaded.state {
                Some(state) => {
                    write!(out, "{}", report::summary_text(&loaded))?;
                    if let Some(fleet) = &state.fleet {
                        match (&fleet.this_host, all_hosts) {
                            (_, true) => {
                                writeln!(out)?;
                                write!(out, "{}", desired::placement::table(fleet))?;
                            }
                            (Some(me), false) => writeln!(
                                out,
                                "host {me}: {} of {} projects placed here",
                                state.projects.len(),
                                fleet.placement.len()
                            )?,
                            (None, false) => {}
                        }
                    } else if all_hosts {
                        writeln!(
                            err,
                            "--all-hosts: no {} at the root; every project runs on this one host",
                            desired::hosts::HOSTS_FILE
                        )?;
                    }
                }
                None => writeln!(
                    err,
                    "{}: invalid desired state ({})",
                    root.display(),
                    report::counts(&loaded.diagnostics)
                )?,
            }
        }
    }
    Ok(if loaded.state.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
