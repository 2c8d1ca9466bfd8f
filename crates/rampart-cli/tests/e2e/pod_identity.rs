//! Pod Identity with the apiserver's own pod-bound tokens: `kubectl create token SA
//! --bound-object-kind Pod` → `rampart agent` → `rampart broker` (the token verified against
//! this apiserver's signing key, the pod looked up in this apiserver) → moto's STS → boto3's
//! container-credentials provider; once the pod is deleted, its token is refused.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::{Kill, free_port, start_agent};
use crate::{Cluster, shared};

const SCRIPT: &str = r#"
import boto3, json
print(json.dumps({"arn": boto3.client("sts").get_caller_identity()["Arn"]}))
"#;

fn boto3(c: &Cluster, agent_url: &str, token_file: &Path) -> Output {
    let python = crate::iam::aws_bin().with_file_name("python3");
    Command::new(python)
        .args(["-c", SCRIPT])
        .env_clear()
        .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent_url)
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file)
        .env("AWS_ENDPOINT_URL", c.var("RAMPART_E2E_MOTO"))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", c.dir.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", c.dir.join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

#[test]
fn pod_bound_tokens_get_credentials_through_agent_broker_and_sts() {
    let (_gate, c) = shared();
    c.namespace("e2e-pod-identity");
    c.apply(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app, namespace: e2e-pod-identity}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: app-1, namespace: e2e-pod-identity}\nspec:\n  serviceAccountName: app\n  containers: [{name: app, image: registry.k8s.io/pause:3.10}]\n",
    );
    let aws = crate::iam::aws_bin();
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    let _ = Command::new(&aws)
        .args(["iam", "create-role", "--role-name", "e2e-pod-app", "--assume-role-policy-document", trust])
        .env("AWS_ACCESS_KEY_ID", "AKIABROKER")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", c.var("RAMPART_E2E_MOTO"))
        .output();
    let associations = c.dir.join("e2e-associations.yaml");
    std::fs::write(
        &associations,
        "apiVersion: rampart.dev/v1alpha1\nkind: PodIdentityAssociation\nmetadata: {name: e2e-pod-app}\nspec: {namespace: e2e-pod-identity, serviceAccount: app, roleArn: 'arn:aws:iam::123456789012:role/e2e-pod-app'}\n",
    )
    .unwrap();

    let broker_port = free_port();
    let _broker = Kill(
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["broker", "--cluster-name", "rampart-e2e", "--region", "us-east-1"])
            .args(["--associations", associations.to_str().unwrap(), "--token-validation", "jwks"])
            .args(["--issuer", "https://kubernetes.default.svc", "--service-account-key-file"])
            .arg(c.dir.join("pki/sa.pub"))
            .arg("--kubeconfig")
            .arg(c.dir.join("users/rampart.kubeconfig"))
            .args(["--sts-endpoint", c.var("RAMPART_E2E_MOTO")])
            .args(["--listen", &format!("127.0.0.1:{broker_port}"), "--insecure-http"])
            .env("AWS_ACCESS_KEY_ID", "AKIABROKER")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let agent = start_agent("rampart-e2e", broker_port);
    let agent_port = agent.port;

    // The token kubelet would project for this pod, minted by this apiserver.
    let token = c
        .admin()
        .run(&[
            "create",
            "token",
            "app",
            "-n",
            "e2e-pod-identity",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "app-1",
            "--audience",
            "pods.eks.amazonaws.com",
        ])
        .ok();
    let token_file = c.dir.join("e2e-pod-identity-token");
    std::fs::write(&token_file, token.trim()).unwrap();
    let agent_url = format!("http://127.0.0.1:{agent_port}/v1/credentials");
    let out = boto3(c, &agent_url, &token_file);
    assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arn = answer["arn"].as_str().unwrap();
    // EKS's session name, eks-<cluster>-<pod>-<uid> cut to STS's 64 characters.
    let session = arn.strip_prefix("arn:aws:sts::123456789012:assumed-role/e2e-pod-app/").unwrap_or_default();
    assert!(session.starts_with("eks-rampart-e2-app-1-") && session.len() <= 64, "{answer}");

    // The pod is deleted: a fresh request with its token is refused by the broker.
    c.admin().run(&["delete", "pod", "app-1", "-n", "e2e-pod-identity", "--grace-period=0", "--force"]).ok();
    // Asked of the broker in EKS Auth's protocol (the agent would answer from its cache);
    // pod lookups are reused for 5 s, so the refusal comes within that.
    let code =
        crate::eventually("the deleted pod's token is refused", std::time::Duration::from_secs(15), || {
            let status = Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-X",
                    "POST",
                    "-H",
                    "content-type: application/json",
                ])
                .args(["--data", &serde_json::json!({"token": token.trim()}).to_string()])
                .arg(format!(
                    "http://127.0.0.1:{broker_port}/clusters/rampart-e2e/assume-role-for-pod-identity"
                ))
                .output()
                .unwrap();
            let code = String::from_utf8_lossy(&status.stdout).into_owned();
            if code.starts_with('4') { Ok(code) } else { Err(code) }
        });
    assert!(code == "400" || code == "401" || code == "403" || code == "404", "{code}");
}
