//! Scenario 14: certificate rotation behind the real apiserver. While kubectl keeps making
//! requests that the apiserver sends to Rampart (authorization and admission), the serving
//! certificate in Rampart's certificate directory is replaced by a new one from the same CA —
//! what cert-manager or a Secret volume update does. Rampart serves the new certificate within
//! seconds, without a restart, and no request fails.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::{Cluster, exclusive};

/// SHA-256 fingerprint of the certificate Rampart serves now.
fn served_fingerprint(c: &Cluster) -> String {
    let address = c.var("RAMPART_E2E_RAMPART").trim_start_matches("https://").to_owned();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {address} -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A new serving key and certificate for loopback, signed by Rampart's CA, swapped in.
fn rotate(c: &Cluster) {
    let certs = c.dir.join("rampart-certs");
    let work = tempfile::tempdir().unwrap();
    let (key, csr, crt, ext) =
        (work.path().join("k"), work.path().join("csr"), work.path().join("crt"), work.path().join("ext"));
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n").unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let p = |path: &std::path::Path| path.to_str().unwrap().to_owned();
    run(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &p(&key)]);
    run(&["req", "-new", "-key", &p(&key), "-subj", "/CN=rampart-rotated", "-out", &p(&csr)]);
    run(&[
        "x509",
        "-req",
        "-in",
        &p(&csr),
        "-CA",
        &p(&certs.join("ca.crt")),
        "-CAkey",
        &p(&certs.join("ca.key")),
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        &p(&ext),
        "-out",
        &p(&crt),
    ]);
    // Replace each file atomically (rename), as a Secret volume's symlink swap does.
    for (from, to) in [(&key, "rampart.key"), (&crt, "rampart.crt")] {
        let staged = certs.join(format!(".{to}.new"));
        std::fs::copy(from, &staged).unwrap();
        std::fs::rename(&staged, certs.join(to)).unwrap();
    }
}

#[test]
fn the_serving_certificate_rotates_under_load_without_a_failed_request() {
    let (_gate, c) = exclusive();
    let before = served_fingerprint(c);
    assert!(before.contains("Fingerprint"), "cannot read the served certificate: {before:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(std::sync::Mutex::new(Vec::new())));
    std::thread::scope(|scope| {
        let load = scope.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // Authorization (sample-user goes through Rampart's authorizer) and admission
                // (each ConfigMap create goes through Rampart's validating webhook; the demo's
                // policy requires the owner label).
                let read = c.user("sample-user").run(&["get", "configmaps", "-n", "default", "-l", "owner=sample-user"]);
                let own = format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: rotation-{i}, namespace: default, labels: {{owner: sample-user}}}}\n"
                );
                let write = c.user("sample-user").stdin(&own).run(&["create", "-f", "-"]);
                for out in [read, write] {
                    if out.ok {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.lock().unwrap().push(out.stderr);
                    }
                }
            }
        });
        std::thread::sleep(Duration::from_secs(2));
        rotate(c);
        let after = crate::eventually("Rampart serves the new certificate", Duration::from_secs(20), || {
            let now = served_fingerprint(c);
            if now != before && now.contains("Fingerprint") { Ok(now) } else { Err(now) }
        });
        assert_ne!(after, before);
        // Keep the load on a little longer, now against the new certificate.
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::Relaxed);
        load.join().unwrap();
    });
    let failed = failed.lock().unwrap();
    assert!(failed.is_empty(), "requests failed during the rotation:\n{}", failed.join("\n"));
    assert!(done.load(Ordering::Relaxed) >= 10, "the load made too few requests to mean anything");
}
