//! The event log: every transition berth reports (rollouts, reverts, degradations, self-heals,
//! an invalid desired state, recoveries) as numbered [`EventRecord`]s, in a bounded ring in
//! memory (for `/api/v1/events?since=`) and in a bounded file in the data dir
//! (`events.jsonl`, one JSON object a line; at its size limit it is renamed to
//! `events.jsonl.1`, replacing the older one, so at most twice the limit is kept).
//!
//! [`EventLog::push`] never does IO: it appends to the ring under a short lock and hands the
//! line to a writer thread over a bounded channel (a full channel drops the line from the file,
//! with a warning; the ring still has it). On start the ring and the sequence number are
//! seeded from the file, so numbers keep growing across restarts.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::time::{Timestamp, parse_rfc3339};

/// The file's name in the data dir.
pub const FILE_NAME: &str = "events.jsonl";
/// Events kept in memory by default.
pub const DEFAULT_CAPACITY: usize = 1000;
/// Size at which the file is rotated, by default.
pub const DEFAULT_FILE_LIMIT: u64 = 1 << 20;
/// Lines waiting for the writer thread.
const WRITE_QUEUE: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Sequence number, from 1, growing across restarts.
    pub seq: u64,
    /// When it happened.
    pub time: Timestamp,
    /// Project (empty for berth-wide events such as an invalid desired state).
    pub project: String,
    /// Service (empty for project- or berth-wide events).
    pub service: String,
    /// `rollout_started`, `rollout_succeeded`, `rollout_failed`, `rollout_paused`, `reverted`,
    /// `degraded`, `quarantine_lifted`, `self_heal`, `blocked`, `desired_state_invalid`,
    /// `reconcile_error`, `recovered`, and in a fleet with waves `wave_waiting`, `wave_held`,
    /// `wave_released`.
    pub kind: String,
    /// One word on why (e.g. `exited`, `deadline`, `unhealthy`, `desired_state_valid`).
    pub reason: String,
    /// In words.
    pub message: String,
    /// The revision it is about.
    pub revision: Option<u64>,
    /// `info`, `warning` or `error`.
    pub severity: String,
    /// The last lines of output of what failed (the candidate container's log, or a failed
    /// image build's), when the event carries them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

/// An event before it gets its number and time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Project.
    pub project: String,
    /// Service.
    pub service: String,
    /// Kind.
    pub kind: String,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
    /// Revision.
    pub revision: Option<u64>,
    /// Severity.
    pub severity: &'static str,
    /// Last lines of output (see [`EventRecord::logs`]).
    pub logs: Option<String>,
}

/// Which events a query wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Everything kept.
    All,
    /// Events numbered above this.
    Seq(u64),
    /// Events at or after this time (unix seconds).
    Time(u64),
}

impl Since {
    /// `N` (a sequence number), an RFC 3339 time, or a duration (`10m`: that long before
    /// `now`).
    pub fn parse(s: &str, now: u64) -> Result<Since, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Since::All);
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(Since::Seq)
                .map_err(|_| format!("sequence number out of range: {s}"));
        }
        if let Some(t) = parse_rfc3339(s) {
            return Ok(Since::Time(t));
        }
        crate::desired::syntax::units::parse_duration(s)
            .map(|d| Since::Time(now.saturating_sub(d.as_secs())))
            .map_err(|_| {
                format!(
                    "since={s}: expected a sequence number, an RFC 3339 time (2024-05-01T12:00:00Z) or a duration (10m)"
                )
            })
    }

    /// Whether `e` is wanted.
    pub fn admits(self, e: &EventRecord) -> bool {
        match self {
            Since::All => true,
            Since::Seq(n) => e.seq > n,
            Since::Time(t) => e.time.0 >= t,
        }
    }
}

enum WriterMsg {
    Line(String),
    Flush(SyncSender<()>),
}

struct Ring {
    events: VecDeque<EventRecord>,
    next_seq: u64,
}

/// The ring and the file writer.
pub struct EventLog {
    ring: Mutex<Ring>,
    capacity: usize,
    writer: Option<SyncSender<WriterMsg>>,
}

impl EventLog {
    /// An in-memory log only.
    pub fn in_memory(capacity: usize) -> EventLog {
        EventLog {
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                next_seq: 1,
            }),
            capacity: capacity.max(1),
            writer: None,
        }
    }

    /// A log whose file lives in `data_dir` (created if missing); the ring is seeded from the
    /// file. A file that cannot be opened leaves the log in memory only, with a warning.
    pub fn open(data_dir: &Path, capacity: usize, file_limit: u64) -> EventLog {
        let mut log = EventLog::in_memory(capacity);
        let seeded = read_file(data_dir);
        {
            let ring = log.ring.get_mut().expect("not shared yet");
            ring.next_seq = seeded.last().map_or(1, |e| e.seq + 1);
            let skip = seeded.len().saturating_sub(log.capacity);
            ring.events.extend(seeded.into_iter().skip(skip));
        }
        let path = data_dir.join(FILE_NAME);
        match fs::create_dir_all(data_dir)
            .and_then(|()| OpenOptions::new().create(true).append(true).open(&path))
        {
            Ok(file) => {
                let (tx, rx) = mpsc::sync_channel(WRITE_QUEUE);
                let limit = file_limit.max(1024);
                let spawned = std::thread::Builder::new()
                    .name("berth-events".into())
                    .spawn(move || writer(path, file, limit, rx));
                match spawned {
                    Ok(_) => log.writer = Some(tx),
                    Err(e) => tracing::warn!(error = %e, "event file writer not started"),
                }
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "event file unavailable; events are kept in memory only")
            }
        }
        log
    }

    /// Numbers and stores an event at `now` (unix seconds); returns it.
    pub fn push(&self, e: NewEvent, now: u64) -> EventRecord {
        let rec = {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            let rec = EventRecord {
                seq: ring.next_seq,
                time: Timestamp(now),
                project: e.project,
                service: e.service,
                kind: e.kind,
                reason: e.reason,
                // Masked once here, so the ring, events.jsonl, the API and notifications all
                // carry the masked text (see `redact`).
                message: crate::redact::owned(&e.message),
                revision: e.revision,
                severity: e.severity.to_string(),
                logs: e.logs.map(|l| crate::redact::owned(&l)),
            };
            ring.next_seq += 1;
            if ring.events.len() >= self.capacity {
                ring.events.pop_front();
            }
            ring.events.push_back(rec.clone());
            rec
        };
        if let Some(tx) = &self.writer {
            match serde_json::to_string(&rec) {
                Ok(line) => match tx.try_send(WriterMsg::Line(line)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => tracing::warn!(
                        seq = rec.seq,
                        "event file writer is behind; event {} kept in memory only",
                        rec.seq
                    ),
                    Err(TrySendError::Disconnected(_)) => {}
                },
                Err(e) => tracing::warn!(error = %e, "event not serialisable"),
            }
        }
        rec
    }

    /// Events admitted by `since`, oldest first, at most `limit` (the oldest ones).
    pub fn since(&self, since: Since, limit: usize) -> Vec<EventRecord> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        ring.events
            .iter()
            .filter(|e| since.admits(e))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The number the next event gets.
    pub fn next_seq(&self) -> u64 {
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).next_seq
    }

    /// Waits (up to `limit`) until every line pushed so far is in the file.
    pub fn flush(&self, limit: Duration) -> bool {
        let Some(tx) = &self.writer else { return true };
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        if tx.send(WriterMsg::Flush(ack_tx)).is_err() {
            return false;
        }
        ack_rx.recv_timeout(limit).is_ok()
    }
}

fn writer(path: PathBuf, file: File, limit: u64, rx: Receiver<WriterMsg>) {
    let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut file = Some(file);
    let rotated = path.with_extension("jsonl.1");
    while let Ok(msg) = rx.recv() {
        let line = match msg {
            WriterMsg::Line(l) => l,
            WriterMsg::Flush(ack) => {
                if let Some(f) = file.as_mut() {
                    let _ = f.flush();
                }
                let _ = ack.send(());
                continue;
            }
        };
        if size > 0 && size + line.len() as u64 + 1 > limit {
            drop(file.take());
            if let Err(e) = fs::rename(&path, &rotated) {
                tracing::warn!(path = %path.display(), error = %e, "event file not rotated; truncating it");
            }
            size = 0;
        }
        if file.is_none() {
            file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .inspect_err(|e| {
                    tracing::warn!(path = %path.display(), error = %e, "event file unavailable")
                })
                .ok();
            if let Some(f) = &file {
                // A rename that failed: start the file over rather than grow past the limit.
                if f.metadata().map(|m| m.len()).unwrap_or(0) > 0 {
                    let _ = f.set_len(0);
                }
            }
        }
        if let Some(f) = file.as_mut() {
            match writeln!(f, "{line}") {
                Ok(()) => size += line.len() as u64 + 1,
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "event not written"),
            }
        }
    }
}

/// Every event in `data_dir`'s files, oldest first (the rotated file first). Lines that do
/// not parse (a torn last line) are skipped.
pub fn read_file(data_dir: &Path) -> Vec<EventRecord> {
    let mut out = Vec::new();
    for name in [format!("{FILE_NAME}.1"), FILE_NAME.to_string()] {
        let Ok(f) = File::open(data_dir.join(name)) else {
            continue;
        };
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            if let Ok(e) = serde_json::from_str::<EventRecord>(&line) {
                out.push(e);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str) -> NewEvent {
        NewEvent {
            project: "shop".into(),
            service: "web".into(),
            kind: kind.into(),
            reason: "r".into(),
            message: "m".into(),
            revision: Some(1),
            severity: "info",
            logs: None,
        }
    }

    #[test]
    fn the_ring_is_bounded_and_numbers_grow() {
        let log = EventLog::in_memory(3);
        for i in 0..5 {
            log.push(ev("self_heal"), 100 + i);
        }
        let all = log.since(Since::All, 100);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(log.since(Since::Seq(4), 100).len(), 1);
        assert_eq!(log.since(Since::Time(103), 100).len(), 2);
        assert_eq!(log.since(Since::All, 2).len(), 2);
    }

    #[test]
    fn since_reads_numbers_times_and_durations() {
        assert_eq!(Since::parse("12", 0), Ok(Since::Seq(12)));
        assert_eq!(
            Since::parse("2024-05-01T12:00:00Z", 0),
            Ok(Since::Time(1_714_564_800))
        );
        assert_eq!(Since::parse("10m", 1000), Ok(Since::Time(400)));
        assert_eq!(Since::parse("", 0), Ok(Since::All));
        assert!(Since::parse("yesterday", 0).is_err());
    }

    #[test]
    fn the_file_rotates_at_its_limit_and_seeds_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path(), 10, 1024);
        for i in 0..40 {
            log.push(ev("rollout_started"), 1000 + i);
        }
        assert!(log.flush(Duration::from_secs(5)));
        let main = fs::metadata(dir.path().join(FILE_NAME)).unwrap().len();
        let old = fs::metadata(dir.path().join("events.jsonl.1"))
            .unwrap()
            .len();
        assert!(main <= 1024 && old <= 1024, "{main} {old}");
        drop(log);
        let again = EventLog::open(dir.path(), 10, 1024);
        assert_eq!(again.next_seq(), 41);
        let kept = again.since(Since::All, 100);
        assert_eq!(kept.len(), 10);
        assert_eq!(kept.last().unwrap().seq, 40);
    }
}
