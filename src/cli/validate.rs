//! `berth validate`: load and check the desired state; every problem as file:line:col, or a
//! summary per project (text or JSON).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use berth::desired;
use berth::report;

use super::args::{Format, ValidateArgs};
use super::setup::{load_options, source_root};

/// Runs `berth validate`.
pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let ValidateArgs { source, format } = args;
    let (root, _checkout) = source_root(&source)?;
    let loaded = desired::load(
        &root,
        &load_options(&source.profiles, &source.env_dir, &source.age_key_file)?,
    );
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
