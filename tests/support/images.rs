//! Test images built on this machine (there is no registry): Debian's static busybox on an
//! empty root, imported with the docker CLI once and reused after that.
//!
//! Include with `#[path = "support/images.rs"] mod images;`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

/// The busybox image: `/bin/busybox`, `/bin/sh`, `CMD ["/bin/busybox","sleep","3600"]`.
pub const BUSYBOX: &str = "berth-test-busybox:1";

/// Serialises builds within one test binary.
static BUILD: Mutex<()> = Mutex::new(());

/// The ID of `reference`, if the engine has it.
pub fn image_id(reference: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .expect("run docker image inspect");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The busybox image's ID, importing it first if the engine does not have it yet.
pub fn busybox() -> String {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(id) = image_id(BUSYBOX) {
        return id;
    }
    let busybox = Path::new("/bin/busybox");
    assert!(
        busybox.exists(),
        "/bin/busybox is missing: install Debian's busybox-static"
    );
    let root = tempfile::tempdir().expect("temp dir");
    let bin = root.path().join("rootfs/bin");
    std::fs::create_dir_all(&bin).expect("create rootfs/bin");
    std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
    std::os::unix::fs::symlink("busybox", bin.join("sh")).expect("link sh");
    let tar = root.path().join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(root.path().join("rootfs"))
        .arg("-cf")
        .arg(&tar)
        .arg("bin")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    let out = Command::new("docker")
        .args([
            "import",
            "--change",
            r#"CMD ["/bin/busybox","sleep","3600"]"#,
        ])
        .arg(&tar)
        .arg(BUSYBOX)
        .output()
        .expect("run docker import");
    assert!(
        out.status.success(),
        "docker import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    image_id(BUSYBOX).expect("imported image")
}
