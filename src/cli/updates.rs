//! `berth updates`: one round of image update checks for the desired state, printed as a
//! table (or JSON); `berth updates apply PROJECT/SERVICE` writes one service's update now —
//! into the directory (a running `berth run --dir` rolls it out), or as a commit pushed to
//! the `--git` repository.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use berth::engine::Engine;
use berth::update::check::{self, Finding, Target};
use berth::update::registry::Client;

use super::args::{UpdatesApply, UpdatesArgs, UpdatesCommand, UpdatesList};
use super::setup;

/// Runs `berth updates`.
pub fn run(args: UpdatesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(UpdatesCommand::Apply(a)) => apply(a),
        None => list(args.list),
    }
}

struct Checked {
    targets: Vec<Target>,
    findings: Vec<Finding>,
    state: berth::desired::DesiredState,
    requests: u64,
}

/// Loads the desired state and checks every service with an update policy (or only `only`).
fn check_all(
    args: &UpdatesList,
    only: Option<&berth::control::ServiceRef>,
) -> anyhow::Result<Option<Checked>> {
    let Some(state) = setup::load(&args.source, Some(&args.data_dir))? else {
        return Ok(None);
    };
    let records = setup::records_read_only(&args.data_dir, &state)?;
    let rt = setup::runtime()?;
    let (targets, findings, requests) = rt.block_on(async {
        // The running images' digests matter to `policy: digest` only; without an engine
        // every digest counts as new.
        let images = match berth::engine::docker::DockerEngine::connect(
            args.engine.docker_host.as_deref(),
        ) {
            Ok(engine) => engine.list_images().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let mut targets = check::targets(&state, &records, &images);
        if let Some(s) = only {
            targets.retain(|t| t.project == s.project && t.service == s.service);
        }
        let client = Client::new(berth::engine::auth::Auth::from_env());
        let findings = check::check(&client, &targets, berth::util::time::unix_now()).await;
        (targets, findings, client.requests())
    });
    Ok(Some(Checked {
        targets,
        findings,
        state,
        requests,
    }))
}

fn list(args: UpdatesList) -> anyhow::Result<ExitCode> {
    let Some(c) = check_all(&args, None)? else {
        return Ok(ExitCode::from(1));
    };
    let mut out = berth::redact::stdout();
    let failed = c.findings.iter().any(|f| matches!(f, Finding::Failed(_)));
    if args.json {
        for (t, f) in c.targets.iter().zip(&c.findings) {
            serde_json::to_writer(&mut out, &json(t, f)).context("failed to write JSON")?;
            writeln!(out)?;
        }
    } else if c.targets.is_empty() {
        writeln!(out, "no service has an x-berth.update policy")?;
    } else {
        writeln!(
            out,
            "{:<24} {:<8} {:<12} {:<14} DETAIL",
            "SERVICE", "POLICY", "STATE", "VERSION"
        )?;
        for (t, f) in c.targets.iter().zip(&c.findings) {
            let (version, detail) = describe(f);
            writeln!(
                out,
                "{:<24} {:<8} {:<12} {:<14} {detail}",
                format!("{}/{}", t.project, t.service),
                t.spec.policy.label(),
                f.label(),
                version
            )?;
        }
        writeln!(
            out,
            "{} service(s) checked with {} registry request(s)",
            c.targets.len(),
            c.requests
        )?;
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn apply(args: UpdatesApply) -> anyhow::Result<ExitCode> {
    let Some(c) = check_all(&args.list, Some(&args.service))? else {
        return Ok(ExitCode::from(1));
    };
    let mut out = berth::redact::stdout();
    let (Some(t), Some(f)) = (c.targets.first(), c.findings.first()) else {
        anyhow::bail!("{} has no x-berth.update policy here", args.service);
    };
    let update = match f {
        // Applying now is the operator's call: a window or a minimum age does not hold it.
        Finding::Pending(u) | Finding::Skipped(u, _) => u,
        Finding::UpToDate => {
            writeln!(out, "{}: up to date ({})", args.service, t.image)?;
            return Ok(ExitCode::from(1));
        }
        Finding::Failed(e) => anyhow::bail!("failed to check {}: {e}", args.service),
    };
    let service = &c.state.projects[&t.project].services[&t.service];
    let loc = service
        .field_locs
        .get("image")
        .context("the loader did not say where the image is written")?;
    match args
        .list
        .source
        .git
        .options(berth::source::git::DEFAULT_INTERVAL)
    {
        Some(opts) => {
            let target = berth::update::git::GitTarget {
                remote: berth::source::git::Remote::new(&opts.url, opts.auth.clone()),
                branch: opts.reference.clone(),
                path: opts.path.clone(),
                push_branch: None,
                author: (
                    berth::update::git::DEFAULT_AUTHOR.0.to_string(),
                    berth::update::git::DEFAULT_AUTHOR.1.to_string(),
                ),
            };
            let done =
                berth::update::git::commit_update(&target, &t.project, &t.service, loc, update)
                    .with_context(|| format!("failed to commit the update of {}", args.service))?;
            writeln!(
                out,
                "{}: {} -> {}: commit {} pushed to {} ({})",
                args.service,
                update.from,
                update.to,
                berth::util::id::short(&done.sha),
                done.branch,
                done.written.file()
            )?;
        }
        None => {
            let root = args
                .list
                .source
                .dir
                .clone()
                .context("give DIR or --git URL")?;
            let written = berth::update::write::write_update(&root, loc, update)
                .with_context(|| format!("failed to write the update of {}", args.service))?;
            writeln!(
                out,
                "{}: {} -> {}: written to {}",
                args.service,
                update.from,
                update.to,
                written.file()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// (version, detail) columns of a finding.
fn describe(f: &Finding) -> (String, String) {
    match f {
        Finding::UpToDate => ("-".into(), String::new()),
        Finding::Pending(u) => (short(&u.version), format!("-> {}", u.to)),
        Finding::Skipped(u, skip) => (short(&u.version), format!("-> {} waits: {skip}", u.to)),
        Finding::Failed(e) => ("-".into(), e.clone()),
    }
}

fn short(version: &str) -> String {
    match version.strip_prefix("sha256:") {
        Some(hex) => format!("sha256:{}", &hex[..hex.len().min(7)]),
        None => version.to_string(),
    }
}

fn json(t: &Target, f: &Finding) -> serde_json::Value {
    let mut v = serde_json::json!({
        "project": t.project,
        "service": t.service,
        "image": t.image,
        "policy": t.spec.policy.label(),
        "state": f.label(),
    });
    match f {
        Finding::Pending(u) => {
            v["to"] = u.to.clone().into();
            v["version"] = u.version.clone().into();
        }
        Finding::Skipped(u, skip) => {
            v["to"] = u.to.clone().into();
            v["version"] = u.version.clone().into();
            v["reason"] = skip.label().into();
        }
        Finding::Failed(e) => v["error"] = e.clone().into(),
        Finding::UpToDate => {}
    }
    v
}
