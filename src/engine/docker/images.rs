//! Image calls: list, pull (with the registry credentials `auth` finds), build (the context
//! streamed as a tar in chunks, an inline Dockerfile added to it), tag and untag.

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateImageOptionsBuilder, ListImagesOptions,
    RemoveImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::DockerEngine;
use super::errors::refused;
use crate::engine::auth::{self, Lookup};
use crate::engine::{BUILD_LOG_TAIL, BuildSpec, EngineError, EngineOp, EngineResult, ImageSummary};

pub(super) async fn list_images(engine: &DockerEngine) -> EngineResult<Vec<ImageSummary>> {
    let docker = engine.client(EngineOp::ListImages).await?;
    let list = engine
        .call(
            EngineOp::ListImages,
            "(all)",
            engine.timeout,
            docker.list_images(None::<ListImagesOptions>),
        )
        .await?;
    Ok(list
        .into_iter()
        .map(|i| ImageSummary {
            id: i.id,
            tags: i
                .repo_tags
                .into_iter()
                .filter(|t| t != "<none>:<none>")
                .collect(),
            digests: i
                .repo_digests
                .into_iter()
                .filter(|d| d != "<none>@<none>")
                .collect(),
        })
        .collect())
}

pub(super) async fn pull_image(
    engine: &DockerEngine,
    reference: &str,
    platform: Option<&str>,
) -> EngineResult<String> {
    let docker = engine.client(EngineOp::PullImage).await?;
    let reference = pull_reference(reference);
    let mut options = CreateImageOptionsBuilder::new().from_image(&reference);
    if let Some(platform) = platform {
        options = options.platform(platform);
    }
    let options = options.build();
    let lookup = match &engine.auth {
        Some(auth) => Some(auth.lookup(&reference).await),
        None => None,
    };
    let credentials = lookup.as_ref().and_then(Lookup::to_bollard);
    let pull = async {
        let mut progress = docker.create_image(Some(options), None, credentials);
        while let Some(item) = progress.next().await {
            item?;
        }
        Ok(())
    };
    engine
        .call(EngineOp::PullImage, &reference, engine.pull_timeout, pull)
        .await
        .map_err(|e| refused(e, lookup.as_ref()))?;
    let image = engine
        .call(
            EngineOp::InspectImage,
            &reference,
            engine.timeout,
            docker.inspect_image(&reference),
        )
        .await?;
    image.id.ok_or_else(|| EngineError::Failed {
        op: EngineOp::InspectImage,
        target: reference,
        message: "the engine returned no image ID".into(),
    })
}

pub(super) async fn build_image(engine: &DockerEngine, spec: &BuildSpec) -> EngineResult<String> {
    let docker = engine.client(EngineOp::BuildImage).await?;
    let (dockerfile, inline) = match &spec.dockerfile_inline {
        Some(text) => (INLINE_DOCKERFILE.to_string(), Some(text.clone())),
        None => (spec.dockerfile.clone(), None),
    };
    let mut options = BuildImageOptionsBuilder::new()
        .dockerfile(&dockerfile)
        .t(&spec.tag)
        .rm(true)
        .forcerm(true)
        .buildargs(&spec.args.clone().into_iter().collect())
        .labels(&spec.labels.clone().into_iter().collect());
    if let Some(t) = &spec.target {
        options = options.target(t);
    }
    if let Some(n) = &spec.network {
        options = options.networkmode(n);
    }
    if !spec.extra_hosts.is_empty() {
        let hosts: Vec<String> = spec
            .extra_hosts
            .iter()
            .map(|(h, ip)| format!("{h}:{ip}"))
            .collect();
        options = options.extrahosts(&hosts.join(","));
    }
    if let Some(size) = spec.shm_size {
        options = options.shmsize(i32::try_from(size).unwrap_or(i32::MAX));
    }
    let body = bollard::body_try_stream(tar_stream(
        spec.context_dir.clone(),
        dockerfile.clone(),
        inline,
    ));
    let tag = spec.tag.clone();
    // All of them, as `docker build` sends: base images may come from any registry.
    let (credentials, trail) = match &engine.auth {
        Some(auth) => {
            let sent = auth.all().await;
            let credentials = Some(sent.credentials).filter(|c| !c.is_empty());
            (credentials, Some(sent.trail))
        }
        None => (None, None),
    };
    // A base image the registry refused says where berth looked, as a refused pull does.
    let explain = |error: &str| match &trail {
        Some(trail) if auth::is_denied(error) => format!("{} ({trail})", error.trim()),
        _ => error.to_owned(),
    };
    let build = async {
        let mut tail: std::collections::VecDeque<String> = Default::default();
        let mut progress = docker.build_image(options.build(), credentials, Some(body));
        while let Some(item) = progress.next().await {
            let info = match item {
                Ok(i) => i,
                Err(BollardError::DockerStreamError { error }) => {
                    return Ok(Err(build_failure(&tag, &explain(&error), &tail)));
                }
                Err(e) => return Err(e),
            };
            for line in info.stream.iter().flat_map(|s| s.lines()) {
                let line = line.trim_end();
                if line.is_empty() {
                    continue;
                }
                tracing::debug!(image = %tag, "build: {line}");
                if tail.len() == BUILD_LOG_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line.to_string());
            }
            if let Some(err) = info.error_detail.and_then(|d| d.message) {
                return Ok(Err(build_failure(&tag, &explain(&err), &tail)));
            }
        }
        Ok(Ok(()))
    };
    engine
        .call(EngineOp::BuildImage, &spec.tag, spec.timeout, build)
        .await??;
    let image = engine
        .call(
            EngineOp::InspectImage,
            &spec.tag,
            engine.timeout,
            docker.inspect_image(&spec.tag),
        )
        .await?;
    image.id.ok_or_else(|| EngineError::Failed {
        op: EngineOp::InspectImage,
        target: spec.tag.clone(),
        message: "the engine returned no image ID".into(),
    })
}

pub(super) async fn tag_image(
    engine: &DockerEngine,
    image_id: &str,
    repo: &str,
    tag: &str,
) -> EngineResult<()> {
    let docker = engine.client(EngineOp::TagImage).await?;
    let options = TagImageOptionsBuilder::new().repo(repo).tag(tag).build();
    let target = format!("{image_id} as {repo}:{tag}");
    engine
        .call(
            EngineOp::TagImage,
            &target,
            engine.timeout,
            docker.tag_image(image_id, Some(options)),
        )
        .await
}

pub(super) async fn remove_image_tag(engine: &DockerEngine, reference: &str) -> EngineResult<()> {
    let docker = engine.client(EngineOp::RemoveImageTag).await?;
    let options = RemoveImageOptionsBuilder::new()
        .force(false)
        // As `docker rmi`: a deleted built image takes its untagged build parents along
        // (the engine keeps any that another image still needs).
        .noprune(false)
        .build();
    engine
        .call(
            EngineOp::RemoveImageTag,
            reference,
            engine.timeout,
            docker.remove_image(reference, Some(options), None),
        )
        .await?;
    Ok(())
}

/// `repo` → `repo:latest`, as the docker CLI does: the API pulls every tag of an untagged name.
pub(super) fn pull_reference(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if reference.contains('@') || last.contains(':') {
        reference.to_owned()
    } else {
        format!("{reference}:latest")
    }
}

/// The name a `dockerfile_inline` text has in the build's tar stream.
pub(super) const INLINE_DOCKERFILE: &str = ".berth-inline.Dockerfile";

/// A failed build: the engine's message, then the last lines of the build log.
pub(super) fn build_failure(
    tag: &str,
    error: &str,
    tail: &std::collections::VecDeque<String>,
) -> EngineError {
    let log = (!tail.is_empty()).then(|| tail.iter().cloned().collect::<Vec<_>>().join("\n"));
    EngineError::BuildFailed {
        target: tag.to_string(),
        message: error.trim().to_string(),
        log,
    }
}

/// A `Write` that hands 64 KiB chunks to an async receiver (the tar writer runs on a blocking
/// thread; the request body reads the other end), so the context is never all in memory.
pub(super) struct ChunkWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<std::io::Result<bytes::Bytes>>,
}

pub(super) const TAR_CHUNK: usize = 64 * 1024;

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(TAR_CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "build request ended"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= TAR_CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// The context as a tar stream: the files `.dockerignore` lets through (plus the Dockerfile
/// and `.dockerignore`), symlinks kept as links, and an inline Dockerfile when given.
pub(super) fn tar_stream(
    dir: std::path::PathBuf,
    dockerfile: String,
    inline: Option<String>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let err_tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let write = || -> std::io::Result<()> {
            let w = ChunkWriter {
                buf: Vec::with_capacity(TAR_CHUNK),
                tx,
            };
            let mut b = tar::Builder::new(w);
            b.follow_symlinks(false);
            b.mode(tar::HeaderMode::Deterministic);
            let always = [dockerfile.as_str(), ".dockerignore"];
            let entries =
                crate::desired::context::entries(&dir, &always).map_err(std::io::Error::other)?;
            for e in entries {
                b.append_path_with_name(dir.join(&e.rel), &e.rel)?;
            }
            if let Some(text) = inline {
                let mut h = tar::Header::new_gnu();
                h.set_size(text.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, &dockerfile, text.as_bytes())?;
            }
            let mut w = b.into_inner()?;
            std::io::Write::flush(&mut w)
        };
        if let Err(e) = write() {
            let _ = err_tx.blocking_send(Err(e));
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}
