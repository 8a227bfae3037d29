//! One round of update checks: for every service with `x-berth.update`, ask its registry
//! what is there and decide, per service, what is pending, skipped or up to date.
//!
//! IO through [`registry::Client`] only; the decisions are `choose`'s. Services that share a
//! repository share its tag list: one tag-list request per repository per round, however
//! many services use it (and one manifest `HEAD` per repository and tag under `digest`).

use std::collections::{BTreeMap, BTreeSet};

use super::choose::{self, Choice, Skip};
use super::registry::{Client, Repository};
use super::spec::{Policy, UpdateSpec};
use crate::desired::syntax::image_ref::{ImageRef, parse_image_ref};
use crate::store::{Outcome, ServiceRecord};

/// One service to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// Project name.
    pub project: String,
    /// Service name.
    pub service: String,
    /// The image as the desired state has it (interpolated).
    pub image: String,
    /// Its update policy.
    pub spec: UpdateSpec,
    /// The digest the running image was pulled by, when known (`digest` policy).
    pub running_digest: Option<String>,
    /// Versions (tags, or digests under `digest`) never to propose again.
    pub quarantined: BTreeSet<String>,
}

/// What a check found for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Nothing newer fits the policy.
    UpToDate,
    /// A newer image fits and may be applied now.
    Pending(Update),
    /// A newer image fits but waits (window, minimum age).
    Skipped(Update, Skip),
    /// The registry could not be asked (the error with its causes, for people).
    Failed(String),
}

impl Finding {
    /// Stable label for metrics and events.
    pub fn label(&self) -> &'static str {
        match self {
            Finding::UpToDate => "up_to_date",
            Finding::Pending(_) => "pending",
            Finding::Skipped(..) => "skipped",
            Finding::Failed(_) => "failed",
        }
    }
}

/// A proposed change of one service's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The image now.
    pub from: String,
    /// The image to write.
    pub to: String,
    /// The version moved to: the new tag, or the new digest under `digest`.
    pub version: String,
}

/// Checks every target, one tag list per repository; findings in the targets' order.
pub async fn check(client: &Client, targets: &[Target], now_unix: u64) -> Vec<Finding> {
    let parsed: Vec<Option<(ImageRef, Repository)>> = targets
        .iter()
        .map(|t| {
            parse_image_ref(&t.image)
                .ok()
                .map(|r| (r.clone(), Repository::of(&r)))
        })
        .collect();
    // One tag list per repository that a tag-moving policy needs.
    let mut tag_lists: BTreeMap<Repository, Result<Vec<String>, String>> = BTreeMap::new();
    for (t, p) in targets.iter().zip(&parsed) {
        if let Some((_, repo)) = p
            && !matches!(t.spec.policy, Policy::Digest)
            && !tag_lists.contains_key(repo)
        {
            let tags = client
                .tags(repo)
                .await
                .map_err(|e| crate::errors::chain(&e));
            tag_lists.insert(repo.clone(), tags);
        }
    }
    // One manifest HEAD per repository and tag under `digest`.
    let mut digests: BTreeMap<(Repository, String), Result<String, String>> = BTreeMap::new();
    let mut findings = Vec::with_capacity(targets.len());
    for (t, p) in targets.iter().zip(&parsed) {
        let Some((image, repo)) = p else {
            findings.push(Finding::Failed(format!(
                "the image {:?} is not a reference berth can check",
                t.image
            )));
            continue;
        };
        let tag = image.tag.clone().unwrap_or_else(|| "latest".into());
        let update = match &t.spec.policy {
            Policy::Digest => {
                let key = (repo.clone(), tag.clone());
                if !digests.contains_key(&key) {
                    let d = client
                        .digest(repo, &tag)
                        .await
                        .map_err(|e| crate::errors::chain(&e));
                    digests.insert(key.clone(), d);
                }
                match &digests[&key] {
                    Err(e) => {
                        findings.push(Finding::Failed(e.clone()));
                        continue;
                    }
                    Ok(remote) => {
                        let current = image.digest.as_deref().or(t.running_digest.as_deref());
                        if !choose::digest_moved(current, remote, &t.quarantined) {
                            findings.push(Finding::UpToDate);
                            continue;
                        }
                        let to = ImageRef {
                            digest: Some(remote.clone()),
                            ..image.clone()
                        };
                        Update {
                            from: t.image.clone(),
                            to: to.to_string(),
                            version: remote.clone(),
                        }
                    }
                }
            }
            policy => match &tag_lists[repo] {
                Err(e) => {
                    findings.push(Finding::Failed(e.clone()));
                    continue;
                }
                Ok(tags) => match choose::choose(policy, &tag, tags, &t.quarantined) {
                    Choice::UpToDate => {
                        findings.push(Finding::UpToDate);
                        continue;
                    }
                    Choice::Tag(new) => {
                        let to = ImageRef {
                            tag: Some(new.clone()),
                            digest: None,
                            ..image.clone()
                        };
                        Update {
                            from: t.image.clone(),
                            to: to.to_string(),
                            version: new,
                        }
                    }
                },
            },
        };
        // The image's age is asked only when a minimum age is set (it costs requests).
        let created = match t.spec.min_age {
            Some(_) => match client.manifest(repo, &update.version).await {
                Ok(m) => m.created,
                Err(e) => {
                    findings.push(Finding::Failed(crate::errors::chain(&e)));
                    continue;
                }
            },
            None => None,
        };
        findings.push(match choose::admit(&t.spec, now_unix, created) {
            Ok(()) => Finding::Pending(update),
            Err(skip) => Finding::Skipped(update, skip),
        });
    }
    findings
}

/// The versions of `image`'s repository whose rollouts failed in `record`: tags, and the
/// digests of digest-pinned references (what `choose` must never propose again).
pub fn failed_versions(record: &ServiceRecord, image: &str) -> BTreeSet<String> {
    let Ok(want) = parse_image_ref(image) else {
        return BTreeSet::new();
    };
    record
        .revisions
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed | Outcome::Reverted))
        .filter_map(|r| parse_image_ref(&r.image_ref).ok())
        .filter(|r| r.domain == want.domain && r.path == want.path)
        .flat_map(|r| r.digest.into_iter().chain(r.tag))
        .collect()
}

/// The digest the engine pulled `image` by (its `repo@sha256:…` reference), from the
/// engine's image list.
pub fn running_digest(image: &str, images: &[crate::engine::ImageSummary]) -> Option<String> {
    let parsed = parse_image_ref(image).ok()?;
    let tagged = if parsed.tag.is_some() {
        image.to_string()
    } else {
        format!("{image}:latest")
    };
    let repo = ImageRef {
        tag: None,
        digest: None,
        ..parsed
    }
    .to_string();
    images
        .iter()
        .find(|i| i.tags.contains(&tagged))?
        .digests
        .iter()
        .find_map(|d| d.strip_prefix(&format!("{repo}@")).map(str::to_string))
}

/// The services of `state` with an update policy, as check targets: with the versions that
/// failed in their records (never proposed again) and the digest their running image was
/// pulled by (from the engine's `images`, when given).
pub fn targets(
    state: &crate::desired::DesiredState,
    records: &crate::store::Records,
    images: &[crate::engine::ImageSummary],
) -> Vec<Target> {
    let mut out = Vec::new();
    for (project, p) in &state.projects {
        for (service, s) in &p.services {
            let (Some(spec), Some(image)) = (&s.berth.update, &s.image) else {
                continue;
            };
            let quarantined = records
                .get(&(project.clone(), service.clone()))
                .map(|r| failed_versions(r, image))
                .unwrap_or_default();
            out.push(Target {
                project: project.clone(),
                service: service.clone(),
                image: image.clone(),
                spec: spec.clone(),
                running_digest: running_digest(image, images),
                quarantined,
            });
        }
    }
    out
}
