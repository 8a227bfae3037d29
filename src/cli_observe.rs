//! The observability side of the CLI: `berth status`, `berth events`, and `berth run`'s
//! `--listen` / `--notify` (the telemetry hub, its HTTP server and notifications).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth::apply::{load_records, unix_now};
use berth::controller::RoundObserver;
use berth::desired;
use berth::engine::docker::DockerEngine;
use berth::engine::liveness::Liveness;
use berth::reconcile::observe::observe_and_plan;
use berth::reconcile::plan::{PlanOptions, Records};
use berth::store::Store;
use berth::telemetry::events::{self, EventRecord, Since};
use berth::telemetry::http::{GitHook, Server, ServerOptions};
use berth::telemetry::notify::{self, Target};
use berth::telemetry::status::{self, SourceInfo, Status, StatusInput};
use berth::telemetry::{Telemetry, TelemetryOptions};
use clap::Args;

use super::{EngineArgs, connect, default_data_dir, load_options, runtime};

/// Where berth's HTTP server listens by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9469";
/// Where `berth status` and `berth events` look for a running berth by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9469";

/// `berth run`'s observability flags.
#[derive(Args)]
pub struct TelemetryArgs {
    /// Serve /metrics, /healthz, /readyz, /api/v1/status and /api/v1/events here (`off`: no
    /// server).
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
    pub listen: Listen,
    /// POST meaningful transitions (rollout succeeded/failed/reverted, degraded, desired state
    /// invalid, recovered) to this webhook (repeatable): http://HOST:PORT/PATH sends the event
    /// as JSON, slack+http://HOST:PORT/PATH a Slack-compatible {"text": ...}. Plain HTTP only.
    #[arg(long, value_name = "URL", value_parser = parse_target)]
    pub notify: Vec<Target>,
}

/// `--listen`: an address, or none.
#[derive(Debug, Clone, Copy)]
pub struct Listen(pub Option<SocketAddr>);

fn parse_listen(s: &str) -> Result<Listen, String> {
    if matches!(s, "off" | "none" | "") {
        return Ok(Listen(None));
    }
    s.parse::<SocketAddr>()
        .map(|a| Listen(Some(a)))
        .map_err(|_| format!("{s}: expected IP:PORT (e.g. 127.0.0.1:9469, [::1]:9469) or off"))
}

fn parse_target(s: &str) -> Result<Target, String> {
    s.parse()
}

/// `berth status`'s arguments.
#[derive(Args)]
pub struct StatusArgs {
    /// Build the status from the engine, this desired-state directory and the data dir
    /// instead of asking a running berth.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Ask the berth run serving here (default: http://127.0.0.1:9469 when no DIR is given).
    #[arg(long, value_name = "URL", conflicts_with = "dir")]
    pub server: Option<String>,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
    /// Activate a Compose profile (repeatable), with DIR.
    #[arg(long = "profile", value_name = "NAME", requires = "dir")]
    pub profiles: Vec<String>,
    /// Directory of host-side variables, with DIR.
    #[arg(long, value_name = "DIR", requires = "dir")]
    pub env_dir: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// berth's state directory (its records are read, never written), with DIR.
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// `berth events`'s arguments.
#[derive(Args)]
pub struct EventsArgs {
    /// Ask the berth run serving here instead of reading the data dir's event file.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Only events after this: a sequence number, an RFC 3339 time, or a duration (10m).
    #[arg(long, value_name = "SINCE")]
    pub since: Option<String>,
    /// Keep printing new events as they come (Ctrl-C ends).
    #[arg(short, long)]
    pub follow: bool,
    /// One JSON object a line.
    #[arg(long)]
    pub json: bool,
    /// berth's state directory (holds events.jsonl).
    #[arg(long, value_name = "DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// The hub and its server while `berth run` runs.
pub struct Running {
    /// The hub (give it to the controller as its observer; the git source sets its revision).
    pub telemetry: Arc<Telemetry>,
    server: Option<Server>,
}

impl Running {
    /// The hub as the controller's observer.
    pub fn observer(&self) -> Arc<dyn RoundObserver> {
        self.telemetry.clone()
    }

    /// Stops the server gracefully and delivers what is queued, each within a few seconds.
    pub async fn stop(self) {
        if let Some(s) = self.server {
            s.shutdown(Duration::from_secs(5)).await;
        }
        self.telemetry.shutdown(Duration::from_secs(5)).await;
    }
}

/// Starts the hub (events in `data_dir`, notifications) and the HTTP server (with the git
/// webhook when given). A server that cannot bind is logged loudly and left out: berth keeps
/// reconciling (Prometheus's BerthDown alert says the rest).
pub async fn start(
    args: &TelemetryArgs,
    data_dir: &std::path::Path,
    source: SourceInfo,
    engine: &Arc<DockerEngine>,
    git_hook: Option<GitHook>,
) -> Running {
    let telemetry = Telemetry::new(TelemetryOptions {
        data_dir: Some(data_dir.to_path_buf()),
        source,
        notify: args.notify.clone(),
        ..TelemetryOptions::default()
    });
    let counted = engine.clone();
    telemetry.set_engine_errors(Box::new(move || counted.api_errors()));
    let server = match args.listen.0 {
        None => None,
        Some(addr) => {
            let opts = ServerOptions {
                git_hook,
                engine_check: Some(Arc::new(Liveness::watch_docker((**engine).clone())).check()),
                ..ServerOptions::default()
            };
            match Server::bind(addr, telemetry.clone(), opts).await {
                Ok(s) => {
                    tracing::info!(listen = %s.local_addr(), "serving /metrics, /healthz, /readyz, /api/v1/status, /api/v1/events");
                    Some(s)
                }
                Err(e) => {
                    tracing::error!(listen = %addr, error = %e, "failed to listen; berth keeps reconciling without its HTTP server (no metrics, status API or webhook)");
                    None
                }
            }
        }
    };
    for t in &args.notify {
        tracing::info!(target = %t, "notifications on");
    }
    Running { telemetry, server }
}

/// The telemetry's view of the source: kind, location, and the revision applied (the newest
/// valid one: a commit, or a directory's content fingerprint).
pub fn source_info(s: &berth::source::SourceStatus) -> SourceInfo {
    SourceInfo {
        kind: s.kind.as_str().to_string(),
        location: s.location.clone(),
        revision: s
            .good
            .as_ref()
            .or(s.revision.as_ref())
            .map(|r| r.short().to_string()),
    }
}

/// `berth status`.
pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let now = unix_now();
    let status = match &args.dir {
        Some(dir) => rt.block_on(status_from_engine(&args, dir, now))?,
        None => {
            let server = args.server.as_deref().unwrap_or(DEFAULT_SERVER);
            let body = rt
                .block_on(get(server, "/api/v1/status"))
                .with_context(|| {
                    if args.server.is_none() {
                        format!(
                            "no berth run answers at {DEFAULT_SERVER}; give --server URL, or a DIR to build the status from the engine and the data dir"
                        )
                    } else {
                        format!("failed to ask {server} for the status")
                    }
                })?;
            serde_json::from_slice::<Status>(&body)
                .with_context(|| format!("{server} answered with something that is not a status"))?
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &status)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", status.table(now))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The status without a running berth: one observe + plan, as `berth plan` does.
async fn status_from_engine(
    args: &StatusArgs,
    dir: &std::path::Path,
    now: u64,
) -> anyhow::Result<Status> {
    let loaded = desired::load(dir, &load_options(&args.profiles, &args.env_dir));
    let source = SourceInfo {
        kind: "dir".into(),
        location: dir.display().to_string(),
        revision: None,
    };
    let engine = connect(&args.engine).await?;
    let Some(desired) = &loaded.state else {
        return Ok(status::build(
            &StatusInput {
                now,
                round: None,
                source: &source,
                diagnostics: &loaded.diagnostics,
                desired: None,
                observed: None,
                records: None,
                plan: None,
                probes_tracked: false,
            },
            None,
        ));
    };
    // Read-only: without a state dir there are no records (nothing is created).
    let records = if args.data_dir.join("state").is_dir() {
        let store = Store::open(&args.data_dir).context("failed to open berth's records")?;
        load_records(&store, desired).context("failed to read berth's records")?
    } else {
        Records::new()
    };
    let (observed, plan) = observe_and_plan(
        &engine,
        desired,
        &records,
        PlanOptions::default(),
        now,
        &Default::default(),
    )
    .await
    .context("failed to observe the engine")?;
    Ok(status::build(
        &StatusInput {
            now,
            round: None,
            source: &source,
            diagnostics: &loaded.diagnostics,
            desired: Some(desired),
            observed: Some(&observed),
            records: Some(&records),
            plan: Some(&plan),
            probes_tracked: false,
        },
        None,
    ))
}

/// `berth events`.
pub fn events(args: EventsArgs) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let mut since = match &args.since {
        Some(s) => Since::parse(s, unix_now()).map_err(anyhow::Error::msg)?,
        None => Since::All,
    };
    if args.server.is_none() && !args.data_dir.join(events::FILE_NAME).exists() {
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
        let mut out = std::io::stdout().lock();
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

/// GET `path` from `server` (http://HOST:PORT[/prefix]); the body of a 200.
async fn get(server: &str, path: &str) -> anyhow::Result<bytes::Bytes> {
    let t: Target = server.parse().map_err(anyhow::Error::msg)?;
    let prefix = t.path.trim_end_matches('/');
    let full = format!("{prefix}{path}");
    let (code, body) = tokio::time::timeout(
        Duration::from_secs(10),
        notify::request(
            &t.host,
            t.port,
            hyper::Method::GET,
            &full,
            None,
            &[("accept", "application/json")],
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer within 10s"))?
    .map_err(anyhow::Error::msg)?;
    if code != 200 {
        anyhow::bail!("HTTP {code}: {}", String::from_utf8_lossy(&body).trim());
    }
    Ok(body)
}
