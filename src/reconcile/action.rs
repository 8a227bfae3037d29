//! The engine calls a plan is made of: one [`Action`] = one engine call, and where a created
//! container's image comes from.
//!
//! Pure data shared by the planner (`plan`) and the rollout state machine (`rollout`), so
//! that neither imports the other's vocabulary: `plan` calls `rollout`, never the reverse.

use std::fmt;
use std::time::Duration;

use crate::engine::{ContainerCreate, NetworkCreate, VolumeCreate};

/// Where the image of a container comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// Present locally with this ID.
    Id(String),
    /// Pulled by an earlier step of this plan; the executor fills the ID in.
    Pulled(String),
}

/// One engine call.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create a network.
    CreateNetwork(NetworkCreate),
    /// Create a volume.
    CreateVolume(VolumeCreate),
    /// Pull an image by reference.
    Pull {
        /// The reference as written in the Compose file.
        reference: String,
        /// The service's `platform:` (the variant to pull); `None`: the engine's own.
        platform: Option<String>,
    },
    /// Build an image from the desired-state repository (`build:`) and tag it `reference`.
    Build {
        /// The built image's reference (`berth-build/<project>/<service>:<hash12>`).
        reference: String,
        /// What to build.
        spec: Box<crate::engine::BuildSpec>,
    },
    /// Create a container.
    Create {
        /// What to create; `spec.image` is empty until the image is known.
        spec: Box<ContainerCreate>,
        /// Where its image comes from.
        image: ImageSource,
    },
    /// Start a container (by ID, or by name when created in this plan).
    Start {
        /// ID or name.
        target: String,
        /// Name, for display.
        name: String,
    },
    /// Stop a container.
    Stop {
        /// ID.
        id: String,
        /// Name, for display.
        name: String,
        /// Time before SIGKILL.
        grace: Duration,
        /// Signal (`None` = the image's STOPSIGNAL or SIGTERM).
        signal: Option<String>,
    },
    /// Remove a stopped container (never its volumes).
    Remove {
        /// ID.
        id: String,
        /// Name, for display.
        name: String,
    },
    /// Rename a container (a kept old one out of the way, a candidate into its name).
    Rename {
        /// ID.
        id: String,
        /// Current name, for display.
        name: String,
        /// New name.
        to: String,
    },
    /// Connect a container to a network its spec asks for and it lacks (a create cut short).
    Connect {
        /// ID.
        id: String,
        /// Name, for display.
        name: String,
        /// The network, with its aliases.
        attach: crate::engine::NetworkAttach,
    },
    /// Tag an image ID so that nothing prunes it (a revision's pin).
    Pin {
        /// Image ID.
        image_id: String,
        /// Repository of the tag.
        repo: String,
        /// Tag.
        tag: String,
    },
    /// Remove a pin tag (never the image while something else references it).
    Unpin {
        /// `repo:tag`.
        reference: String,
    },
    /// Remove a network berth created (`--prune`, once its project's containers are gone).
    RemoveNetwork {
        /// Name.
        name: String,
    },
    /// Remove a volume berth created, with its data (`berth prune --volumes`, once its
    /// project's containers are gone).
    RemoveVolume {
        /// Name.
        name: String,
    },
    /// Port handoff: the listeners of one service in berth's proxy routes file
    /// (`DATA_DIR/proxy/routes.json`) become `listeners` — who receives its traffic. Not an
    /// engine call: the executor writes the file (temp, fsync, rename); the proxy follows it.
    Route {
        /// Project.
        project: String,
        /// Service.
        service: String,
        /// Its listeners (one per handed-off port; none: the service no longer hands off).
        listeners: Vec<crate::proxy::routes::Listener>,
    },
    /// Remove a built image's tag (`berth-build/...`) that no revision in the history uses
    /// any more; the image goes with it unless something else still references it.
    RemoveImage {
        /// `repo:tag`.
        reference: String,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateNetwork(n) => write!(f, "create network {}", n.name),
            Action::CreateVolume(v) => write!(f, "create volume {}", v.name),
            Action::Pull {
                reference,
                platform: None,
            } => write!(f, "pull {reference}"),
            Action::Pull {
                reference,
                platform: Some(p),
            } => write!(f, "pull {reference} ({p})"),
            Action::Build { reference, .. } => write!(f, "build {reference}"),
            Action::Create { spec, .. } => write!(f, "create {}", spec.name),
            Action::Start { name, .. } => write!(f, "start {name}"),
            Action::Stop { name, .. } => write!(f, "stop {name}"),
            Action::Remove { name, .. } => write!(f, "remove {name}"),
            Action::Rename { name, to, .. } => write!(f, "rename {name} -> {to}"),
            Action::Connect { name, attach, .. } => {
                write!(f, "connect {name} to {}", attach.network)
            }
            Action::Pin {
                image_id,
                repo,
                tag,
            } => write!(
                f,
                "pin {} as {repo}:{tag}",
                short(image_id.trim_start_matches("sha256:"))
            ),
            Action::Unpin { reference } => write!(f, "unpin {reference}"),
            Action::RemoveImage { reference } => write!(f, "remove image {reference}"),
            Action::RemoveNetwork { name } => write!(f, "remove network {name}"),
            Action::RemoveVolume { name } => write!(f, "remove volume {name}"),
            Action::Route {
                project,
                service,
                listeners,
            } => {
                let ports: Vec<String> = listeners
                    .iter()
                    .map(|l| l.bind.port().to_string())
                    .collect();
                let backends: Vec<&str> = listeners
                    .first()
                    .map(|l| l.backends.iter().map(|b| b.name.as_str()).collect())
                    .unwrap_or_default();
                if listeners.is_empty() {
                    write!(f, "route {project}/{service}: release its ports")
                } else if backends.is_empty() {
                    write!(
                        f,
                        "route {project}/{service}:{} -> (no replica)",
                        ports.join(",")
                    )
                } else {
                    write!(
                        f,
                        "route {project}/{service}:{} -> {}",
                        ports.join(","),
                        backends.join(", ")
                    )
                }
            }
        }
    }
}

pub use crate::util::id::short;
