//! EKS Pod Identity on a self-managed cluster, end to end with real peers: boto3's own
//! container-credentials provider asks `rampart agent` (loopback) with the pod's projected token
//! file; the agent asks `rampart broker`, which verifies the token's signature against the
//! service-account key, checks the pod is alive through a Kubernetes API (a stand-in apiserver
//! serving real Pod JSON), maps the association and calls STS `AssumeRole` on moto; boto3 then
//! uses the credentials against moto's STS and S3. Also: the agent's local token validation flag
//! really takes effect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;

mod common;
use common::{Kill, free_port, peers, start_agent, start_moto, wait_for_port};

const ISSUER: &str = "https://oidc.example.com/c1";
const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rampart-identity/tests/data/test-sa-key.pem");

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A projected token as kubelet writes it: RS256 with the key's kid, pod-bound.
fn pod_token(namespace: &str, sa: &str, pod: &str, uid: &str, aud: &str) -> String {
    let pem = std::fs::read_to_string(KEY).unwrap();
    let kid = rampart_identity::oidc::SigningKey::from_pem("key", &pem).unwrap()[0].kid.clone();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid);
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": format!("system:serviceaccount:{namespace}:{sa}"), "aud": [aud],
        "exp": now() + 86400, "iat": now(), "nbf": now(),
        "kubernetes.io": {"namespace": namespace, "pod": {"name": pod, "uid": uid},
                          "serviceaccount": {"name": sa, "uid": "sa-uid"}, "node": {"name": "node-1", "uid": "n"}}
    });
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap())
        .unwrap()
}

/// A stand-in apiserver: the pods the broker may look up.
async fn apiserver() -> String {
    async fn pod(Path((ns, name)): Path<(String, String)>) -> (StatusCode, String) {
        if (ns.as_str(), name.as_str()) == ("team-a", "app-7d9c") {
            let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "uid": "U1"},
                "spec": {"serviceAccountName": "app", "containers": [{"name": "app", "image": "python"}]},
                "status": {"phase": "Running"}});
            return (StatusCode::OK, pod.to_string());
        }
        let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": format!("pods \"{name}\" not found"), "reason": "NotFound", "code": 404});
        (StatusCode::NOT_FOUND, status.to_string())
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/api/v1/namespaces/{ns}/pods/{name}", get(pod));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_gets_pod_identity_credentials_through_agent_broker_and_moto() {
    let Some([moto, aws, python]) = peers(["moto_server", "aws", "python3"]) else { return };
    let (_moto, moto_url) = start_moto(&moto);
    let aws_env = [
        ("AWS_ACCESS_KEY_ID", "AKIABROKER"),
        ("AWS_SECRET_ACCESS_KEY", "s"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ];
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
    let out = Command::new(&aws)
        .args(["iam", "create-role", "--role-name", "app-role", "--assume-role-policy-document", trust])
        .envs(aws_env)
        .env("AWS_ENDPOINT_URL", &moto_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {{server: \"{}\"}}\nusers:\n- name: u\n  user: {{token: t}}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n",
            apiserver().await
        ),
    )
    .unwrap();
    let associations = dir.path().join("associations.yaml");
    std::fs::write(
        &associations,
        "apiVersion: rampart.dev/v1alpha1\nkind: PodIdentityAssociation\nmetadata: {name: team-a-app}\nspec:\n  namespace: team-a\n  serviceAccount: app\n  roleArn: arn:aws:iam::123456789012:role/app-role\n",
    )
    .unwrap();
    let broker_port = free_port();
    let _broker = Kill(
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["broker", "--cluster-name", "c1", "--region", "us-east-1"])
            .args(["--associations", associations.to_str().unwrap(), "--token-validation", "jwks"])
            .args(["--issuer", ISSUER, "--service-account-key-file", KEY])
            .args(["--kubeconfig", kubeconfig.to_str().unwrap(), "--sts-endpoint", &moto_url])
            .args(["--listen", &format!("127.0.0.1:{broker_port}"), "--insecure-http"])
            .envs(aws_env)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let agent = start_agent("c1", broker_port);
    let (agent_port, probe_port, metrics_port) = (agent.port, agent.probe_port, agent.metrics_port);

    // The token file as kubelet projects it (no trailing newline: botocore refuses one).
    let token_file = dir.path().join("eks-pod-identity-token");
    std::fs::write(&token_file, pod_token("team-a", "app", "app-7d9c", "U1", "pods.eks.amazonaws.com"))
        .unwrap();
    let script = r#"
import boto3, json
sts = boto3.client("sts")
identity = sts.get_caller_identity()
s3 = boto3.client("s3")
s3.create_bucket(Bucket="team-a-data")
s3.put_object(Bucket="team-a-data", Key="k", Body=b"hello")
body = s3.get_object(Bucket="team-a-data", Key="k")["Body"].read().decode()
creds = boto3.Session().get_credentials().get_frozen_credentials()
print(json.dumps({"arn": identity["Arn"], "body": body, "key": creds.access_key}))
"#;
    let agent_url = format!("http://127.0.0.1:{agent_port}/v1/credentials");
    let run = |token_file: &std::path::Path| {
        Command::new(&python)
            .args(["-c", script])
            .env_clear()
            .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &agent_url)
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file)
            .env("AWS_ENDPOINT_URL", &moto_url)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", dir.path().join("none"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    };
    let out = run(&token_file);
    assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arn = result["arn"].as_str().unwrap();
    assert!(arn.starts_with("arn:aws:sts::123456789012:assumed-role/app-role/eks-c1-app-7d9c-"), "{result}");
    assert_eq!(result["body"], "hello", "the credentials work against S3");

    // The same pod again is served from the agent's cache (same keys, one upstream call).
    let again = run(&token_file);
    assert!(again.status.success());
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["key"], result["key"]);
    let http = reqwest::Client::new();
    let metrics = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pod_identity_cache_state_total{state=\"hit\"}"), "{metrics}");
    let health = http.get(format!("http://127.0.0.1:{probe_port}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "every credentials listener answers 404 on /");

    // Refusals, with upstream's status codes: a pod that was recreated (UID differs), a
    // service account without an association, a token for another audience, a wrong Host.
    let ask = |token: String| {
        let http = http.clone();
        let url = agent_url.clone();
        async move {
            let r = http.get(url).header("authorization", token).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) =
        ask(pod_token("team-a", "app", "app-7d9c", "OLD-UID", "pods.eks.amazonaws.com")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("(InvalidTokenException)") && body.contains("recreated"), "{body}");
    let (status, body) = ask(pod_token("team-a", "other", "app-7d9c", "U1", "pods.eks.amazonaws.com")).await;
    assert_eq!(status, 400, "another service account's token does not match the pod: {body}");
    let (status, body) = ask(pod_token("team-a", "app", "app-7d9c", "U1", "sts.amazonaws.com")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("audience"), "{body}");
    let r = http
        .get(&agent_url)
        .header("host", "169.254.170.23.nip.io")
        .header("authorization", pod_token("team-a", "app", "app-7d9c", "U1", "pods.eks.amazonaws.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // B15: the association moves to another role. The broker re-reads it within 10 s and the
    // agent drops the cached credentials within another 10 s, so the pod's next fetch gets the
    // new role (EKS keeps serving the old one for up to 6 h).
    std::fs::write(
        &associations,
        std::fs::read_to_string(&associations).unwrap().replace("role/app-role", "role/app-role-b"),
    )
    .unwrap();
    let mut last = serde_json::Value::Null;
    for _ in 0..40 {
        let out = run(&token_file);
        assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
        last = serde_json::from_slice(&out.stdout).unwrap();
        if last["arn"].as_str().unwrap().contains("assumed-role/app-role-b/") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        last["arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sts::123456789012:assumed-role/app-role-b/eks-c1-app-7d9c-"),
        "{last}"
    );

    // No association for this service account any more: the broker answers 404.
    std::fs::write(&associations, "kind: List\nitems: []\n").unwrap();
    let mut status = 0;
    for _ in 0..40 {
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{broker_port}/clusters/c1/assume-role-for-pod-identity"))
            .json(&serde_json::json!({"token": pod_token("team-a", "app", "app-7d9c", "U1", "pods.eks.amazonaws.com")}))
            .send()
            .await
            .unwrap();
        status = r.status().as_u16();
        if status == 404 {
            assert_eq!(r.headers()["x-amzn-errortype"], "ResourceNotFoundException");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(status, 404, "a removed association stops issuing credentials");
}

/// `--token-validation jwks` is wired: a forged token is refused by the agent itself (400),
/// where without it the agent would have asked the (unreachable) broker (500).
#[tokio::test(flavor = "multi_thread")]
async fn agent_validates_tokens_locally_when_asked() {
    let dead_broker = format!("http://127.0.0.1:{}", free_port());
    let start = |validate: bool| {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
        cmd.args(["agent", "--cluster-name", "c1", "--broker", &dead_broker, "--upstream-timeout", "1s"])
            .args(["--bind-hosts", "127.0.0.1", "--port", &port.to_string(), "--accepted-hosts", "127.0.0.1"])
            .args(["--probe-port", "0", "--metrics-address", "127.0.0.1", "--metrics-port", "0"]);
        if validate {
            cmd.args([
                "--token-validation",
                "jwks",
                "--issuer",
                ISSUER,
                "--service-account-key-file",
                KEY,
                "--pod-check",
                "off",
            ]);
        }
        let guard = Kill(cmd.stderr(Stdio::null()).spawn().unwrap());
        wait_for_port(port);
        (guard, format!("http://127.0.0.1:{port}/v1/credentials"))
    };
    let mut forged = pod_token("team-a", "app", "app-7d9c", "U1", "pods.eks.amazonaws.com");
    forged.truncate(forged.rfind('.').unwrap());
    forged.push_str(".c2ln");
    let ask = |url: String, token: String| async move {
        let r = reqwest::Client::new().get(url).header("authorization", token).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (_plain, plain_url) = start(false);
    assert_eq!(ask(plain_url, forged.clone()).await.0, 500, "without validation the broker is asked");
    let (_validating, url) = start(true);
    let (status, body) = ask(url, forged).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("(InvalidTokenException)"), "{body}");
}
