//! The fake's version answer and its event stream.

use tokio::sync::mpsc;

use super::state::label_matches;
use super::{FakeEngine, Subscriber};
use crate::engine::{EngineEvent, EngineInfo, EngineResult};

pub(super) async fn info(engine: &FakeEngine) -> EngineResult<EngineInfo> {
    engine.lock().enter("info", None)?;
    Ok(EngineInfo {
        version: "fake".into(),
        api_version: "1.41".into(),
        endpoint: FakeEngine::ENDPOINT.into(),
    })
}

pub(super) async fn events(
    engine: &FakeEngine,
    since: i64,
    label_filter: &str,
) -> EngineResult<mpsc::Receiver<EngineResult<EngineEvent>>> {
    let mut s = engine.lock();
    s.enter("events", Some(label_filter))?;
    let (tx, rx) = mpsc::channel(256);
    for event in s
        .events
        .iter()
        .filter(|e| e.time >= since && label_matches(&e.attributes, label_filter))
    {
        // Replayed history beyond the channel's capacity is lost, as with a slow reader.
        let _ = tx.try_send(Ok(event.clone()));
    }
    s.subscribers.push(Subscriber {
        label: label_filter.to_owned(),
        tx,
    });
    Ok(rx)
}
