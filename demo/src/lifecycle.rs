//! Process lifecycle: SIGTERM/SIGINT, the `CRASH_AFTER` timer and the "ready" log line.
//!
//! In a container this binary is PID 1, and the kernel drops signals PID 1 has no handler for:
//! without one, `docker stop` would wait out its whole timeout and then SIGKILL. The handler only
//! sets an atomic flag; a watchdog thread polls it (and the deadlines) every `TICK` and exits the
//! process, so `docker stop` returns within a tick.

use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How often the watchdog looks at the flag and the deadlines.
const TICK: Duration = Duration::from_millis(50);

/// The stop signal received, 0 while none has been.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// What the watchdog does besides exiting on SIGTERM.
pub struct Watch {
    /// Exit code when SIGTERM or SIGINT arrives.
    pub on_sigterm: u8,
    /// Exit on purpose after a while (`CRASH_AFTER`).
    pub crash: Option<Crash>,
    /// Log one line when /health turns 200.
    pub announce_ready_at: Option<Instant>,
}

pub struct Crash {
    pub after: Duration,
    pub code: u8,
}

impl Watch {
    pub fn exit_on_sigterm(code: u8) -> Self {
        Self {
            on_sigterm: code,
            crash: None,
            announce_ready_at: None,
        }
    }
}

/// Installs the signal handlers and starts the watchdog thread.
pub fn watch(watch: Watch) {
    install_handlers();
    let started = Instant::now();
    let crash_at = watch.crash.map(|c| (started + c.after, c.after, c.code));
    let mut announce_ready_at = watch.announce_ready_at;
    thread::spawn(move || {
        loop {
            let signum = STOP_SIGNAL.load(Ordering::Relaxed);
            if signum != 0 {
                let name = if signum == SIGINT {
                    "SIGINT"
                } else {
                    "SIGTERM"
                };
                println!("received {name}: exiting with {}", watch.on_sigterm);
                std::process::exit(watch.on_sigterm.into());
            }
            let now = Instant::now();
            if let Some((_, after, code)) = crash_at.filter(|&(at, _, _)| now >= at) {
                println!(
                    "CRASH_AFTER={}s reached: exiting with {code}",
                    after.as_secs_f64()
                );
                std::process::exit(code.into());
            }
            if announce_ready_at.is_some_and(|at| now >= at) {
                println!("ready: /health answers 200");
                announce_ready_at = None;
            }
            thread::sleep(TICK);
        }
    });
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

// signal(2) from the C library std already links against. Declared here rather than taken
// from the `libc` crate to stay dependency-free; `sighandler_t` is a function pointer, which
// has the size of `usize` on every target Rust supports.
unsafe extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
}

extern "C" fn on_stop_signal(signum: i32) {
    // Only an atomic store: async-signal-safe.
    STOP_SIGNAL.store(signum, Ordering::Relaxed);
}

fn install_handlers() {
    let handler = on_stop_signal as extern "C" fn(i32) as usize;
    for signum in [SIGTERM, SIGINT] {
        // SAFETY: `signal` is called with a valid signal number and a handler with the C
        // signature `void (*)(int)` that does nothing but an async-signal-safe atomic store.
        let previous = unsafe { signal(signum, handler) };
        if previous == usize::MAX {
            // SIG_ERR: not fatal, `docker stop` then falls back to SIGKILL after its timeout.
            eprintln!("berth-demo: could not install a handler for signal {signum}");
        }
    }
}
