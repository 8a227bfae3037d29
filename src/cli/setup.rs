//! What several commands share: the async runtime, the engine connection and its claim, the
//! load options, and loading the desired state from a directory or a one-off git checkout.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use berth::desired::secrets::AgeKeys;
use berth::desired::{self, DesiredState, HostChoice, LoadOptions};
use berth::engine::Engine;
use berth::engine::claim::{self, Claim};
use berth::engine::docker::DockerEngine;
use berth::report;
use berth::source;

use super::args::{EngineArgs, Source};

/// A multi-threaded tokio runtime.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// Connects to the engine and checks that it answers.
pub async fn connect(args: &EngineArgs) -> anyhow::Result<DockerEngine> {
    let engine = DockerEngine::connect(args.docker_host.as_deref())
        .context("failed to connect to the Docker engine")?;
    let info = engine
        .info()
        .await
        .context("failed to reach the Docker engine")?;
    tracing::info!(version = %info.version, api = %info.api_version, endpoint = %info.endpoint, "engine");
    Ok(engine)
}

/// Runs `work` holding the engine's claim for the berth of `data_dir` (one berth per engine,
/// `berth::engine::claim`), and releases the claim once `work` returns, whatever it returns:
/// the process is about to exit, so it holds the engine no more. A berth that dies instead
/// leaves its claim, which the next berth renews or takes over by the claim's rule.
pub async fn claimed<T>(
    engine: &DockerEngine,
    data_dir: &Path,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let held: Claim = claim::claim_engine(engine, data_dir).await?;
    tracing::debug!(claim = %held.name(), "engine claimed");
    let result = work.await;
    let name = held.name().to_string();
    if let Err(e) = held.release(engine).await {
        // Not worth failing the command for: the next berth renews or takes it over.
        tracing::warn!(claim = %name, error = %berth::errors::chain(&e), "failed to release the engine's claim");
    }
    result
}

/// Load options from the command line, with the process environment for interpolation and
/// the age keys (`--age-key-file`, else `SOPS_AGE_KEY_FILE`, else `SOPS_AGE_KEY`), read once
/// here: a key file that is given but unusable stops the command.
pub fn load_options(
    profiles: &[String],
    env_dir: &Option<PathBuf>,
    age_key_file: &Option<PathBuf>,
) -> anyhow::Result<LoadOptions> {
    let env = LoadOptions::from_process_env();
    let age_keys = AgeKeys::load(age_key_file.as_deref(), &|k| env.env.get(k).cloned())?;
    Ok(LoadOptions {
        profiles: profiles.to_vec(),
        env_dir: env_dir.clone(),
        age_keys,
        host: host_choice(None, false),
        ..env
    })
}

/// Which host of a fleet a command loads for: `--all-hosts`, `--host NAME`, else the machine's
/// host name (which applies only when the desired state has a hosts file).
pub fn host_choice(host: Option<&str>, all_hosts: bool) -> HostChoice {
    match (host, all_hosts) {
        (_, true) => HostChoice::Every,
        (Some(name), false) => HostChoice::Named(name.to_string()),
        (None, false) => match machine_host_name() {
            Some(name) => HostChoice::Machine(name),
            // No name to go by: a fleet's load then fails, naming --host.
            None => HostChoice::Machine(String::new()),
        },
    }
}

/// The machine's host name (as `hostname` prints it), when it has one.
fn machine_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// The desired-state directory a command was given: a directory as it is, a Compose file
/// (`compose.yaml`, `docker-compose.yml`, …) as the directory it is in (that directory's
/// project is exactly what that file describes); anything else is a clear error instead of a
/// desired state that never loads.
pub fn project_dir(given: &Path) -> anyhow::Result<PathBuf> {
    let meta = std::fs::metadata(given).with_context(|| {
        format!(
            "{}: cannot open the desired-state directory",
            given.display()
        )
    })?;
    if meta.is_dir() {
        return Ok(given.to_path_buf());
    }
    let name = given
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if desired::discover::COMPOSE_FILES.contains(&name.as_str()) {
        let parent = given.parent().filter(|p| !p.as_os_str().is_empty());
        return Ok(parent.unwrap_or(Path::new(".")).to_path_buf());
    }
    anyhow::bail!(
        "{} is a file, not a directory: berth reads a directory holding a compose.yaml (or a \
         directory of such project directories); give the directory{}",
        given.display(),
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            ", with the file named compose.yaml"
        } else {
            ""
        }
    )
}

/// What to tell an operator whose read command cannot read the records (written by `sudo
/// berth apply` or a berth run as root): exactly what to do.
pub fn unreadable_records(data_dir: &Path) -> String {
    format!(
        "cannot read berth's records in {}: permission denied; they belong to the user that ran \
         berth apply or berth run (root, with sudo). Run this command with sudo too, or ask the \
         running berth over HTTP, which needs no permission on the files: berth status, \
         berth events --server http://127.0.0.1:9469",
        data_dir.display()
    )
}

/// Where a one-shot command reads from: DIR, or a fresh checkout of --git (removed when the
/// returned guard drops); prints the commit checked out.
pub fn source_root(
    source: &Source,
) -> anyhow::Result<(PathBuf, Option<source::git::TempCheckout>)> {
    let Some(opts) = source.git.options(source::git::DEFAULT_INTERVAL) else {
        let dir = source.dir.as_deref().context("give DIR or --git URL")?;
        return Ok((project_dir(dir)?, None));
    };
    let co = source::git::checkout_once(&opts)
        .with_context(|| format!("failed to check out {}", opts.location()))?;
    eprintln!(
        "{}: commit {} by {}: {}",
        opts.location(),
        berth::util::id::short(&co.commit.sha),
        co.commit.author,
        co.commit.subject()
    );
    Ok((co.root.clone(), Some(co)))
}

/// Loads the desired state; prints diagnostics (warnings always, errors when invalid). With
/// --git and `data_dir`, paths are resolved as `berth run --git` with that data dir resolves
/// them (so a plan matches what it applied).
pub fn load(source: &Source, data_dir: Option<&Path>) -> anyhow::Result<Option<DesiredState>> {
    load_for(source, data_dir, host_choice(source.host.as_deref(), false))
}

/// Loads the desired state of every host of the fleet (nothing filtered), as [`load`].
pub fn load_all_hosts(source: &Source) -> anyhow::Result<Option<DesiredState>> {
    load_for(source, None, HostChoice::Every)
}

fn load_for(
    source: &Source,
    data_dir: Option<&Path>,
    host: HostChoice,
) -> anyhow::Result<Option<DesiredState>> {
    let (root, _checkout) = source_root(source)?;
    let run_root = data_dir
        .zip(source.git.options(source::git::DEFAULT_INTERVAL))
        .map(|(d, git)| git.run_root(d));
    let opts = LoadOptions {
        run_root,
        host,
        ..load_options(&source.profiles, &source.env_dir, &source.age_key_file)?
    };
    let loaded = desired::load(&root, &opts);
    let mut err = berth::redact::stderr();
    write!(err, "{}", loaded.diagnostics)?;
    if loaded.state.is_none() {
        writeln!(
            err,
            "{}: invalid desired state ({})",
            root.display(),
            report::counts(&loaded.diagnostics)
        )?;
    }
    Ok(loaded.state)
}

/// berth's records for a read-only command: read when the data dir has them, else none
/// (nothing is created).
pub fn records_read_only(
    data_dir: &Path,
    desired: &DesiredState,
) -> anyhow::Result<berth::reconcile::plan::Records> {
    let state = data_dir.join("state");
    if let Err(e) = std::fs::read_dir(&state)
        && e.kind() == std::io::ErrorKind::PermissionDenied
    {
        anyhow::bail!("{}", unreadable_records(data_dir));
    }
    if !state.is_dir() {
        return Ok(Default::default());
    }
    let store = berth::store::Store::open(data_dir).context("failed to open berth's records")?;
    berth::reconcile::round::load_records(&store, desired).context("failed to read berth's records")
}

/// The port-handoff proxy this berth starts when it is needed (`--proxy-admin`; `None`:
/// the operator runs it).
pub fn proxy_launcher(
    data_dir: &Path,
    admin: Option<std::net::SocketAddr>,
) -> anyhow::Result<Option<berth::proxy::launch::Launcher>> {
    let Some(admin) = admin else {
        return Ok(None);
    };
    let exe = std::env::current_exe().context("failed to find berth's own executable")?;
    Ok(Some(berth::proxy::launch::Launcher::new(
        exe, data_dir, admin,
    )))
}
