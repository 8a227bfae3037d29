//! `berth logs PROJECT[/SERVICE]`: the containers' output through the engine trait, each line
//! prefixed by its container as `docker compose logs` does (`berth::logs` picks and
//! prefixes, pure); with `--follow` the lines of all containers as they come. `--revision rN`
//! prints the lines berth kept in the record of a failed revision instead (no engine needed).
//! Output is redacted like everything berth prints.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use berth::engine::Engine;
use berth::engine::labels;
use berth::engine::logs::{LogLine, LogsRequest};
use berth::logs::{self, Source};
use berth::reconcile::round::unix_now;
use berth::store::Store;
use tokio::sync::mpsc;

use super::args::{LogsArgs, parse_duration};
use super::setup::{connect, runtime};

/// Runs `berth logs`.
pub fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    berth::redact::load(&args.data_dir);
    if let Some(n) = args.revision {
        return kept(&args, n);
    }
    let since = args.since.as_deref().map(since).transpose()?;
    let req = LogsRequest {
        since,
        tail: args.tail,
        follow: args.follow,
    };
    let rt = runtime()?;
    rt.block_on(async {
        let engine = Arc::new(connect(&args.engine).await?);
        let all = engine
            .list_containers(&[format!("{}={}", labels::PROJECT, args.target.project)])
            .await
            .context("failed to list the project's containers")?;
        let mut compose = engine
            .list_containers(&[format!(
                "{}={}",
                labels::compose::PROJECT,
                args.target.project
            )])
            .await
            .context("failed to list the project's containers")?;
        compose.retain(|c| !all.iter().any(|a| a.id == c.id));
        let mut containers = all;
        containers.extend(compose);
        let sources = logs::select(&containers, &args.target);
        if sources.is_empty() {
            anyhow::bail!(
                "no container of {} on this engine",
                match &args.target.service {
                    Some(s) => format!("{}/{s}", args.target.project),
                    None => args.target.project.clone(),
                }
            );
        }
        let width = sources.iter().map(|s| s.name.len()).max().unwrap_or(0);
        if req.follow {
            follow(engine, sources, &req, width).await
        } else {
            for s in &sources {
                let mut rx = engine
                    .logs(&s.id, &req)
                    .await
                    .with_context(|| format!("failed to read the output of {}", s.name))?;
                while let Some(line) = rx.recv().await {
                    let line =
                        line.with_context(|| format!("failed to read the output of {}", s.name))?;
                    print(s, &line, width)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    })
}

/// Every container's lines as they come, until all streams end (the containers stopped).
async fn follow<E: Engine + 'static>(
    engine: Arc<E>,
    sources: Vec<Source>,
    req: &LogsRequest,
    width: usize,
) -> anyhow::Result<ExitCode> {
    let (tx, mut rx) = mpsc::channel::<(usize, anyhow::Result<LogLine>)>(256);
    for (i, s) in sources.iter().enumerate() {
        let mut lines = engine
            .logs(&s.id, req)
            .await
            .with_context(|| format!("failed to read the output of {}", s.name))?;
        let tx = tx.clone();
        let name = s.name.clone();
        tokio::spawn(async move {
            while let Some(l) = lines.recv().await {
                let l = l.with_context(|| format!("failed to read the output of {name}"));
                if tx.send((i, l)).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    while let Some((i, line)) = rx.recv().await {
        print(&sources[i], &line?, width)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print(s: &Source, line: &LogLine, width: usize) -> anyhow::Result<()> {
    let mut out = berth::redact::stdout();
    writeln!(out, "{}{}", logs::prefix(&s.name, width), line.text)?;
    Ok(())
}

/// `--since`: a duration back from now, or an RFC 3339 time.
fn since(s: &str) -> anyhow::Result<i64> {
    if let Some(t) = berth::telemetry::time::parse_rfc3339(s) {
        return Ok(t as i64);
    }
    let d = parse_duration(s).map_err(|e| {
        anyhow::anyhow!("--since {s:?}: expected a duration (10m) or an RFC 3339 time: {e}")
    })?;
    Ok(unix_now().saturating_sub(d.as_secs()) as i64)
}

/// `--revision rN`: the lines kept in the record.
fn kept(args: &LogsArgs, n: u64) -> anyhow::Result<ExitCode> {
    let Some(service) = &args.target.service else {
        anyhow::bail!("--revision needs PROJECT/SERVICE (revisions are a service's)");
    };
    let project = &args.target.project;
    let store = Store::open(&args.data_dir).context("failed to open berth's records")?;
    let path = store.path(project, service)?;
    if !path.is_file() {
        anyhow::bail!(
            "no record of {project}/{service} in {}",
            args.data_dir.join("state").display()
        );
    }
    let rec = store
        .load(project, service)
        .with_context(|| format!("failed to read the record of {project}/{service}"))?;
    let text = logs::kept(&rec, n).map_err(|e| anyhow::anyhow!("{project}/{service}: {e}"))?;
    let all: Vec<&str> = text.lines().collect();
    let from = args.tail.map_or(0, |t| all.len().saturating_sub(t));
    let name = format!("r{n}");
    let mut out = berth::redact::stdout();
    for l in &all[from..] {
        writeln!(out, "{}{l}", logs::prefix(&name, name.len()))?;
    }
    Ok(ExitCode::SUCCESS)
}
