//! `berth run`: the controller. Installs the signal handlers (SIGTERM/SIGINT stop it, SIGHUP
//! reconciles now and fetches a git source), takes the data dir's lock, connects to and claims
//! the engine (one berth per engine), starts the desired-state source and telemetry, and runs
//! `berth::controller` until stopped; a clean stop releases the claim.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use berth::controller;
use berth::desired::{self, LoadOptions};
use berth::fleet::peers::FleetToken;
use berth::lock::DataDirLock;
use berth::reconcile::plan::PlanOptions;
use berth::source::{self, dir::DirOptions, webhook};
use berth::store::Store;
use berth::update::auto;
use tokio::signal::unix::{Signal, SignalKind, signal};

use super::args::RunArgs;
use super::setup::{claimed, connect, host_choice, load_options, runtime};
use super::telemetry;

/// Runs `berth run` until SIGTERM or SIGINT; exit 0 then.
pub fn run(mut args: RunArgs) -> anyhow::Result<ExitCode> {
    // A directory that does not exist fails here, clearly, rather than running forever
    // "keeping the last good" state that never was; a compose.yaml stands for its directory.
    if args.git.options(args.interval).is_none()
        && let Some(dir) = &args.dir
    {
        args.dir = Some(super::setup::project_dir(dir)?);
    }
    let rt = runtime()?;
    // The handlers go in before the lock is taken: `berth hold` & co. send SIGHUP to the lock's
    // holder, and SIGHUP's default action would end this process.
    let (term, hup) = {
        let _rt = rt.enter();
        (
            signal(SignalKind::terminate()).context("failed to install the SIGTERM handler")?,
            signal(SignalKind::hangup()).context("failed to install the SIGHUP handler")?,
        )
    };
    let _lock = DataDirLock::acquire(&args.data_dir, "berth run")?;
    let store = Store::open(&args.data_dir).context("failed to open berth's records")?;
    rt.block_on(async {
        let engine = Arc::new(connect(&args.engine).await?);
        let work = control(&args, engine.clone(), store, term, hup);
        claimed(&engine, &args.data_dir, work).await
    })
}

/// The controller, once the engine is claimed: runs until SIGTERM (`term`) or SIGINT;
/// `hup` wakes it.
async fn control(
    args: &RunArgs,
    engine: Arc<berth::engine::docker::DockerEngine>,
    store: Store,
    mut term: Signal,
    mut hup: Signal,
) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    let wakeups = controller::Wakeups::new();
    let handle = wakeups.handle();
    let on_signal = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::warn!("stop requested; finishing the current step");
        on_signal.store(true, Ordering::Relaxed);
        handle.trigger();
    });
    let fleet_token = args
        .fleet_token_file
        .as_deref()
        .map(FleetToken::from_file)
        .transpose()?;
    let opts = controller::RunOptions {
        resync: args.resync,
        plan: PlanOptions { prune: args.prune },
        allow_empty: args.allow_empty,
        parallelism: args.parallelism,
        fleet: controller::FleetOptions {
            client: fleet_client()?,
            token: fleet_token.clone(),
            ..controller::FleetOptions::default()
        },
        ..controller::RunOptions::default()
    };
    let load_opts = LoadOptions {
        host: host_choice(args.host.as_deref(), false),
        ..load_options(&args.profiles, &args.env_dir, &args.age_key_file)?
    };
    // Port handoff: a `berth proxy` of its own serves the routes file (it outlives this
    // process; the task only starts it when none answers).
    if let Some(l) = super::setup::proxy_launcher(&args.data_dir, args.proxy_admin.0)? {
        tokio::spawn(l.keep());
    }
    let running = start_source(args, load_opts, wakeups.handle())?;
    // `POST /hooks/git` (served by the HTTP listener) pokes the git source's fetch.
    let git_hook = git_webhook(args, &running)?;
    // SIGHUP: an operator changed a control file (`berth hold|release|rollback|retry`),
    // or `systemctl reload berth`: reconcile now, and fetch a git source now. A SIGHUP
    // that came earlier waits in the stream.
    let on_hup = wakeups.handle();
    let fetch = running.git().map(|git| git.poker());
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reconciling now");
            on_hup.trigger();
            if let Some(fetch) = &fetch {
                fetch();
            }
        }
    });
    tracing::info!(source = %running.status().snapshot().location, resync = ?args.resync, "berth run: watching");
    if running.git().is_some() {
        first_fetch(&running.status()).await;
    }
    let telemetry = telemetry::start(
        &args.telemetry,
        &args.data_dir,
        telemetry::source_info(&running.status().snapshot()),
        &engine,
        git_hook.map(berth::telemetry::http::hook_from_pairs),
        fleet_token,
        args.proxy_admin
            .0
            .map(|admin| berth::proxy::look::ProxyWatch::new(&args.data_dir, admin)),
    )
    .await?;
    let observer = telemetry.observer();
    let hub = telemetry.telemetry.clone();
    let no_update_checks = args.no_update_checks;
    // The update task reads the last good desired state the controller loaded.
    let latest: auto::Latest = Arc::default();
    if !args.no_update_checks {
        spawn_updates(args, &engine, &running, latest.clone(), &hub, &stop)?;
    }
    controller::run(
        engine,
        move || {
            let loaded = running.load();
            hub.set_source(telemetry::source_info(&running.status().snapshot()));
            if let Some(state) = &loaded.state
                && !no_update_checks
            {
                auto::publish(&latest, state);
            }
            loaded
        },
        opts,
        stop,
        wakeups,
        Some(store),
        Some(observer),
    )
    .await;
    telemetry.stop().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The client peers are read with: HTTPS with the system's roots, plain HTTP too.
pub fn fleet_client() -> anyhow::Result<berth::http_client::Client> {
    let (config, _) = berth::http_client::tls::client_config(None)
        .context("failed to set up TLS for reading the fleet's peers")?;
    Ok(berth::http_client::Client::with_tls(config))
}

/// Waits until the git source's first fetch ended (a checkout served or refused, or the
/// fetch's error) so that the first round does not report "no commit checked out yet" as an
/// invalid desired state, followed by `recovered` a moment later. Bounded by git's deadline.
async fn first_fetch(status: &source::StatusHandle) {
    let limit = Duration::from_secs(330);
    let start = std::time::Instant::now();
    let mut said = false;
    loop {
        let s = status.snapshot();
        // A successful fetch is recorded before its commit is checked out and served: wait
        // for the checkout (or its refusal), or a failed fetch.
        let fetch_failed = s.fetch.as_ref().is_some_and(|f| f.error.is_some());
        if s.revision.is_some() || s.refused.is_some() || fetch_failed {
            return;
        }
        if start.elapsed() >= limit {
            tracing::warn!(
                "the first fetch has not finished after {limit:?}; reconciling without it"
            );
            return;
        }
        if !said && start.elapsed() >= Duration::from_secs(2) {
            tracing::info!("waiting for the first fetch");
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `berth run`'s desired-state source: the watched directory or the git repository.
fn start_source(
    args: &RunArgs,
    load_opts: LoadOptions,
    wake: controller::Controller,
) -> anyhow::Result<source::Running> {
    let spec = match (args.git.options(args.interval), &args.dir) {
        (Some(git), _) => source::Spec::Git(git),
        (None, Some(dir)) => source::Spec::Dir(DirOptions {
            dir: dir.clone(),
            debounce: args.debounce,
            resync: args.resync,
        }),
        (None, None) => anyhow::bail!("give --dir DIR or --git URL"),
    };
    let load: source::LoadFn = Arc::new(move |root: &Path, run_root: Option<&Path>| {
        let opts = LoadOptions {
            run_root: run_root.map(Path::to_path_buf),
            ..load_opts.clone()
        };
        desired::load(root, &opts)
    });
    source::Running::start(spec, &args.data_dir, load, Arc::new(move || wake.trigger()))
        .context("failed to start the desired-state source")
}

/// The git webhook handler, when the source is git and a secret is configured.
fn git_webhook(
    args: &RunArgs,
    running: &source::Running,
) -> anyhow::Result<Option<webhook::GitHook>> {
    let Some(git) = running.git() else {
        return Ok(None);
    };
    let secret = match &args.webhook_secret_file {
        Some(f) => webhook::Secret::from_file(f)
            .with_context(|| format!("failed to read the webhook secret {}", f.display()))?
            .with_context(|| format!("the webhook secret file {} is empty", f.display()))?,
        None => match webhook::Secret::from_env() {
            Some(s) => s,
            None => return Ok(None),
        },
    };
    Ok(Some(webhook::hook(
        secret,
        args.git.reference.clone(),
        git.poker(),
    )))
}

/// Starts the update checks (`x-berth.update`) as a task of their own: they write into the
/// watched directory, or commit to the git source (with its credentials; to its branch or
/// `--update-branch`) and poke its fetch; the rollout follows from the source like any
/// change.
fn spawn_updates(
    args: &RunArgs,
    engine: &Arc<berth::engine::docker::DockerEngine>,
    running: &source::Running,
    latest: auto::Latest,
    hub: &Arc<berth::telemetry::Telemetry>,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let destination = match (args.git.options(args.interval), &args.dir) {
        (Some(git), _) => auto::Destination::Git(Box::new(berth::update::git::GitTarget {
            remote: berth::source::git::Remote::new(&git.url, git.auth.clone()),
            branch: git.reference.clone(),
            path: git.path.clone(),
            push_branch: args.update_branch.clone(),
            author: (
                berth::update::git::DEFAULT_AUTHOR.0.to_string(),
                berth::update::git::DEFAULT_AUTHOR.1.to_string(),
            ),
        })),
        (None, Some(dir)) => auto::Destination::Dir(dir.clone()),
        (None, None) => anyhow::bail!("give --dir DIR or --git URL"),
    };
    let fetch = running.git().map(|git| git.poker());
    let report_hub = hub.clone();
    let hooks = auto::Hooks {
        report: Arc::new(move |r: &auto::Report| {
            report_hub.update_report(r, berth::util::time::unix_now())
        }),
        applied: Arc::new(move || {
            // A directory source sees the file change by itself; a git one fetches now.
            if let Some(fetch) = &fetch {
                fetch();
            }
        }),
    };
    let opts = auto::AutoOptions::new(destination, args.data_dir.clone());
    tokio::spawn(auto::run(engine.clone(), latest, opts, stop.clone(), hooks));
    Ok(())
}
