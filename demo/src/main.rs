//! `berth-demo`: the small HTTP app that berth's quickstart and its real-engine tests deploy.
//!
//! With no arguments it serves HTTP on `0.0.0.0:$PORT`; environment variables set its version,
//! readiness, slow start and crash behaviour (see `demo/README.md`). Subcommands cover the other
//! roles a stack needs: a one-shot `migrate` job, a `worker`, a `probe` for Docker's
//! HEALTHCHECK, and `sleep`. Std only, so a static build fits in a FROM-scratch image.

mod config;
mod lifecycle;
mod probe;
mod server;

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use config::{Env, env_flag, env_or};
use lifecycle::Watch;

const USAGE: &str = "\
usage: berth-demo [serve]        HTTP server on 0.0.0.0:$PORT (default 8080)
       berth-demo migrate        print \"migrating to $APP_VERSION\", exit $MIGRATE_EXIT
       berth-demo worker         log a heartbeat every $HEARTBEAT_SECONDS (5) until SIGTERM
       berth-demo probe URL      GET http://HOST:PORT/PATH; exit 0 on 2xx/3xx, else 1
       berth-demo sleep SECONDS  sleep, then exit 0
Environment: see demo/README.md.";

/// Exit code for a bad command line, an unusable environment variable, or a server that
/// cannot start (port taken, `APP_DATA_DIR` not writable).
const STARTUP_ERROR: u8 = 2;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("berth-demo: {message}");
            ExitCode::from(STARTUP_ERROR)
        }
    }
}

/// Dispatches a command line; `Err` is a usage, configuration or startup error (exit 2).
fn run(args: &[&str]) -> Result<ExitCode, String> {
    let env = Env::from_process();
    match args {
        [] | ["serve"] => serve(&env),
        ["migrate"] => migrate(&env),
        ["worker"] => worker(&env),
        ["probe", url] => Ok(probe::run(url)),
        ["sleep", seconds] => {
            let duration = config::parse_seconds("sleep", seconds)?;
            lifecycle::watch(Watch::exit_on_sigterm(0));
            thread::sleep(duration);
            Ok(ExitCode::SUCCESS)
        }
        ["help" | "-h" | "--help"] => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(format!("unexpected arguments {args:?}\n{USAGE}")),
    }
}

/// Exit code for `FAIL_START` and `CRASH_AFTER` (`EXIT_CODE`, default 1).
fn crash_code(env: &Env) -> Result<u8, String> {
    env_or(env, "EXIT_CODE", 1, config::parse_exit_code)
}

/// Honours `FAIL_START=1`: a candidate that dies before doing anything.
fn fail_start(env: &Env, role: &str) -> Result<Option<ExitCode>, String> {
    if !env_flag(env, "FAIL_START")? {
        return Ok(None);
    }
    let code = crash_code(env)?;
    println!(
        "{role} {}: FAIL_START is set, exiting with {code}",
        env.version()
    );
    Ok(Some(ExitCode::from(code)))
}

fn serve(env: &Env) -> Result<ExitCode, String> {
    let config = server::Config::from_env(env)?;
    if let Some(code) = fail_start(env, "server")? {
        return Ok(code);
    }
    let crash = crash_after(env)?;
    let db = match &config.db_dir {
        Some(dir) => Some(server::open_db(dir).map_err(|e| format!("APP_MODE=db: {e}"))?),
        None => None,
    };
    let listener =
        server::bind(&config).map_err(|e| format!("cannot listen on port {}: {e}", config.port))?;
    lifecycle::watch(Watch {
        on_sigterm: 0,
        crash,
        announce_ready_at: config.ready_at(),
    });
    server::run(listener, config, db)
}

/// `CRASH_AFTER` seconds with `EXIT_CODE`, as an input for the watchdog.
fn crash_after(env: &Env) -> Result<Option<lifecycle::Crash>, String> {
    let Some(after) = config::env_seconds(env, "CRASH_AFTER")? else {
        return Ok(None);
    };
    Ok(Some(lifecycle::Crash {
        after,
        code: crash_code(env)?,
    }))
}

fn migrate(env: &Env) -> Result<ExitCode, String> {
    let seconds = config::env_seconds(env, "MIGRATE_SECONDS")?.unwrap_or(Duration::ZERO);
    let code = env_or(env, "MIGRATE_EXIT", 0, config::parse_exit_code)?;
    // A migration stopped half-way has not succeeded: SIGTERM exits 143 (128 + 15), so that
    // `service_completed_successfully` does not count it as done.
    lifecycle::watch(Watch::exit_on_sigterm(143));
    println!("migrating to {}", env.version());
    thread::sleep(seconds);
    if code == 0 {
        println!("migrated to {}", env.version());
    } else {
        println!("migration to {} failed: exiting with {code}", env.version());
    }
    Ok(ExitCode::from(code))
}

fn worker(env: &Env) -> Result<ExitCode, String> {
    let every = config::env_seconds(env, "HEARTBEAT_SECONDS")?.unwrap_or(Duration::from_secs(5));
    if every.is_zero() {
        return Err("HEARTBEAT_SECONDS must be more than 0".into());
    }
    if let Some(code) = fail_start(env, "worker")? {
        return Ok(code);
    }
    lifecycle::watch(Watch {
        on_sigterm: 0,
        crash: crash_after(env)?,
        announce_ready_at: None,
    });
    println!("worker {}: started", env.version());
    for beat in 1u64.. {
        thread::sleep(every);
        println!("worker {}: heartbeat {beat}", env.version());
    }
    unreachable!("the heartbeat loop ends only when the process exits")
}
