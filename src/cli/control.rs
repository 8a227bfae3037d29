//! The operator's manual controls: `berth history` prints a service's record; `retry`,
//! `hold`, `release` and `rollback` decide on it (`berth::control`, pure), write only its
//! control file (the running controller owns the record) and wake `berth run`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use berth::control::{self, Change, ControlError, ServiceRef};
use berth::lock::{self, Wake};
use berth::reconcile::round::unix_now;
use berth::store::{ServiceRecord, Store};

use super::args::{HistoryArgs, RollbackArgs, ServiceArgs};

/// `berth history`: reads the record, prints the table (or JSON).
pub fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let HistoryArgs { target, json } = args;
    let (_, rec) = open_record(&target)?;
    let mut out = berth::redact::stdout();
    if json {
        serde_json::to_writer_pretty(&mut out, &control::history_json(&target.service, &rec))
            .context("failed to write the record")?;
        writeln!(out)?;
    } else {
        write!(
            out,
            "{}",
            control::history(&target.service, &rec, unix_now())
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `berth retry`.
pub fn retry(target: ServiceArgs) -> anyhow::Result<ExitCode> {
    change(&target, |rec| {
        Ok(control::retry(&target.service, rec, unix_now()))
    })
}

/// `berth hold`.
pub fn hold(target: ServiceArgs) -> anyhow::Result<ExitCode> {
    change(&target, |rec| {
        Ok(control::hold(&target.service, rec, unix_now()))
    })
}

/// `berth release`.
pub fn release(target: ServiceArgs) -> anyhow::Result<ExitCode> {
    change(&target, |rec| Ok(control::release(&target.service, rec)))
}

/// `berth rollback`.
pub fn rollback(args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let RollbackArgs { target, to } = args;
    change(&target, |rec| control::rollback(&target.service, rec, to))
}

/// Decides on the record, writes the control file (never the record: the running controller
/// owns it), wakes the controller.
fn change(
    target: &ServiceArgs,
    decide: impl FnOnce(&ServiceRecord) -> Result<Change, ControlError>,
) -> anyhow::Result<ExitCode> {
    let (store, rec) = open_record(target)?;
    let change = decide(&rec)?;
    println!("{}", change.message);
    if change.control == rec.control {
        return Ok(ExitCode::SUCCESS);
    }
    let ServiceRef { project, service } = &target.service;
    store
        .save_control(project, service, &change.control)
        .with_context(|| format!("failed to write the control file of {}", target.service))?;
    match lock::wake_controller(&target.data_dir) {
        Wake::Woken(pid) => println!("woke berth run (pid {pid}): it reconciles now"),
        Wake::NotRunning => println!(
            "no berth run holds {}: the change takes effect at the next `berth apply` or `berth run`",
            target.data_dir.display()
        ),
        Wake::Other(holder) => println!(
            "{holder} holds {} and read the records when it started: the change takes effect at the next `berth apply` or `berth run`",
            target.data_dir.display()
        ),
        Wake::Failed(pid, why) => eprintln!(
            "berth: warning: failed to wake berth run (pid {pid}): {:#}; it reads the change at its next resync",
            anyhow::Error::from(why)
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The store and `target`'s record; a service without a record file is an error that lists
/// the services that have one. Creates nothing in the data dir.
fn open_record(target: &ServiceArgs) -> anyhow::Result<(Store, ServiceRecord)> {
    let ServiceRef { project, service } = &target.service;
    berth::redact::load(&target.data_dir);
    let state = target.data_dir.join("state");
    let no_record = |known| ControlError::NoRecord {
        service: target.service.to_string(),
        dir: state.clone(),
        known,
    };
    if !state.is_dir() {
        return Err(no_record(Vec::new()).into());
    }
    let store = Store::open(&target.data_dir).context("failed to open berth's records")?;
    let path = store.path(project, service)?;
    if !path.is_file() {
        let known = store
            .services()
            .context("failed to list berth's records")?
            .into_iter()
            .map(|(p, s)| format!("{p}/{s}"))
            .collect();
        return Err(no_record(known).into());
    }
    let rec = store
        .load(project, service)
        .with_context(|| format!("failed to read the record of {}", target.service))?;
    Ok((store, rec))
}
