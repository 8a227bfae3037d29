//! `berth fleet status`: loads the desired state for every host (nothing filtered), asks each
//! host's `status_url` for its status at once (`fleet::peers`, bounded by `--timeout` each) and
//! prints the pure `fleet::overview` as a table or JSON. Needs no engine.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use berth::fleet::overview;
use berth::fleet::peers::{FleetToken, read_statuses};

use super::args::{FleetStatusArgs, Format};
use super::setup::{load_all_hosts, runtime};

/// Runs `berth fleet status`.
pub fn status(args: FleetStatusArgs) -> anyhow::Result<ExitCode> {
    let Some(desired) = load_all_hosts(&args.source)? else {
        return Ok(ExitCode::FAILURE);
    };
    let Some(fleet) = &desired.fleet else {
        anyhow::bail!(
            "there is no berth-hosts.yaml in this desired state: a fleet needs one (docs/fleet.md)"
        );
    };
    let token = args
        .fleet_token_file
        .as_deref()
        .map(FleetToken::from_file)
        .transpose()?;
    let client = super::run::fleet_client()?;
    let asks: Vec<(String, String)> = fleet
        .hosts
        .hosts
        .values()
        .filter_map(|h| Some((h.name.clone(), h.status_url.clone()?)))
        .collect();
    let rt = runtime()?;
    let answers = rt.block_on(read_statuses(&client, &asks, token.as_ref(), args.timeout));
    let view = overview::build(&fleet.hosts, &answers);
    let mut out = berth::redact::stdout();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &view)
                .context("failed to write the fleet status")?;
            writeln!(out)?;
        }
        Format::Text => write!(out, "{}", view.text())?,
    }
    Ok(if view.hosts.iter().all(|h| h.reachable) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
