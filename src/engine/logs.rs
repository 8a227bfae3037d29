//! A container's output as `docker logs` gives it, for `berth logs`: what to ask for
//! ([`LogsRequest`]), what comes back ([`LogLine`]), and the bollard stream behind
//! `DockerEngine::logs` (IO; the fake engine answers from memory).
//!
//! Lines arrive on a channel, so that `--follow` can run until the container stops or the
//! reader goes away; chunks from Docker are cut into whole lines here.

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{EngineError, EngineResult};

/// Lines buffered between the engine and the reader.
const CHANNEL: usize = 256;

/// What to read from a container's output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogsRequest {
    /// Only lines written at or after this time (unix seconds).
    pub since: Option<i64>,
    /// Only the last this many lines (of what `since` leaves).
    pub tail: Option<usize>,
    /// Keep reading until the container stops.
    pub follow: bool,
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of output, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Where it came from.
    pub stream: Stream,
    /// The text.
    pub text: String,
}

/// Streams `id`'s output as lines; `classify` turns a bollard error into berth's.
pub(super) fn docker_stream(
    docker: Docker,
    id: &str,
    req: &LogsRequest,
    classify: impl Fn(bollard::errors::Error) -> EngineError + Send + 'static,
) -> mpsc::Receiver<EngineResult<LogLine>> {
    let mut options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .follow(req.follow);
    if let Some(since) = req.since {
        options = options.since(since as i32);
    }
    options = options.tail(
        &req.tail
            .map_or_else(|| "all".to_string(), |n| n.to_string()),
    );
    let options = options.build();
    let (tx, rx) = mpsc::channel(CHANNEL);
    let id = id.to_owned();
    tokio::spawn(async move {
        let mut stream = docker.logs(&id, Some(options));
        // A line Docker cut in two chunks is joined before it is sent.
        let (mut out, mut err) = (String::new(), String::new());
        while let Some(item) = stream.next().await {
            let (kind, bytes) = match item {
                Ok(LogOutput::StdErr { message }) => (Stream::Stderr, message),
                Ok(
                    LogOutput::StdOut { message }
                    | LogOutput::Console { message }
                    | LogOutput::StdIn { message },
                ) => (Stream::Stdout, message),
                Err(e) => {
                    let _ = tx.send(Err(classify(e))).await;
                    return;
                }
            };
            let buf = match kind {
                Stream::Stdout => &mut out,
                Stream::Stderr => &mut err,
            };
            buf.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(i) = buf.find('\n') {
                let text: String = buf.drain(..=i).collect();
                let line = LogLine {
                    stream: kind,
                    text: text.trim_end_matches(['\n', '\r']).to_string(),
                };
                if tx.send(Ok(line)).await.is_err() {
                    return;
                }
            }
        }
        for (stream, rest) in [(Stream::Stdout, out), (Stream::Stderr, err)] {
            if !rest.is_empty() {
                let _ = tx.send(Ok(LogLine { stream, text: rest })).await;
            }
        }
    });
    rx
}

/// Cuts `text` into lines for a fake or a stored log, honouring `tail`.
pub fn lines_of(text: &str, stream: Stream, tail: Option<usize>) -> Vec<LogLine> {
    let all: Vec<&str> = text.lines().collect();
    let from = tail.map_or(0, |n| all.len().saturating_sub(n));
    all[from..]
        .iter()
        .map(|l| LogLine {
            stream,
            text: (*l).to_string(),
        })
        .collect()
}
