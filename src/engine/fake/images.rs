//! Image calls: list, pull (from what the test put in the registry), build (the result the
//! test set, taking the build time it set), tag and untag as Docker moves tags.

use super::FakeEngine;
use super::state::add_local_image;
use crate::engine::{BuildSpec, EngineError, EngineOp, EngineResult, ImageSummary};

pub(super) async fn list_images(engine: &FakeEngine) -> EngineResult<Vec<ImageSummary>> {
    let mut s = engine.lock();
    s.enter("list_images", None)?;
    Ok(s.images.clone())
}

pub(super) async fn pull_image(
    engine: &FakeEngine,
    reference: &str,
    _platform: Option<&str>,
) -> EngineResult<String> {
    let mut s = engine.lock();
    s.enter("pull_image", Some(reference))?;
    let id = s
        .registry
        .get(reference)
        .cloned()
        .ok_or_else(|| EngineError::NotFound {
            op: EngineOp::PullImage,
            target: reference.into(),
        })?;
    add_local_image(&mut s, reference, &id);
    Ok(id)
}

pub(super) async fn build_image(engine: &FakeEngine, spec: &BuildSpec) -> EngineResult<String> {
    let time = {
        let mut s = engine.lock();
        s.enter("build_image", Some(&spec.tag))?;
        s.builds_running += 1;
        s.builds_peak = s.builds_peak.max(s.builds_running);
        s.build_time
    };
    if !time.is_zero() {
        tokio::time::sleep(time).await;
    }
    let mut s = engine.lock();
    s.builds_running -= 1;
    let id = match s.build_results.get(&spec.tag).cloned() {
        // The first line is the builder's error, the rest its last output lines.
        Some(Err(message)) => {
            let (message, log) = match message.split_once('\n') {
                Some((m, l)) => (m.to_owned(), Some(l.to_owned())),
                None => (message, None),
            };
            return Err(EngineError::BuildFailed {
                target: spec.tag.clone(),
                message,
                log,
            });
        }
        Some(Ok(id)) => id,
        None => s.new_id('i'),
    };
    add_local_image(&mut s, &spec.tag, &id);
    Ok(id)
}

pub(super) async fn tag_image(
    engine: &FakeEngine,
    image_id: &str,
    repo: &str,
    tag: &str,
) -> EngineResult<()> {
    let mut s = engine.lock();
    let reference = format!("{repo}:{tag}");
    s.enter("tag_image", Some(&format!("{image_id} {reference}")))?;
    // Docker resolves the source like any image reference: an ID or a tag naming one.
    let Some(id) = s
        .images
        .iter()
        .find(|i| i.id == image_id || i.tags.iter().any(|t| t == image_id))
        .map(|i| i.id.clone())
    else {
        return Err(EngineError::NotFound {
            op: EngineOp::TagImage,
            target: format!("{image_id} as {reference}"),
        });
    };
    add_local_image(&mut s, &reference, &id);
    Ok(())
}

pub(super) async fn remove_image_tag(engine: &FakeEngine, reference: &str) -> EngineResult<()> {
    let mut s = engine.lock();
    s.enter("remove_image_tag", Some(reference))?;
    let not_found = || EngineError::NotFound {
        op: EngineOp::RemoveImageTag,
        target: reference.into(),
    };
    let i = s
        .images
        .iter()
        .position(|i| i.tags.iter().any(|t| t == reference))
        .ok_or_else(not_found)?;
    let image = &s.images[i];
    if image.tags.len() + image.digests.len() > 1 {
        s.images[i].tags.retain(|t| t != reference);
        return Ok(());
    }
    // The last reference: the image goes too, unless a container uses it.
    if let Some(c) = s.containers.iter().find(|c| c.spec.image == image.id) {
        return Err(EngineError::Conflict {
            op: EngineOp::RemoveImageTag,
            target: reference.into(),
            message: format!(
                "conflict: unable to remove repository reference \"{reference}\" (must \
                 force) - container {} is using its referenced image {}",
                crate::util::id::short(&c.id),
                &image.id
            ),
        });
    }
    s.images.remove(i);
    Ok(())
}
