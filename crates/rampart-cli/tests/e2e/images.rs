//! Image signatures through the real apiserver: an image pushed to the control plane's loopback
//! registry with crane and signed by cosign comes back from `kubectl run` pinned to its digest;
//! an unsigned one is refused with the message kubectl prints; a Deployment's template is
//! pinned too. The ImagePolicy and key are set up by scripts/cluster.sh (`images`).

use std::process::Command;

use crate::shared;

/// Run a signing peer (crane, cosign) from the cluster's bin directory.
fn peer(c: &crate::Cluster, args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .env("PATH", &c.env["PATH"])
        .env("COSIGN_PASSWORD", "")
        .current_dir(&c.dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Push a one-file image; returns its digest.
fn push(c: &crate::Cluster, reference: &str, content: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("content.txt"), content).unwrap();
    let layer = dir.path().join("layer.tar");
    let tar = Command::new("tar")
        .arg("cf")
        .arg(&layer)
        .arg("-C")
        .arg(dir.path())
        .arg("content.txt")
        .status()
        .unwrap();
    assert!(tar.success());
    let pushed = peer(c, &["crane", "append", "--insecure", "-f", layer.to_str().unwrap(), "-t", reference]);
    pushed.rsplit_once('@').unwrap().1.to_string()
}

#[test]
fn kubectl_run_pins_signed_images_and_refuses_unsigned_ones() {
    let (_gate, c) = shared();
    c.namespace("e2e-images");
    let registry = c.var("RAMPART_E2E_REGISTRY").to_string();
    let key = c.dir.join("signing/cosign.key").display().to_string();

    let signed = format!("{registry}/signed/app:v1");
    let digest = push(c, &signed, "signed");
    peer(
        c,
        &["cosign", "sign", "--key", &key, "--tlog-upload=false", "--allow-insecure-registry", "-y", &signed],
    );
    c.admin().run(&["run", "signed", "-n", "e2e-images", &format!("--image={signed}")]).ok();
    let image = c
        .admin()
        .run(&["get", "pod", "signed", "-n", "e2e-images", "-o", "jsonpath={.spec.containers[0].image}"])
        .ok();
    assert_eq!(image, format!("{registry}/signed/app@{digest}"), "the tag is pinned to the verified digest");

    // Unsigned: refused, and kubectl prints why.
    let unsigned = format!("{registry}/signed/unsigned:v1");
    let unsigned_digest = push(c, &unsigned, "unsigned");
    let message =
        c.admin().run(&["run", "unsigned", "-n", "e2e-images", &format!("--image={unsigned}")]).fails();
    assert!(
        message.contains("admission webhook \"images.rampart.dev\" denied the request")
            && message.contains(&format!(
                "image \"{unsigned}\" ({unsigned_digest}): policy \"e2e-signed\": no cosign signature"
            )),
        "{message}"
    );

    // A Deployment's pod template is verified and pinned too.
    c.admin().run(&["create", "deployment", "web", "-n", "e2e-images", &format!("--image={signed}")]).ok();
    let template = c
        .admin()
        .run(&[
            "get",
            "deployment",
            "web",
            "-n",
            "e2e-images",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .ok();
    assert_eq!(template, format!("{registry}/signed/app@{digest}"));

    // An ImagePolicy object applied to the cluster takes effect without a restart: its key
    // (inline) did not sign this image, so the pod is refused.
    let other = format!("{registry}/cluster-signed/app:v1");
    push(c, &other, "cluster-signed");
    peer(
        c,
        &["cosign", "sign", "--key", &key, "--tlog-upload=false", "--allow-insecure-registry", "-y", &other],
    );
    c.admin().run(&["run", "before", "-n", "e2e-images", &format!("--image={other}")]).ok();
    let foreign = tempfile::tempdir().unwrap();
    let generated = Command::new("cosign")
        .args(["generate-key-pair"])
        .env("PATH", &c.env["PATH"])
        .env("COSIGN_PASSWORD", "")
        .current_dir(foreign.path())
        .output()
        .unwrap();
    assert!(generated.status.success());
    let pem = std::fs::read_to_string(foreign.path().join("cosign.pub")).unwrap();
    let indented: String = pem.lines().map(|l| format!("          {l}\n")).collect();
    c.apply(&format!(
        "apiVersion: rampart.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {{name: e2e-cluster}}\nspec:\n  images: [\"{registry}/cluster-signed/*\"]\n  authorities:\n    - name: foreign\n      key:\n        pem: |\n{indented}"
    ));
    let message =
        crate::eventually("the ImagePolicy object applies", std::time::Duration::from_secs(30), || {
            let name = format!("after-{}", std::time::UNIX_EPOCH.elapsed().unwrap().as_millis());
            let out = c.admin().run(&["run", &name, "-n", "e2e-images", &format!("--image={other}")]);
            if out.ok { Err(format!("{name} admitted")) } else { Ok(out.stderr) }
        });
    assert!(message.contains("policy \"e2e-cluster\": no signature from a trusted authority"), "{message}");
    // The same object with the right key, read from a Secret: admitted again.
    let public = std::fs::read_to_string(c.dir.join("signing/cosign.pub")).unwrap();
    c.admin()
        .stdin(&public)
        .run(&[
            "create",
            "secret",
            "generic",
            "release-key",
            "-n",
            "e2e-images",
            "--from-file=cosign.pub=/dev/stdin",
        ])
        .ok();
    c.apply(&format!(
        "apiVersion: rampart.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {{name: e2e-cluster}}\nspec:\n  images: [\"{registry}/cluster-signed/*\"]\n  authorities:\n    - name: release\n      key: {{secret: {{namespace: e2e-images, name: release-key, key: cosign.pub}}}}\n"
    ));
    crate::eventually("the Secret-held key applies", std::time::Duration::from_secs(30), || {
        let name = format!("secret-{}", std::time::UNIX_EPOCH.elapsed().unwrap().as_millis());
        let out = c.admin().run(&["run", &name, "-n", "e2e-images", &format!("--image={other}")]);
        if out.ok { Ok(()) } else { Err(out.stderr) }
    });
    c.admin().run(&["delete", "imagepolicy", "e2e-cluster"]).ok();

    // Images no ImagePolicy covers are left alone.
    c.admin().run(&["run", "other", "-n", "e2e-images", "--image=registry.k8s.io/pause:3.10"]).ok();
    let image = c
        .admin()
        .run(&["get", "pod", "other", "-n", "e2e-images", "-o", "jsonpath={.spec.containers[0].image}"])
        .ok();
    assert_eq!(image, "registry.k8s.io/pause:3.10");
}

/// The pull secrets the webhook reads for a pod: a `kubernetes.io/dockerconfigjson` Secret made
/// by `kubectl create secret docker-registry`, read through the apiserver as Rampart reads it.
#[test]
fn image_pull_secrets_are_read_from_the_cluster() {
    use rampart_server::images::PullSecrets as _;
    let (_gate, c) = shared();
    c.namespace("e2e-pull");
    c.admin()
        .run(&[
            "create",
            "secret",
            "docker-registry",
            "regcred",
            "-n",
            "e2e-pull",
            "--docker-server=registry.example.com",
            "--docker-username=ci",
            "--docker-password=s3cret",
        ])
        .ok();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let credentials = runtime.block_on(async {
        let client = rampart_kube::client(Some(&c.dir.join("users/admin.kubeconfig"))).await.unwrap();
        let secrets = rampart_kube::lookups::KubeSecrets(client);
        let found = secrets.credentials("e2e-pull", &["regcred".to_string()]).await.unwrap();
        let missing = secrets.credentials("e2e-pull", &["absent".to_string()]).await.unwrap_err();
        assert!(missing.contains("e2e-pull/absent does not exist"), "{missing}");
        found
    });
    assert_eq!(
        credentials.auth_for("registry.example.com"),
        rampart_images::registry::RegistryAuth::Basic("ci".into(), "s3cret".into())
    );
}
