//! Scenario 2: IAM authentication. kubectl users whose exec plugin is `rampart token` (the
//! kubeconfig `rampart kube-config` printed) or `aws eks get-token` (awscli) → kube-apiserver →
//! Rampart's TokenReview → moto's STS → an identity mapped by the aws-auth ConfigMap read live
//! from this cluster, or by the access-entries file.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{Cluster, eventually, shared};

const ACCOUNT: &str = "123456789012";

pub fn aws_bin() -> PathBuf {
    let dir = std::env::var("RAMPART_AWS_PEERS_BIN").unwrap_or_else(|_| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-peers/bin").display().to_string()
    });
    let aws = PathBuf::from(dir).join("aws");
    assert!(aws.exists(), "the AWS CLI is required at {} (scripts/test.sh installs it)", aws.display());
    aws
}

fn aws(c: &Cluster, args: &[&str]) -> Value {
    let out = Command::new(aws_bin())
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIAE2EBASE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", c.var("RAMPART_E2E_MOTO"))
        .output()
        .unwrap();
    assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Temporary credentials of `role` for `session`, from moto's STS.
fn assume(c: &Cluster, role: &str, session: &str) -> [(String, String); 4] {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    let _ = Command::new(aws_bin())
        .args(["iam", "create-role", "--role-name", role, "--assume-role-policy-document", trust])
        .env("AWS_ACCESS_KEY_ID", "AKIAE2EBASE")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", c.var("RAMPART_E2E_MOTO"))
        .output();
    let arn = format!("arn:aws:iam::{ACCOUNT}:role/{role}");
    let creds = aws(c, &["sts", "assume-role", "--role-arn", &arn, "--role-session-name", session]);
    let k = &creds["Credentials"];
    let s = |key: &str| k[key].as_str().unwrap().to_owned();
    [
        ("AWS_ACCESS_KEY_ID".into(), s("AccessKeyId")),
        ("AWS_SECRET_ACCESS_KEY".into(), s("SecretAccessKey")),
        ("AWS_SESSION_TOKEN".into(), s("SessionToken")),
        ("AWS_REGION".into(), "us-east-1".into()),
    ]
}

/// A kubeconfig whose user runs `aws eks get-token`, as `aws eks update-kubeconfig` writes it.
fn awscli_kubeconfig(c: &Cluster) -> PathBuf {
    let wired = std::fs::read_to_string(c.dir.join("wiring/kubectl.kubeconfig")).unwrap();
    let mut config: serde_yaml::Value = serde_yaml::from_str(&wired).unwrap();
    config["users"][0]["user"]["exec"] = serde_yaml::from_str(&format!(
        "{{apiVersion: client.authentication.k8s.io/v1beta1, command: {}, args: [eks, get-token, --cluster-name, rampart-e2e, --region, us-east-1, --output, json]}}",
        aws_bin().display()
    ))
    .unwrap();
    let path = c.dir.join("users/awscli.kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

/// `kubectl auth whoami` with these credentials, once the mapping has been picked up.
fn whoami(c: &Cluster, kubeconfig: &std::path::Path, creds: &[(String, String); 4]) -> Value {
    eventually("the identity is mapped", Duration::from_secs(20), || {
        let mut k = c.kubeconfig(kubeconfig.to_path_buf());
        for (key, value) in creds {
            k = k.env(key, value);
        }
        let out = k.run(&["auth", "whoami", "-o", "json"]);
        if out.ok { Ok(serde_json::from_str::<Value>(&out.stdout).unwrap()) } else { Err(out.stderr) }
    })
}

#[test]
fn iam_users_log_in_with_rampart_token_and_aws_eks_get_token() {
    let (_gate, c) = shared();
    c.namespace("e2e-iam");
    c.apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: aws-auth, namespace: kube-system}}\ndata:\n  mapRoles: |\n    - rolearn: arn:aws:iam::{ACCOUNT}:role/e2e-admin\n      username: \"iam-admin:{{{{SessionName}}}}\"\n      groups: [e2e-iam-admins]\n"
    ));

    // 1. The kubeconfig `rampart kube-config --cluster-id` printed, unchanged: exec `rampart token`.
    let wired = c.dir.join("wiring/kubectl.kubeconfig");
    let alice = assume(c, "e2e-admin", "alice");
    let who = whoami(c, &wired, &alice);
    let info = &who["status"]["userInfo"];
    assert_eq!(info["username"], "iam-admin:alice", "{who}");
    let groups: Vec<&str> = info["groups"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(groups.contains(&"e2e-iam-admins") && groups.contains(&"system:authenticated"), "{who}");
    assert_eq!(info["extra"]["arn"][0], format!("arn:aws:sts::{ACCOUNT}:assumed-role/e2e-admin/alice"));
    assert_eq!(info["extra"]["canonicalArn"][0], format!("arn:aws:iam::{ACCOUNT}:role/e2e-admin"));
    assert_eq!(info["extra"]["sessionName"][0], "alice");

    // 2. awscli's `aws eks get-token`, as EKS users have it.
    let bob = assume(c, "e2e-admin", "bob");
    let who = whoami(c, &awscli_kubeconfig(c), &bob);
    assert_eq!(who["status"]["userInfo"]["username"], "iam-admin:bob", "{who}");

    // 3. The access-entries file maps e2e-viewer, and its AmazonEKSViewPolicy (namespaces
    //    e2e-*) authorizes through Rampart: reading in e2e-iam, nothing elsewhere, no writes.
    let carol = assume(c, "e2e-viewer", "carol");
    let who = whoami(c, &wired, &carol);
    assert_eq!(who["status"]["userInfo"]["username"], "viewer:carol", "{who}");
    let as_carol = || {
        let mut k = c.kubeconfig(wired.clone());
        for (key, value) in &carol {
            k = k.env(key, value);
        }
        k
    };
    as_carol().run(&["get", "pods", "-n", "e2e-iam"]).ok();
    let err = as_carol().run(&["get", "pods", "-n", "default"]).fails();
    assert!(err.contains("Forbidden") || err.contains("forbidden"), "{err}");
    let err = as_carol().run(&["create", "configmap", "x", "-n", "e2e-iam"]).fails();
    assert!(err.contains("forbidden"), "{err}");

    // 4. A role in neither aws-auth nor the access entries: 401, which kubectl reports.
    let mallory = assume(c, "e2e-unmapped", "mallory");
    let mut k = c.kubeconfig(wired.clone());
    for (key, value) in &mallory {
        k = k.env(key, value);
    }
    let err = k.run(&["get", "pods", "-n", "e2e-iam"]).fails();
    assert!(err.contains("Unauthorized") || err.contains("You must be logged in"), "{err}");
}
