//! `berth events`: berth's events from a running berth (`/api/v1/events`) or the data dir's
//! event file, once or following.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use berth::reconcile::round::unix_now;
use berth::telemetry::events::{self, EventRecord, Since};

use super::args::EventsArgs;
use super::client::get;
use super::setup::runtime;

/// Runs `berth events`.
pub fn run(args: EventsArgs) -> anyhow::Result<ExitCode> {
    berth::redact::load(&args.data_dir);
    let rt = runtime()?;
    let mut since = match &args.since {
        Some(s) => Since::parse(s, unix_now()).map_err(anyhow::Error::msg)?,
        None => Since::All,
    };
    let file = args.data_dir.join(events::FILE_NAME);
    if args.server.is_none()
        && let Err(e) = std::fs::File::open(&file)
        && e.kind() == std::io::ErrorKind::PermissionDenied
    {
        anyhow::bail!("{}", super::setup::unreadable_records(&args.data_dir));
    }
    if args.server.is_none() && !file.exists() {
        eprintln!(
            "berth: no {} in {} yet (no berth run has recorded an event there)",
            events::FILE_NAME,
            args.data_dir.display()
        );
    }
    loop {
        let batch = match &args.server {
            Some(server) => rt.block_on(events_from(server, since))?,
            None => events::read_file(&args.data_dir)
                .into_iter()
                .filter(|e| since.admits(e))
                .collect(),
        };
        let mut out = berth::redact::stdout();
        for e in &batch {
            if args.json {
                serde_json::to_writer(&mut out, e)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{}", line(e))?;
            }
        }
        out.flush()?;
        if let Some(last) = batch.last() {
            since = Since::Seq(last.seq);
        } else if since == Since::All {
            since = Since::Seq(0);
        }
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// `2024-05-01T12:00:00Z  #12  shop/web  rollout_failed r3 (deadline): message`.
fn line(e: &EventRecord) -> String {
    let scope = match (e.project.as_str(), e.service.as_str()) {
        ("", _) => "berth".to_string(),
        (p, "") => p.to_string(),
        (p, s) => format!("{p}/{s}"),
    };
    let rev = e.revision.map(|r| format!(" r{r}")).unwrap_or_default();
    let mut line = format!(
        "{}  #{}  {scope}  {}{rev} ({}): {}",
        e.time, e.seq, e.kind, e.reason, e.message
    );
    for l in e.logs.iter().flat_map(|l| l.lines()) {
        line.push_str("\n  | ");
        line.push_str(l.trim_end());
    }
    line
}

async fn events_from(server: &str, since: Since) -> anyhow::Result<Vec<EventRecord>> {
    let q = match since {
        Since::All => String::new(),
        Since::Seq(n) => format!("?since={n}"),
        Since::Time(t) => format!("?since={}", berth::telemetry::time::rfc3339(t)),
    };
    let body = get(server, &format!("/api/v1/events{q}"))
        .await
        .with_context(|| format!("failed to ask {server} for events"))?;
    #[derive(serde::Deserialize)]
    struct Page {
        events: Vec<EventRecord>,
    }
    let page: Page = serde_json::from_slice(&body)
        .with_context(|| format!("{server} answered with something that is not an event list"))?;
    Ok(page.events)
}
