//! The container image without a container engine: `scripts/image.sh` assembles the image's
//! filesystem (deploy/image/rootfs.sh, what the Containerfile's final stage holds) FROM scratch
//! into an OCI image layout with umoci; the image is unpacked again and `rampart serve` runs
//! from that root alone (chroot, as the image's non-root user), answering `/healthz` over TLS.
//! Needs root (chroot) and umoci, which scripts/test.sh installs; fails, never skips, without.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_image_filesystem_is_enough_to_serve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("image");
    let built = Command::new(root.join("scripts/image.sh"))
        .arg(env!("CARGO_BIN_EXE_rampart"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(built.status.success(), "scripts/image.sh: {}", String::from_utf8_lossy(&built.stderr));
    let reference = String::from_utf8_lossy(&built.stdout).trim().to_owned();

    // Unpack what the layout holds (not what was copied in), as a runtime would.
    let bundle = dir.path().join("bundle");
    let unpacked =
        Command::new("umoci").args(["unpack", "--image", &reference]).arg(&bundle).output().unwrap();
    assert!(unpacked.status.success(), "umoci unpack: {}", String::from_utf8_lossy(&unpacked.stderr));
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["user"]["uid"], 65532, "the image runs as a non-root user");
    assert_eq!(config["process"]["args"][0], "/rampart");
    let rootfs = bundle.join("rootfs");
    for absent in ["bin/sh", "usr/bin", "sbin"] {
        assert!(!rootfs.join(absent).exists(), "{absent} must not be in the image");
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut serve = Command::new("chroot")
        .arg("--userspec=65532:65532")
        .arg(&rootfs)
        .args(["/rampart", "serve", "--listen", &format!("127.0.0.1:{port}"), "--cert-dir", "/tmp/certs"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chroot runs (the test needs root)");
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let out = Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(rootfs.join("tmp/certs/ca.crt"))
            .arg(format!("https://localhost:{port}/healthz"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text == "ok" || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = serve.kill();
    let output = serve.wait_with_output().unwrap();
    assert_eq!(
        answer,
        "ok",
        "rampart serve from the image root: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
