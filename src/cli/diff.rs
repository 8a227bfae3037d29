//! `berth diff [DIR] [PROJECT]`: what the desired state changes for each service against the
//! revision berth records as running (`berth::changes`), field by field; reads the desired
//! state and the records, never the engine, and writes nothing.

use std::io::Write;
use std::process::ExitCode;

use berth::changes;

use super::args::DiffArgs;
use super::setup::{load, records_read_only};

/// Runs `berth diff`: exit 2 with --exit-code when something would be rolled out.
pub fn run(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let Some(desired) = load(&args.source, Some(&args.data_dir))? else {
        return Ok(ExitCode::from(1));
    };
    if let Some(p) = &args.project
        && !desired.projects.contains_key(p)
    {
        let names: Vec<&str> = desired.projects.keys().map(String::as_str).collect();
        writeln!(
            berth::redact::stderr(),
            "berth: no project {p} in the desired state (it has: {})",
            names.join(", ")
        )?;
        return Ok(ExitCode::from(1));
    }
    let records = records_read_only(&args.data_dir, &desired)?;
    let entries = changes::compare(&desired, &records, args.project.as_deref());
    write!(berth::redact::stdout(), "{}", changes::render(&entries))?;
    Ok(
        if args.exit_code && entries.iter().any(changes::Entry::differs) {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        },
    )
}
