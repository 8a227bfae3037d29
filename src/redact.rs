//! Redaction by value: every value that came from a host env file (`--env-dir`) or a secret
//! file is replaced by `[redacted]` in everything berth writes — logs at any verbosity,
//! status, events, metrics, notifications, plan and history output, errors.
//!
//! The loader cannot know where a value will travel (an env-dir value may be interpolated into
//! `image:`, a probe URL, a label), so berth does not try to track it: it redacts at the
//! sinks. The set of secret values is process-wide, replaced after every successful load
//! ([`set`]), and read by the output paths through [`text`] and the [`Writer`] that wraps the
//! log output. Values shorter than [`MIN_LEN`] characters are not redacted: replacing every
//! `1` or `on` would destroy the output and protect nothing (such a value is guessable anyway;
//! `docs/security.md` says so).
//!
//! Pure apart from the process-wide set (an `RwLock` read on each use; writes happen once per
//! desired-state load).

use std::borrow::Cow;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tracing_subscriber::fmt::MakeWriter;

/// What a redacted value is replaced with.
pub const MASK: &str = "[redacted]";

/// Shortest value that is redacted.
pub const MIN_LEN: usize = 4;

static SECRETS: RwLock<Option<Arc<Secrets>>> = RwLock::new(None);

/// Bumped on every change of the set; [`save`] writes only when it moved.
static GENERATION: AtomicU64 = AtomicU64::new(0);
static SAVED: AtomicU64 = AtomicU64::new(0);

/// The file in the data directory that keeps the values to mask for berth's read commands
/// (`history`, `status`, `events` run without the env files). Owner-only, like the records
/// beside it, which hold the same values in their container templates.
pub const FILE_NAME: &str = "redact.json";

/// A set of secret values, longest first (so that a value containing another is masked whole).
/// Its `Debug` shows how many values it holds, never a value.
#[derive(Default, Clone, PartialEq, Eq)]
pub struct Secrets {
    values: Vec<String>,
}

impl Secrets {
    /// The set of `values` worth redacting (at least [`MIN_LEN`] characters, deduplicated).
    pub fn new<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut values: Vec<String> = values
            .into_iter()
            .map(Into::into)
            .map(|v| v.trim().to_string())
            .filter(|v| v.chars().count() >= MIN_LEN)
            .collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Self { values }
    }

    /// `s` with every secret value replaced by [`MASK`].
    pub fn apply<'a>(&self, s: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(s);
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = Cow::Owned(out.replace(v.as_str(), MASK));
            }
        }
        out
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} values)", self.values.len())
    }
}

/// Replaces the process-wide set.
pub fn set(secrets: Secrets) {
    let mut guard = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    *guard = Some(Arc::new(secrets));
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Adds `values` to the process-wide set. The loader calls it with every value it reads from a
/// host env file; values are never dropped, so a rotated secret's old value stays masked in
/// whatever still mentions it.
pub fn add<I, S>(values: I)
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let new = Secrets::new(values);
    if new.is_empty() {
        return;
    }
    let mut guard = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    let merged = match guard.as_deref() {
        Some(old) => Secrets::new(old.values.iter().cloned().chain(new.values)),
        None => new,
    };
    if guard.as_deref() != Some(&merged) {
        *guard = Some(Arc::new(merged));
        GENERATION.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes the set to `data_dir/`[`FILE_NAME`] (atomically, mode 0600) when it changed since
/// the last save, so that read commands mask what `apply` and `run` mask.
pub fn save(data_dir: &Path) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let generation = GENERATION.load(Ordering::Relaxed);
    if SAVED.load(Ordering::Relaxed) == generation {
        return Ok(());
    }
    let Some(secrets) = current() else {
        return Ok(());
    };
    let bytes = serde_json::to_vec(&secrets.values).map_err(io::Error::other)?;
    let path = data_dir.join(FILE_NAME);
    let tmp = data_dir.join(format!(".{FILE_NAME}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    SAVED.store(generation, Ordering::Relaxed);
    Ok(())
}

/// Adds the values [`save`]d in `data_dir` (none when the file is absent or unreadable: a read
/// command still works, and says nothing it could not mask only if berth never saved any).
pub fn load(data_dir: &Path) {
    let Ok(bytes) = std::fs::read(data_dir.join(FILE_NAME)) else {
        return;
    };
    if let Ok(values) = serde_json::from_slice::<Vec<String>>(&bytes) {
        add(values);
    }
}

fn current() -> Option<Arc<Secrets>> {
    SECRETS.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// `s` with every known secret value replaced by [`MASK`].
pub fn text(s: &str) -> Cow<'_, str> {
    match current() {
        Some(secrets) => match secrets.apply(s) {
            Cow::Borrowed(_) => Cow::Borrowed(s),
            Cow::Owned(o) => Cow::Owned(o),
        },
        None => Cow::Borrowed(s),
    }
}

/// `s` redacted, owned (for values stored in events, status and labels).
pub fn owned(s: &str) -> String {
    text(s).into_owned()
}

/// Masks every string in a JSON value (before it is serialized: a value with a quote or a
/// backslash would no longer match once escaped).
pub fn json(value: &mut serde_json::Value) {
    let Some(secrets) = current() else {
        return;
    };
    fn walk(v: &mut serde_json::Value, s: &Secrets) {
        match v {
            serde_json::Value::String(text) => {
                if let Cow::Owned(o) = s.apply(text) {
                    *text = o;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| walk(i, s)),
            serde_json::Value::Object(map) => map.values_mut().for_each(|i| walk(i, s)),
            _ => {}
        }
    }
    walk(value, &secrets);
}

/// A writer that redacts what passes through it, line by line: a value is masked even when
/// a `Display` impl writes it in several pieces. Whatever is left without a newline is written
/// on `flush` and on drop.
pub struct Writer<W: io::Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: io::Write> Writer<W> {
    /// Redacts what is written to `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }

    fn emit(&mut self, upto: usize) -> io::Result<()> {
        let chunk: Vec<u8> = self.pending.drain(..upto).collect();
        match std::str::from_utf8(&chunk) {
            Ok(s) => self.inner.write_all(text(s).as_bytes()),
            Err(_) => self.inner.write_all(&chunk),
        }
    }
}

impl<W: io::Write> io::Write for Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last) = self.pending.iter().rposition(|b| *b == b'\n') {
            self.emit(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let n = self.pending.len();
        self.emit(n)?;
        self.inner.flush()
    }
}

impl<W: io::Write> Drop for Writer<W> {
    fn drop(&mut self) {
        // A closed pipe at exit is not worth a panic; the lines before it were written.
        let _ = io::Write::flush(self);
    }
}

/// Standard output, redacted (for the CLI's reports).
pub fn stdout() -> Writer<io::StdoutLock<'static>> {
    Writer::new(io::stdout().lock())
}

/// Standard error, redacted.
pub fn stderr() -> Writer<io::StderrLock<'static>> {
    Writer::new(io::stderr().lock())
}

/// Wraps a [`MakeWriter`] so that every log record is redacted.
pub struct MakeRedacted<M> {
    inner: M,
}

impl<M> MakeRedacted<M> {
    /// Redacts what `inner` would write.
    pub fn new(inner: M) -> Self {
        Self { inner }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for MakeRedacted<M> {
    type Writer = Writer<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Writer::new(self.inner.make_writer())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_longest_first() {
        let s = Secrets::new(["hunter2-long", "hunter2", "ab"]);
        assert_eq!(
            s.apply("pw=hunter2-long, again hunter2; ab stays"),
            "pw=[redacted], again [redacted]; ab stays"
        );
    }

    #[test]
    fn short_and_blank_values_are_not_masked() {
        let s = Secrets::new(["1", "on", "   ", "abc"]);
        assert!(s.is_empty());
        assert_eq!(s.apply("replicas 1 on"), "replicas 1 on");
    }

    #[test]
    fn writer_redacts_what_reaches_the_inner_writer() {
        use std::io::Write;
        // The process-wide set is shared by the lib's tests: a value no other test prints.
        set(Secrets::new(["writer-test-s3cr3t-token"]));
        let mut out = Vec::new();
        {
            let mut w = Writer::new(&mut out);
            // In pieces, as a Display impl writes: the value is masked all the same.
            write!(w, "GET http://127.0.0.1/health?token=writer-test-").unwrap();
            writeln!(w, "s3cr3t-token").unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET http://127.0.0.1/health?token=[redacted]\n"
        );
        assert_eq!(owned("x writer-test-s3cr3t-token"), "x [redacted]");
        add(["added-later-s3cr3t"]);
        assert_eq!(
            owned("writer-test-s3cr3t-token added-later-s3cr3t"),
            "[redacted] [redacted]"
        );
    }

    #[test]
    fn json_strings_are_masked_before_escaping() {
        set(Secrets::new([
            "json-\"quoted\"-s3cr3t",
            "writer-test-s3cr3t-token",
        ]));
        let mut v = serde_json::json!({"image": "app:json-\"quoted\"-s3cr3t", "n": 1, "l": ["x"]});
        json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"image": "app:[redacted]", "n": 1, "l": ["x"]})
        );
    }

    #[test]
    fn saved_values_are_masked_by_a_later_reader() {
        let dir = tempfile::tempdir().unwrap();
        add(["saved-for-readers-s3cr3t"]);
        save(dir.path()).unwrap();
        let saved = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(saved.contains("saved-for-readers-s3cr3t"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        load(dir.path());
        assert_eq!(owned("x saved-for-readers-s3cr3t"), "x [redacted]");
    }

    #[test]
    fn debug_never_prints_a_value() {
        let s = Secrets::new(["hunter2-long"]);
        assert_eq!(format!("{s:?}"), "Secrets(1 values)");
    }
}
