//! `berth apply`'s live output (IO): the plan of each round, rollout events as readable lines,
//! and the services' progress (`berth::progress`, pure) — on a terminal a table redrawn in
//! place on standard error, elsewhere a line on standard output when a service's state changes
//! and a heartbeat at most every [`HEARTBEAT`] while something is still moving.

use std::io::Write as _;
use std::time::{Duration, Instant};

use berth::desired::{DesiredState, Diagnostics};
use berth::progress::{self, Row};
use berth::reconcile::event::EventKind;
use berth::reconcile::round::Done;
use berth::redact;
use berth::telemetry::status::{self, SourceInfo, StatusInput};

/// Longest silence off a terminal while a service is still progressing.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// Shortest interval between two redraws of the table on a terminal.
const REDRAW: Duration = Duration::from_millis(250);

/// The live output of one apply.
pub struct Live<'a> {
    desired: &'a DesiredState,
    /// Standard error is a terminal: the table is redrawn in place there.
    tty: bool,
    colour: bool,
    started: Instant,
    rows: Vec<Row>,
    /// Lines of the table on screen now.
    drawn: usize,
    last_draw: Option<Instant>,
    last_beat: Instant,
    source: SourceInfo,
    diagnostics: Diagnostics,
}

impl<'a> Live<'a> {
    /// Live output for `desired`, deciding once whether standard error is a terminal.
    pub fn new(desired: &'a DesiredState, dir: &std::path::Path) -> Live<'a> {
        use std::io::IsTerminal as _;
        let now = Instant::now();
        Live {
            desired,
            tty: std::io::stderr().is_terminal(),
            colour: berth::util::colour::stderr(),
            started: now,
            rows: Vec::new(),
            drawn: 0,
            last_draw: None,
            last_beat: now,
            source: SourceInfo {
                kind: "dir".into(),
                location: dir.display().to_string(),
                revision: None,
            },
            diagnostics: Diagnostics::default(),
        }
    }

    /// Prints `text` on standard output (the plan, an event) above the table.
    pub fn say(&mut self, text: &str) {
        self.clear();
        let _ = write!(redact::stdout(), "{text}");
        self.draw();
    }

    /// Prints `text` on standard error above the table.
    pub fn warn(&mut self, text: &str) {
        self.clear();
        let _ = write!(redact::stderr(), "{text}");
        self.draw();
    }

    /// A rollout event as a readable line (its start was printed with the plan).
    pub fn event(&mut self, e: &berth::reconcile::event::Event) {
        if e.kind != EventKind::RolloutStarted {
            self.say(&format!("{e}\n"));
        }
    }

    /// A round ended: update the progress.
    pub fn round(&mut self, done: &Done, now: u64) {
        let status = status::build(
            &StatusInput {
                now,
                round: None,
                source: &self.source,
                diagnostics: &self.diagnostics,
                desired: Some(self.desired),
                observed: Some(&done.observed),
                records: Some(&done.records),
                plan: Some(&done.plan),
                failures: &done.failures,
                probes_tracked: true,
            },
            None,
        );
        let rows = progress::rows(&status, self.desired, &done.records, now);
        let elapsed = self.started.elapsed().as_secs();
        if self.tty {
            let due = self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW);
            if due || rows != self.rows {
                self.rows = rows;
                self.clear();
                self.draw();
            }
            return;
        }
        let changed: Vec<String> = progress::changed(&self.rows, &rows)
            .into_iter()
            .map(progress::line)
            .collect();
        let mut out = redact::stdout();
        if !changed.is_empty() {
            for l in &changed {
                let _ = writeln!(out, "{l}");
            }
            self.last_beat = Instant::now();
        } else if self.last_beat.elapsed() >= HEARTBEAT {
            for l in progress::heartbeat(&rows, elapsed) {
                let _ = writeln!(out, "{l}");
            }
            self.last_beat = Instant::now();
        }
        self.rows = rows;
    }

    /// Leaves the last table on screen; what follows prints below it.
    pub fn finish(&mut self) {
        self.drawn = 0;
    }

    fn clear(&mut self) {
        if self.tty && self.drawn > 0 {
            // Up to the table's first line, then erase to the end of the screen.
            let _ = write!(redact::stderr(), "\x1b[{}F\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn draw(&mut self) {
        if !self.tty || self.rows.is_empty() {
            return;
        }
        let text = progress::frame(&self.rows, self.started.elapsed().as_secs(), self.colour);
        self.drawn = text.lines().count();
        let _ = write!(redact::stderr(), "{text}");
        self.last_draw = Some(Instant::now());
    }
}
