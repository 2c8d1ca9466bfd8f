//! Secrets encrypted at rest through `rampart kms-plugin` on the real control plane: the
//! apiserver runs with the EncryptionConfiguration `rampart kube-config --encryption` printed,
//! the plugin wraps its key with moto's KMS (alias/rampart-e2e), and etcdctl reads what etcd
//! really stores.

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;

use crate::{eventually, exclusive};

const PLAINTEXT: &str = "hunter2-e2e-plaintext";

fn etcd_value(c: &crate::Cluster, name: &str) -> Vec<u8> {
    let out = Command::new("etcdctl")
        .env("PATH", &c.env["PATH"])
        .args([
            "--endpoints",
            c.var("RAMPART_E2E_ETCD"),
            "get",
            &format!("/registry/secrets/e2e-kms/{name}"),
            "--print-value-only",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "etcdctl: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn plugin_key_id(c: &crate::Cluster) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["kms", "status", "--socket"])
        .arg(c.dir.join("kms.sock"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().find_map(|l| l.strip_prefix("key_id:")).unwrap_or_default().trim().to_string()
}

fn aws(c: &crate::Cluster, args: &[&str]) -> String {
    let aws = std::path::Path::new(&c.env["RAMPART_E2E_AWS"]).to_path_buf();
    let out = Command::new(aws)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", c.var("RAMPART_E2E_MOTO"))
        .output()
        .unwrap();
    assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn create(c: &crate::Cluster, name: &str) -> crate::Out {
    c.admin().run(&[
        "create",
        "secret",
        "generic",
        name,
        "-n",
        "e2e-kms",
        &format!("--from-literal=password={PLAINTEXT}"),
    ])
}

fn read(c: &crate::Cluster, name: &str) -> String {
    let encoded =
        c.admin().run(&["get", "secret", name, "-n", "e2e-kms", "-o", "jsonpath={.data.password}"]).ok();
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded.trim()).unwrap()).unwrap()
}

#[test]
fn secrets_are_encrypted_at_rest_rotated_and_never_written_in_plaintext() {
    // Exclusive: the plugin is stopped below, which fails every Secret write.
    let (_gate, c) = exclusive();
    c.namespace("e2e-kms");
    let first_key = plugin_key_id(c);
    assert!(first_key.starts_with("arn:aws:kms:us-east-1:"), "the alias resolves to its key: {first_key}");

    create(c, "db").ok();
    let stored = etcd_value(c, "db");
    assert!(
        stored.starts_with(b"k8s:enc:kms:v2:rampart:"),
        "{}",
        String::from_utf8_lossy(&stored[..40.min(stored.len())])
    );
    assert!(!contains(&stored, PLAINTEXT), "no plaintext in etcd");
    assert!(contains(&stored, &first_key), "the key id is stored with the object");
    assert_eq!(read(c, "db"), PLAINTEXT);

    // The plugin restarted: old secrets read, new ones write.
    c.script("kms-stop");
    c.script("kms-start");
    assert_eq!(read(c, "db"), PLAINTEXT);
    create(c, "after-restart").ok();
    assert_eq!(read(c, "after-restart"), PLAINTEXT);

    // Rotation: the alias moves to a new key; the apiserver sees the new key id at its next
    // Status call (about a minute) and new writes carry it; old secrets still read.
    let new_key = aws(c, &["kms", "create-key", "--query", "KeyMetadata.Arn", "--output", "text"]);
    aws(c, &["kms", "update-alias", "--alias-name", "alias/rampart-e2e", "--target-key-id", &new_key]);
    eventually("the plugin reports the new key", Duration::from_secs(20), || {
        let id = plugin_key_id(c);
        if id == new_key { Ok(()) } else { Err(id) }
    });
    eventually("new writes carry the new key id", Duration::from_secs(120), || {
        let name = format!("rotated-{}", std::time::UNIX_EPOCH.elapsed().unwrap().as_millis());
        create(c, &name).ok();
        if contains(&etcd_value(c, &name), &new_key) {
            Ok(())
        } else {
            Err(format!("{name} still under the old key"))
        }
    });
    assert_eq!(read(c, "db"), PLAINTEXT, "old secrets still read");
    // The documented re-encryption: every Secret rewritten under the new key.
    let all = c.admin().run(&["get", "secrets", "-n", "e2e-kms", "-o", "json"]).ok();
    c.admin().stdin(&all).run(&["replace", "-f", "-"]).ok();
    for name in ["db", "after-restart"] {
        let stored = etcd_value(c, name);
        assert!(
            contains(&stored, &new_key) && !contains(&stored, &first_key),
            "{name} rewritten under the new key"
        );
    }

    // The plugin stopped: the apiserver reports its KMS provider unhealthy, and once its data
    // key may no longer be used (3 minutes after the last good Status), writes fail — nothing
    // is ever stored in plaintext.
    c.script("kms-stop");
    eventually("the apiserver's kms check fails", Duration::from_secs(120), || {
        let out = c.admin().run(&["get", "--raw", "/readyz?verbose"]);
        let text = format!("{}{}", out.stdout, out.stderr);
        if text.contains("[-]kms-providers") || text.contains("[-]kms-provider") { Ok(()) } else { Err(text) }
    });
    let refused = eventually("secret writes fail", Duration::from_secs(240), || {
        let name = format!("down-{}", std::time::UNIX_EPOCH.elapsed().unwrap().as_millis());
        let out = create(c, &name);
        if out.ok { Err(format!("{name} was written")) } else { Ok(out.stderr) }
    });
    assert!(!refused.is_empty());
    // Started again: recovered.
    c.script("kms-start");
    eventually("writes recover", Duration::from_secs(90), || {
        let name = format!("recovered-{}", std::time::UNIX_EPOCH.elapsed().unwrap().as_millis());
        let out = create(c, &name);
        if out.ok { Ok(()) } else { Err(out.stderr) }
    });
    assert_eq!(read(c, "db"), PLAINTEXT);
}
