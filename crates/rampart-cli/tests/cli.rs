//! The `rampart` binary as users run it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::process::{Command, Output};

fn rampart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rampart")).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies/demo");

#[test]
fn demo_runs_the_talk_and_checks_itself() {
    let out = rampart(&["demo", "-o", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let decisions: Vec<&str> =
        rows.as_array().unwrap().iter().map(|r| r["decision"].as_str().unwrap()).collect();
    assert_eq!(decisions, ["Deny", "Denied", "Denied", "Allow", "Allowed", "Allow"]);
    assert!(rows.as_array().unwrap().iter().all(|r| r["as_expected"] == true));
}

#[test]
fn check_from_flags_explains_the_decision() {
    let out = rampart(&[
        "check",
        "-p",
        DEMO,
        "--user",
        "sample-user",
        "-g",
        "requires-labels",
        "--verb",
        "list",
        "--resource",
        "configmaps",
        "-n",
        "default",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "a denial exits 1, as can-i");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["decision"], "Deny");
    assert_eq!(r["diagnostic"]["reasons"][0]["policy"], "label-enforcement-policy1");
    assert_eq!(r["diagnostic"]["reasons"][0]["position"]["line"], 21);
}

/// An RBAC tier's decision is explained in the table as in JSON, and allowed exits 0.
#[test]
fn check_shows_the_rbac_reason_and_exits_like_can_i() {
    let rbac = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/who-can-rbac.yaml");
    let args =
        ["check", "--rbac", rbac, "--user", "bob", "-g", "devs", "--verb", "get", "--resource", "secrets"];
    let allowed = rampart(&[&args[..], &["-n", "default"]].concat());
    assert_eq!(allowed.status.code(), Some(0));
    assert!(
        stdout(&allowed).contains("RBAC: allowed by RoleBinding \"devs-secrets/default\""),
        "{}",
        stdout(&allowed)
    );
    let elsewhere = rampart(&[&args[..], &["-n", "prod"]].concat());
    assert_eq!(elsewhere.status.code(), Some(1), "nothing allows it: exit 1");
}

#[test]
fn check_reads_review_files() {
    let dir = tempfile::tempdir().unwrap();
    let review = dir.path().join("review.yaml");
    std::fs::write(&review, "apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\nrequest:\n  uid: u\n  kind: {group: '', version: v1, kind: ConfigMap}\n  resource: {group: '', version: v1, resource: configmaps}\n  name: c\n  namespace: default\n  operation: CREATE\n  userInfo: {username: sample-user, groups: [requires-labels]}\n  object: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n").unwrap();
    let out = rampart(&["check", "-p", DEMO, review.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["decision"], "Denied");
}

#[test]
fn validate_reports_file_line_and_column_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.cedar"), "permit(principal, action, resource);").unwrap();
    std::fs::write(
        dir.path().join("bad.cedar"),
        "permit(principal, action, resource);\n\nforbid(principal, acton, resource);",
    )
    .unwrap();
    let out = rampart(&["validate", "-p", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("bad.cedar:3:"), "{text}");
    std::fs::remove_file(dir.path().join("bad.cedar")).unwrap();
    let out = rampart(&["validate", "-p", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn kube_config_prints_four_documents_with_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let out = rampart(&["kube-config", "--target", "self-managed", "--cert-dir", certs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["AuthorizationConfiguration", "Config", "ValidatingWebhookConfiguration", "ClusterConfiguration"]
    );
    assert!(certs.join("rampart.crt").exists());
    assert_eq!(docs[1]["clusters"][0]["cluster"]["server"], "https://127.0.0.1:10288/v1/authorize");
    assert!(!docs[2]["webhooks"][0]["clientConfig"]["caBundle"].as_str().unwrap().is_empty());
}

#[test]
fn kube_config_certificate_names_the_url_host_and_is_signed_by_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let out = rampart(&[
        "kube-config",
        "--url",
        "https://10.0.0.5:10288",
        "--tls-san",
        "rampart.example.com",
        "--cert-dir",
        certs.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = |args: &[&str]| {
        let o = Command::new("openssl").args(args).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let leaf = text(&["x509", "-noout", "-text", "-in", certs.join("rampart.crt").to_str().unwrap()]);
    assert!(leaf.contains("IP Address:10.0.0.5") && leaf.contains("DNS:rampart.example.com"), "{leaf}");
    assert!(
        leaf.contains("Subject: CN=rampart, O=Rampart")
            || leaf.contains("Subject: CN = rampart, O = Rampart"),
        "{leaf}"
    );
    let ca = text(&["x509", "-noout", "-text", "-in", certs.join("ca.crt").to_str().unwrap()]);
    assert!(ca.contains("CA:TRUE"), "{ca}");
    let verify = text(&[
        "verify",
        "-CAfile",
        certs.join("ca.crt").to_str().unwrap(),
        certs.join("rampart.crt").to_str().unwrap(),
    ]);
    assert!(verify.contains("OK"), "{verify}");
    // The caBundle is the CA, not the serving certificate.
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&stdout(&out))
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let bundle = docs[2]["webhooks"][0]["clientConfig"]["caBundle"].as_str().unwrap();
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD.decode(bundle).unwrap();
    assert_eq!(pem, std::fs::read(certs.join("ca.crt")).unwrap());
}

/// The chart's certificate without cert-manager: a Secret for the Service's names, and a CA
/// bundle that stays the same when the certificate is made again.
#[test]
fn certificate_prints_the_secret_and_a_stable_ca_bundle() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let args =
        ["certificate", "--service", "rampart", "-n", "security", "--cert-dir", certs.to_str().unwrap()];
    let secret_out = rampart(&[&args[..], &["--secret"]].concat());
    assert!(secret_out.status.success(), "{}", String::from_utf8_lossy(&secret_out.stderr));
    let secret: serde_yaml::Value = serde_yaml::from_str(&stdout(&secret_out)).unwrap();
    assert_eq!(secret["metadata"]["name"].as_str(), Some("rampart-tls"));
    assert_eq!(secret["metadata"]["namespace"].as_str(), Some("security"));
    assert_eq!(secret["type"].as_str(), Some("kubernetes.io/tls"));
    let field = |k: &str| {
        base64::engine::general_purpose::STANDARD.decode(secret["data"][k].as_str().unwrap()).unwrap()
    };
    assert_eq!(field("tls.crt"), std::fs::read(certs.join("rampart.crt")).unwrap());
    assert!(String::from_utf8(field("tls.key")).unwrap().contains("PRIVATE KEY"));
    let leaf = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            certs.join("rampart.crt").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&leaf.stdout).contains("DNS:rampart.security.svc"));
    let bundle = |extra: &str| stdout(&rampart(&[&args[..], &[extra]].concat())).trim().to_owned();
    let first = bundle("--ca-bundle");
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(&first).unwrap(), field("ca.crt"));
    assert_eq!(
        bundle("--ca-bundle"),
        first,
        "the CA is kept: the bundle in the webhook configurations stays valid"
    );
}

#[test]
fn kube_config_refuses_http_unknown_versions_and_an_unnamed_certificate_directory() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let out =
        rampart(&["kube-config", "--url", "http://10.0.0.5:10288", "--cert-dir", certs.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("https"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = rampart(&[
        "kube-config",
        "--authorization-config-version",
        "v2",
        "--cert-dir",
        certs.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    // Nothing is written to the working directory unasked.
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .arg("kube-config")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--cert-dir"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn kube_config_keeps_the_control_plane_out_of_the_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("wiring");
    let out = rampart(&[
        "kube-config",
        "--target",
        "apiserver",
        "--cluster-id",
        "c1",
        "--workload-identity",
        "--cert-dir",
        dir.path().join("certs").to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = |f: &str| std::fs::read_to_string(out_dir.join(f)).unwrap();
    let authz = read("authorization-config.yaml");
    for who in ["system:kube-scheduler", "system:kube-controller-manager", "system:masters", "system:nodes"] {
        assert!(authz.contains(who), "{who} missing from the authorization matchConditions:\n{authz}");
    }
    let admission = read("validating-webhook.yaml");
    for needle in
        ["coordination.k8s.io", "events", "kube-node-lease", "authentication.k8s.io", "system:masters"]
    {
        assert!(admission.contains(needle), "{needle} missing:\n{admission}");
    }
    let flags = read("kube-apiserver.flags");
    assert!(flags.contains(&format!(
        "--authorization-config={}",
        out_dir.join("authorization-config.yaml").display()
    )));
    assert!(flags.contains("--authentication-token-webhook-version=v1"));
    for f in [
        "authorization-webhook.yaml",
        "authentication-webhook.yaml",
        "kubectl.kubeconfig",
        "mutating-webhook.yaml",
    ] {
        assert!(out_dir.join(f).exists(), "{f}");
    }
}

#[test]
fn kube_config_workload_identity_adds_the_mutating_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let out = rampart(&["kube-config", "--workload-identity", "--cert-dir", certs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    let last: serde_yaml::Value = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .last()
        .unwrap();
    assert_eq!(last["kind"], "MutatingWebhookConfiguration");
    assert_eq!(last["webhooks"][0]["clientConfig"]["url"], "https://127.0.0.1:10288/v1/mutate");
    assert_eq!(last["webhooks"][0]["failurePolicy"], "Ignore");
    let opt_out = &last["webhooks"][0]["objectSelector"]["matchExpressions"][0];
    assert_eq!(opt_out["key"], "eks.amazonaws.com/skip-pod-identity-webhook");
    assert_eq!(opt_out["operator"], "DoesNotExist");
}

#[test]
fn serve_refuses_bad_identity_sources_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let sa = dir.path().join("sa.yaml");
    std::fs::write(&sa, "kind: ServiceAccount\nmetadata: {namespace: x}\n").unwrap();
    let out = rampart(&[
        "serve",
        "-p",
        DEMO,
        "--insecure-http",
        "--listen",
        "127.0.0.1:0",
        "--no-watch",
        "--service-accounts",
        sa.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sa.yaml: document 1: metadata.name is required"), "{err}");
}

#[test]
fn serve_refuses_plain_http_off_loopback() {
    let out = rampart(&["serve", "-p", DEMO, "--insecure-http", "--listen", "0.0.0.0:0", "--no-watch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only allowed on a loopback"));
}

#[test]
fn serve_refuses_bad_policies_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.cedar"), "permit(principal, action, resource)").unwrap();
    let out = rampart(&["serve", "-p", dir.path().to_str().unwrap(), "--no-watch"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("x.cedar:1:"), "{err}");
}

#[test]
fn help_reads_like_a_man_page() {
    let text = stdout(&rampart(&["--help"]));
    for needle in ["EXAMPLES:", "rampart demo", "serve", "check", "validate", "kube-config", "schema"] {
        assert!(text.contains(needle), "missing {needle}");
    }
    assert!(stdout(&rampart(&["schema"])).contains("namespace k8s {"));
}

#[test]
fn shipped_examples_validate_strictly() {
    let basic = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/policies/basic");
    for tier in ["basic", "demo", "guardrails", "images"] {
        let dir = format!("{}/../../examples/policies/{tier}", env!("CARGO_MANIFEST_DIR"));
        let out = rampart(&["validate", "-p", &dir, "--validation", "enforce"]);
        assert!(out.status.success(), "examples/policies/{tier}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Every Cedar block of the README, too.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    // Unified policies are checked against the unified schema by rampart-unified's tests.
    let blocks: Vec<&str> = readme
        .split("```cedar\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or_default())
        .filter(|block| !block.contains("k8s::unified::"))
        .collect();
    assert!(blocks.len() >= 3, "the README's Cedar examples were found");
    let dir = tempfile::tempdir().unwrap();
    for (i, block) in blocks.iter().enumerate() {
        std::fs::write(dir.path().join(format!("readme-block-{i}.cedar")), block).unwrap();
    }
    let out = rampart(&["validate", "-p", dir.path().to_str().unwrap(), "--validation", "enforce"]);
    assert!(out.status.success(), "README Cedar blocks: {}", String::from_utf8_lossy(&out.stderr));
    // The audit-mode forbid reports but never enforces.
    let out = rampart(&[
        "check",
        "-p",
        basic,
        "--user",
        "alice",
        "-g",
        "dev",
        "--verb",
        "create",
        "--resource",
        "pods/exec",
        "-n",
        "default",
        "--name",
        "web",
        "-o",
        "json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["decision"], "NoOpinion");
    assert!(r["would_deny"][0].as_str().unwrap().starts_with("authorization.cedar.policy3"), "{r}");
}

#[test]
fn check_manifests_reports_table_json_sarif_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      hostPID: true\n      containers: [{name: app, image: nginx}]\n").unwrap();
    let out = rampart(&["check-manifests", bad.to_str().unwrap(), "--level", "baseline"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("host namespaces"), "{}", stdout(&out));
    let out = rampart(&["check-manifests", bad.to_str().unwrap(), "--level", "baseline", "-o", "sarif"]);
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "pss/hostNamespaces");
    // The line of the offending field, not of the document.
    assert_eq!(result["locations"][0]["physicalLocation"]["region"]["startLine"], 11);
    // In a List (kubectl's output), the field of the item that has it, not the first item's.
    let list = dir.path().join("list.yaml");
    std::fs::write(&list, "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n  spec:\n    hostNetwork: false\n    containers: [{name: app, image: nginx}]\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: b}\n  spec:\n    hostNetwork: true\n    containers: [{name: app, image: nginx}]\n").unwrap();
    let out = rampart(&["check-manifests", list.to_str().unwrap(), "--level", "baseline", "-o", "json"]);
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (findings[0]["name"].as_str(), findings[0]["line"].as_u64()),
        (Some("b"), Some(14)),
        "{findings}"
    );
    // stdin; a file that does not parse is reported and the others still checked (exit 2);
    // artifact URIs are percent-encoded.
    let spaced = dir.path().join("with space.yaml");
    std::fs::copy(&bad, &spaced).unwrap();
    let piped = {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["check-manifests", "-", "--level", "baseline", "-o", "json"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &std::fs::read(&bad).unwrap()).unwrap();
        child.wait_with_output().unwrap()
    };
    assert_eq!(piped.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_slice(&piped.stdout).unwrap();
    assert_eq!(findings[0]["file"], "<stdin>");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "kind: [oops\n").unwrap();
    let both = rampart(&[
        "check-manifests",
        broken.to_str().unwrap(),
        spaced.to_str().unwrap(),
        "--level",
        "baseline",
        "-o",
        "sarif",
    ]);
    assert_eq!(both.status.code(), Some(2), "a file that did not parse makes the run fail");
    let sarif: serde_json::Value = serde_json::from_slice(&both.stdout).unwrap();
    let uris: Vec<String> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(uris.iter().any(|u| u.ends_with("broken.yaml")), "{uris:?}");
    assert!(uris.iter().any(|u| u.ends_with("with%20space.yaml") && u.starts_with("file:///")), "{uris:?}");
    // Rules from a guardrails config: a warning does not fail unless asked to.
    let config = dir.path().join("guardrails.yaml");
    std::fs::write(&config, "rules:\n  disallowLatestTag: warn\n").unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: app, image: nginx}]\n",
    )
    .unwrap();
    let out = rampart(&[
        "check-manifests",
        good.to_str().unwrap(),
        "--guardrails",
        config.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(findings[0]["rule"], "rules/disallowLatestTag");
    let out = rampart(&[
        "check-manifests",
        good.to_str().unwrap(),
        "--guardrails",
        config.to_str().unwrap(),
        "--fail-on-warnings",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn can_i_layers_cedar_over_rbac() {
    let dir = tempfile::tempdir().unwrap();
    let rbac = dir.path().join("rbac.yaml");
    std::fs::write(&rbac, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\nrules: [{apiGroups: [''], resources: [pods, secrets], verbs: [get, list]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: rb, namespace: dev}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}\nsubjects: [{kind: Group, name: devs, apiGroup: rbac.authorization.k8s.io}]\n").unwrap();
    let rbac = rbac.to_str().unwrap();
    let out = rampart(&[
        "can-i",
        "list",
        "pods",
        "-n",
        "dev",
        "--as",
        "alice",
        "--as-group",
        "devs",
        "--rbac",
        rbac,
    ]);
    assert!(out.status.success());
    assert!(
        stdout(&out)
            .contains(r#"RBAC: allowed by RoleBinding "rb/dev" of ClusterRole "reader" to Group "devs""#),
        "{}",
        stdout(&out)
    );
    let out = rampart(&[
        "can-i",
        "list",
        "pods",
        "-n",
        "prod",
        "--as",
        "alice",
        "--as-group",
        "devs",
        "--rbac",
        rbac,
    ]);
    assert_eq!(out.status.code(), Some(1));
    // A Cedar forbid overrides what RBAC allows.
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(
        policies.join("p.cedar"),
        "forbid (principal, action, resource is k8s::Resource) when { resource.resource == \"secrets\" };",
    )
    .unwrap();
    let out = rampart(&[
        "can-i",
        "get",
        "secrets",
        "s1",
        "-n",
        "dev",
        "--as",
        "alice",
        "--as-group",
        "devs",
        "--rbac",
        rbac,
        "-p",
        policies.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let a: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(a["decided_by"], "cedar");
}

#[test]
fn convert_rbac_output_loads_as_policies() {
    let dir = tempfile::tempdir().unwrap();
    let rbac = dir.path().join("rbac.yaml");
    std::fs::write(&rbac, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\nrules: [{apiGroups: [''], resources: [pods], verbs: [get]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: readers}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}\nsubjects: [{kind: Group, name: devs}]\n").unwrap();
    let out = rampart(&["convert", "rbac", rbac.to_str().unwrap(), "-o", "crd"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    std::fs::write(policies.join("converted.yaml"), &out.stdout).unwrap();
    let out = rampart(&[
        "check",
        "-p",
        policies.to_str().unwrap(),
        "--user",
        "alice",
        "-g",
        "devs",
        "--verb",
        "get",
        "--resource",
        "pods",
        "-n",
        "default",
        "-o",
        "json",
    ]);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["decision"], "Allow", "{r}");
}

#[test]
fn who_can_and_lookup() {
    let rbac = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/who-can-rbac.yaml");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.cedar"),
        "forbid (principal in k8s::Group::\"devs\", action, resource is k8s::Resource) when { resource.resource == \"secrets\" };\n\
         permit (principal in k8s::Group::\"auditors\", action == k8s::Action::\"get\", resource is k8s::Resource);",
    )
    .unwrap();
    let out = rampart(&[
        "who-can",
        "get",
        "secrets",
        "-n",
        "default",
        "--rbac",
        rbac,
        "-p",
        dir.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row =
        |subject: &str| rows.as_array().unwrap().iter().find(|r| r["subject"] == subject).cloned().unwrap();
    assert_eq!(row("Group system:masters")["cedar"], "kept");
    assert!(row("Group devs")["cedar"].as_str().unwrap().starts_with("removed by forbid p.cedar.policy0"));
    assert_eq!(row("ServiceAccount default/ci")["scope"], "default");
    assert_eq!(row("Group auditors")["cedar"], "granted");
    let out = rampart(&["lookup", "--rbac", rbac, "-o", "json"]);
    let l: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(l["grants"].as_array().unwrap().len(), 3);
    assert!(l["risks"].as_array().unwrap().iter().any(|r| r["flag"] == "bound to system:masters"));
}

#[test]
fn can_i_list_shows_rbac_rules_access_policies_and_cedar() {
    let rbac = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/who-can-rbac.yaml");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), "permit (principal in k8s::Group::\"devs\", action == k8s::Action::\"get\", resource) when { resource has namespace };\npermit (principal in k8s::Group::\"ops\", action, resource);").unwrap();
    let entries = dir.path().join("entries.yaml");
    std::fs::write(&entries, "accessEntries:\n- principalArn: arn:aws:iam::1:role/a\n  username: alice\n  accessPolicies:\n  - {policyArn: AmazonEKSViewPolicy, accessScope: {type: namespace, namespaces: [default]}}\n").unwrap();
    let out = rampart(&[
        "can-i",
        "--list",
        "--as",
        "alice",
        "--as-group",
        "devs",
        "-n",
        "default",
        "--rbac",
        rbac,
        "--access-entries",
        entries.to_str().unwrap(),
        "-p",
        dir.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sources: Vec<&str> =
        v["rules"].as_array().unwrap().iter().map(|r| r["source"].as_str().unwrap()).collect();
    assert!(sources.iter().any(|s| s.starts_with("RoleBinding/default/devs-secrets")), "{sources:?}");
    assert!(sources.iter().any(|s| s.contains("AmazonEKSViewPolicy")), "{sources:?}");
    let cedar = v["cedar"].as_array().unwrap();
    assert_eq!(cedar.len(), 1, "only the devs permit can apply: {cedar:?}");
    assert!(cedar[0]["text"].as_str().unwrap().contains("resource has namespace"));
}

#[test]
fn bootstrap_roles_are_available_to_queries() {
    let out = rampart(&[
        "can-i",
        "get",
        "/apis",
        "--as",
        "alice",
        "--as-group",
        "system:authenticated",
        "--bootstrap-roles",
    ]);
    assert!(out.status.success());
    assert!(stdout(&out).contains(r#"ClusterRoleBinding "system:discovery""#), "{}", stdout(&out));
    let out = rampart(&[
        "can-i",
        "get",
        "/metrics",
        "--as",
        "alice",
        "--as-group",
        "system:authenticated",
        "--bootstrap-roles",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn can_i_adds_the_groups_the_apiserver_implies() {
    let dir = tempfile::tempdir().unwrap();
    let rbac = dir.path().join("rbac.yaml");
    std::fs::write(&rbac, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\nrules: [{apiGroups: [''], resources: [configmaps], verbs: [get]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: all-sas, namespace: dev}\nroleRef: {kind: ClusterRole, name: r}\nsubjects: [{kind: Group, name: 'system:serviceaccounts:dev'}]\n").unwrap();
    let out = rampart(&[
        "can-i",
        "get",
        "configmaps",
        "-n",
        "dev",
        "--as",
        "system:serviceaccount:dev:app",
        "--rbac",
        rbac.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn token_passes_the_servers_checks() {
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["token", "--cluster-id", "my-cluster", "--region", "eu-west-1"])
        .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env_remove("AWS_SESSION_TOKEN")
        .env("KUBERNETES_EXEC_INFO", r#"{"apiVersion":"client.authentication.k8s.io/v1"}"#)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cred: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cred["apiVersion"], "client.authentication.k8s.io/v1");
    let token = cred["status"]["token"].as_str().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let url =
        rampart_identity::token::verify(token, &rampart_identity::host::HostVerifier::new("aws", ""), now)
            .unwrap();
    assert_eq!(url.host, "sts.eu-west-1.amazonaws.com");
    assert_eq!(url.access_key_id, "AKIAEXAMPLE");
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["token", "--cluster-id", "c"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("HOME", "/nonexistent")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("aws configure"));
}

/// `rampart serve` over plain HTTP on a free loopback port, with `extra` arguments; killed
/// when the guard drops.
fn serve_plain(extra: &[&str]) -> (KillOnDrop, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["serve", "--insecure-http", "--no-watch", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    (KillOnDrop(child), port)
}

struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The authentication webhook alone (no policies, no other source): it starts and answers
/// TokenReviews.
#[tokio::test]
async fn serve_answers_token_reviews_with_nothing_else_configured() {
    let (_server, port) = serve_plain(&["--cluster-id", "c1"]);
    let review = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": "k8s-aws-v1.bm90LWEtdG9rZW4"}});
    for _ in 0..100 {
        if let Ok(resp) = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/v1/authenticate"))
            .json(&review)
            .send()
            .await
        {
            // aws-iam-authenticator's answer to a token it cannot verify: 403, not authenticated.
            assert_eq!(resp.status(), 403);
            let body: serde_json::Value = resp.json().await.unwrap();
            assert_eq!(body["kind"], "TokenReview", "{body}");
            assert_eq!(body["status"]["authenticated"], false, "{body}");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("rampart serve --cluster-id alone did not answer");
}

/// `serve --service-accounts` re-reads the file: a role annotated after start is injected
/// without a restart, and a broken edit keeps the last good set.
#[tokio::test]
async fn serve_picks_up_service_account_changes_and_survives_a_bad_edit() {
    let dir = tempfile::tempdir().unwrap();
    let sa = dir.path().join("sa.yaml");
    std::fs::write(&sa, "kind: ServiceAccount\nmetadata: {name: app, namespace: default}\n").unwrap();
    // No -p: the mutating webhook is servable on its own.
    let (_server, port) = serve_plain(&["--service-accounts", sa.to_str().unwrap()]);
    let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "default", "operation": "CREATE",
        "userInfo": {"username": "u"},
        "object": {"metadata": {"name": "p"}, "spec": {"serviceAccountName": "app", "containers": [{"name": "c"}]}}}});
    let patched = async || -> bool {
        for _ in 0..50 {
            if let Ok(resp) = reqwest::Client::new()
                .post(format!("http://127.0.0.1:{port}/v1/mutate"))
                .json(&review)
                .send()
                .await
            {
                let body: serde_json::Value = resp.json().await.unwrap();
                return body["response"].get("patch").is_some();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("rampart serve did not answer");
    };
    assert!(!patched().await, "no role yet");
    std::fs::write(
        &sa,
        "kind: ServiceAccount\nmetadata:\n  name: app\n  namespace: default\n  annotations: {eks.amazonaws.com/role-arn: 'arn:aws:iam::111122223333:role/app'}\n",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    assert!(patched().await, "the annotated role is picked up");
    std::fs::write(&sa, "kind: ServiceAccount\nmetadata: {namespace: default}\n").unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    assert!(patched().await, "a bad edit keeps the last good set");
}

/// `rampart schema | head -1`: a reader that goes away ends the program quietly (no panic, no
/// message), with the status a process ended by SIGPIPE reports.
#[test]
fn a_closed_pipe_ends_quietly() {
    for args in [&["schema"][..], &["kube-config", "--help"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the first write
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        if args[0] == "schema" {
            assert_eq!(out.status.code(), Some(141), "{args:?}");
        }
    }
}

/// `check --unified`: the authorization phase alone says "conditional" with the residual, and
/// with the object the admission phase finishes it.
#[test]
fn check_unified_shows_both_phases() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("u.cedar");
    std::fs::write(
        &policies,
        r#"@id("no-prod")
forbid (principal, action in [k8s::unified::Action::"create", k8s::unified::Action::"update", k8s::unified::Action::"patch"], resource is core::configmaps)
when { resource has object && resource.object has metadata && resource.object.metadata has name && resource.object.metadata.name like "prod*" };
permit (principal in k8s::Group::"devs", action == k8s::unified::Action::"create", resource is core::configmaps);"#,
    )
    .unwrap();
    let object = dir.path().join("cm.yaml");
    std::fs::write(&object, "metadata: {name: prod-db}\n").unwrap();
    let base = [
        "check",
        "--unified",
        policies.to_str().unwrap(),
        "--user",
        "u",
        "-g",
        "devs",
        "--verb",
        "create",
        "--resource",
        "configmaps",
        "-n",
        "dev",
        "-o",
        "json",
    ];
    let out = rampart(&base);
    assert_eq!(out.status.code(), Some(0), "a conditional answer is allowed at authorization");
    let phases: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(phases[0]["decision"], "conditional");
    assert!(
        phases[0]["residuals"][0].as_str().unwrap().contains("resource.object.metadata.name like"),
        "{phases}"
    );
    let out = rampart(&[&base[..], &["--object", object.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(1));
    let phases: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(phases[1]["phase"], "admission");
    assert_eq!(phases[1]["decision"], "deny");
    assert_eq!(phases[1]["policies"][0], "no-prod");
}

#[test]
fn can_i_shows_a_unified_answer_left_to_admission_as_conditional() {
    let unified = concat!(env!("CARGO_MANIFEST_DIR"), "/../../e2e/cluster/unified");
    let dir = tempfile::tempdir().unwrap();
    let rbac = dir.path().join("rbac.yaml");
    std::fs::write(&rbac, "apiVersion: v1\nkind: List\nitems: []\n").unwrap();
    let rbac = rbac.to_str().unwrap();
    let ask = |verb: &str, namespace: &str| {
        rampart(&[
            "can-i",
            verb,
            "configmaps",
            "-n",
            namespace,
            "--as",
            "dev-1",
            "--as-group",
            "e2e-devs",
            "--unified",
            unified,
            "--rbac",
            rbac,
        ])
    };
    // kubectl auth can-i would say "yes"; the residual says on what condition.
    let out = ask("create", "e2e-unified");
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("conditional\n"), "{text}");
    assert!(text.contains("finished at admission:") && text.contains("like \"prod*\""), "{text}");
    // Reads have no object to wait for: decided now.
    assert!(stdout(&ask("get", "e2e-unified")).starts_with("yes\n"));
    // Elsewhere only the forbid may apply, and it cannot grant: RBAC answers.
    let out = ask("create", "elsewhere");
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("no\n"), "{}", stdout(&out));
}

#[test]
fn netpol_reach_and_matrix_explain_what_policies_allow() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/netpol");
    let out = rampart(&["netpol", "reach", "b/client", "a/web", "-f", dir]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.starts_with("b/client → a/web: allowed on TCP 8080"), "{text}");
    assert!(text.contains("allowed by a/web-from-b rule 0") && text.contains("policies.yaml:7"), "{text}");
    let out = rampart(&["netpol", "reach", "b/client", "metadata", "--port", "80", "-f", dir]);
    assert_eq!(out.status.code(), Some(1), "denied exits 1");
    assert!(stdout(&out).contains("isolated by b/no-metadata") && stdout(&out).contains("no rule allows it"));
    let out = rampart(&["netpol", "reach", "b/nobody", "a/web", "-f", dir]);
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("no endpoint named \"b/nobody\"")
    );
    let out = rampart(&["netpol", "matrix", "-o", "json", "-f", dir]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .contains(&serde_json::json!({"from": "a/web", "to": "a/db", "ports": "TCP 5432"}))
    );
    let dot = stdout(&rampart(&["netpol", "matrix", "-o", "dot", "-f", dir]));
    assert!(dot.starts_with("digraph connectivity {") && dot.contains("label=\"b/*\""), "{dot}");
    // Grouped: b's two workloads are alike to every policy; --no-group lists them apart.
    let table = stdout(&rampart(&["netpol", "matrix", "-f", dir]));
    assert!(table.contains("b/*") && table.contains("in 5 groups"), "{table}");
    let flat = stdout(&rampart(&["netpol", "matrix", "--no-group", "-f", dir]));
    assert!(flat.contains("b/client") && flat.contains("b/other") && !flat.contains("b/*"), "{flat}");
    let svg = stdout(&rampart(&["netpol", "matrix", "-o", "svg", "-f", dir]));
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.trim_end().ends_with("</svg>")
    );
    assert!(svg.contains("<title>a/web → a/db: TCP 5432</title>"), "{svg}");
    let out = rampart(&["netpol", "matrix"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from-cluster"), "says where to read from");
}

/// The README's network example: its picture is what `matrix -o svg` draws today, and its
/// claims hold (regenerate with `rampart netpol matrix -f examples/netpol -o svg >
/// docs/netpol-matrix.svg` after a deliberate change).
#[test]
fn the_readme_network_example_and_its_picture_are_current() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let example = format!("{root}/examples/netpol");
    let svg = stdout(&rampart(&["netpol", "matrix", "-f", &example, "-o", "svg"]));
    let committed = std::fs::read_to_string(format!("{root}/docs/netpol-matrix.svg")).unwrap();
    assert_eq!(svg, committed, "docs/netpol-matrix.svg is stale");
    let out = rampart(&["netpol", "reach", "shop/api", "shop/db", "-f", &example]);
    assert!(stdout(&out).starts_with("shop/api → shop/db: allowed on TCP 5432"), "{}", stdout(&out));
    let out = rampart(&["netpol", "reach", "shop/web", "shop/db", "--port", "5432", "-f", &example]);
    assert_eq!(out.status.code(), Some(1));
    let out = rampart(&["netpol", "reach", "monitoring/prometheus", "metadata", "-f", &example]);
    assert!(stdout(&out).contains("allowed on all ports"));
}

/// `rampart migrate aws-auth`: the entries file the authenticator and the access-policy tier
/// both read, the commands, and the check against audited principals (exit 1 on a loss).
#[test]
fn migrate_aws_auth_writes_entries_and_checks_audited_principals() {
    let dir = tempfile::tempdir().unwrap();
    let aws_auth = dir.path().join("aws-auth.yaml");
    std::fs::write(
        &aws_auth,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: aws-auth, namespace: kube-system}\ndata:\n  mapRoles: |\n    - rolearn: arn:aws:iam::111122223333:role/nodes\n      username: system:node:{{EC2PrivateDNSName}}\n      groups: [system:bootstrappers, system:nodes]\n    - rolearn: arn:aws:iam::111122223333:role/admins\n      username: \"admin:{{SessionName}}\"\n      groups: [system:masters]\n    - rolearn: arn:aws:iam::111122223333:role/legacy\n      username: legacy\n      groups: [system:monitoring]\n    - sso: {permissionSetName: Dev, accountID: \"111122223333\"}\n      groups: [devs]\n",
    )
    .unwrap();
    let path = aws_auth.to_str().unwrap();
    let yaml = stdout(&rampart(&["migrate", "aws-auth", path, "-o", "yaml"]));
    rampart_identity::mapping::AccessEntries::from_yaml(&yaml).unwrap();
    rampart_rbac::access_policies::AccessPolicyAuthorizer::from_yaml(&yaml).unwrap();
    let commands =
        stdout(&rampart(&["migrate", "aws-auth", path, "-o", "commands", "--cluster-name", "prod"]));
    assert!(
        commands.contains("--type EC2_LINUX") && commands.contains("associate-access-policy"),
        "{commands}"
    );
    let table = rampart(&["migrate", "aws-auth", path]);
    assert_eq!(table.status.code(), Some(1), "a row cannot be migrated");
    assert!(
        stdout(&table).contains("not migrated: mapRoles[2]: group \"system:monitoring\""),
        "{}",
        stdout(&table)
    );

    let event = |arn: &str, canonical: &str, session: &str, user: &str| {
        format!(
            "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"{session}\",\"stage\":\"ResponseComplete\",\"requestURI\":\"/api/v1/pods\",\"verb\":\"list\",\"objectRef\":{{\"resource\":\"pods\",\"apiVersion\":\"v1\"}},\"user\":{{\"username\":\"{user}\",\"groups\":[\"system:authenticated\"],\"extra\":{{\"arn\":[\"{arn}\"],\"canonicalArn\":[\"{canonical}\"],\"sessionName\":[\"{session}\"],\"accessKeyId\":[\"ASIA\"],\"principalId\":[\"AROA\"]}}}},\"sourceIPs\":[\"10.0.0.1\"],\"responseStatus\":{{\"code\":200}},\"requestReceivedTimestamp\":\"2026-12-01T10:00:00.000000Z\",\"stageTimestamp\":\"2026-12-01T10:00:00.010000Z\"}}\n"
        )
    };
    let log = dir.path().join("audit.log");
    std::fs::write(
        &log,
        event(
            "arn:aws:sts::111122223333:assumed-role/admins/alice",
            "arn:aws:iam::111122223333:role/admins",
            "alice",
            "admin:alice",
        ) + &event(
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Dev_abc/bob@example.com",
            "arn:aws:iam::111122223333:role/AWSReservedSSO_Dev_abc",
            "bob@example.com",
            "bob",
        ) + &event(
            "arn:aws:sts::111122223333:assumed-role/nodes/i-0123456789abcdef0",
            "arn:aws:iam::111122223333:role/nodes",
            "i-0123456789abcdef0",
            "system:node:ip-10-0-0-1",
        ),
    )
    .unwrap();
    let out = rampart(&["migrate", "aws-auth", path, "-o", "json", "--check", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "legacy cannot be migrated");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checked = report["check"].as_array().unwrap();
    assert_eq!(checked.len(), 3);
    assert!(checked.iter().all(|v| v["loses"] == false), "{checked:?}");
    let admin = checked.iter().find(|v| v["principal"].as_str().unwrap().contains("admins")).unwrap();
    assert_eq!(admin["notes"][0], "system:masters kept as AmazonEKSClusterAdminPolicy");
    // Decided again: cluster-admin through system:masters before, the admin access policy after.
    let out = rampart(&[
        "migrate",
        "aws-auth",
        path,
        "-o",
        "json",
        "--check",
        log.to_str().unwrap(),
        "--bootstrap-roles",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!report["check"].to_string().contains("could no longer"), "{}", report["check"]);

    // Someone only aws-auth's legacy row maps loses access: named, exit 1.
    std::fs::write(
        &log,
        event(
            "arn:aws:sts::111122223333:assumed-role/legacy/job",
            "arn:aws:iam::111122223333:role/legacy",
            "job",
            "legacy",
        ),
    )
    .unwrap();
    let out = rampart(&["migrate", "aws-auth", path, "--check", log.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(text.contains("1 principals checked, 1 would lose"), "{text}");
    assert!(text.contains("not mapped"), "{text}");
    // With the cluster's RBAC, its audited requests are decided again and named.
    let rbac = dir.path().join("rbac.yaml");
    std::fs::write(
        &rbac,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: pod-reader}\nrules: [{apiGroups: [''], resources: [pods], verbs: [list]}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: monitoring}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}\nsubjects: [{kind: Group, name: system:monitoring, apiGroup: rbac.authorization.k8s.io}]\n",
    )
    .unwrap();
    let out = rampart(&[
        "migrate",
        "aws-auth",
        path,
        "-o",
        "json",
        "--check",
        log.to_str().unwrap(),
        "--rbac",
        rbac.to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes = report["check"][0]["notes"].to_string();
    assert!(notes.contains("could no longer: list pods"), "{notes}");
}

/// `rampart test`: the examples' tests pass; a wrong expectation fails with what differed,
/// in the table and in JUnit XML; a path without test files is an error, not a pass.
#[test]
fn policy_tests_run_as_serve_decides_and_report_junit() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let examples = format!("{root}/examples/tests");
    let out = rampart(&["test", &examples]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("10 tests in 2 files: 10 passed, 0 failed"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wrong.yaml");
    std::fs::write(
        &file,
        format!(
            "policies: [{root}/examples/policies/basic]\ntests:\n  - name: viewers read secrets\n    check: {{user: vera, groups: [viewers], verb: get, resource: secrets, namespace: default}}\n    expect: allow\n  - name: viewers read configmaps\n    check: {{user: vera, groups: [viewers], verb: get, resource: configmaps, namespace: default}}\n    expect: allow\n    policy: no-such-policy\n"
        ),
    )
    .unwrap();
    let out = rampart(&["test", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("expected Allow, got NoOpinion"), "{}", stdout(&out));
    let junit = stdout(&rampart(&["test", file.to_str().unwrap(), "-o", "junit"]));
    assert!(junit.contains("<testsuites name=\"rampart\" tests=\"2\" failures=\"2\">"), "{junit}");
    assert!(junit.contains("<failure message=\"expected no-such-policy to decide"), "{junit}");
    let out = rampart(&["test", dir.path().join("none").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let empty = tempfile::tempdir().unwrap();
    let out = rampart(&["test", empty.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was tested"));
}
