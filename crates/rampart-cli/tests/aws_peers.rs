//! IAM authentication against real peers: moto as STS/IAM, tokens from both `rampart token`
//! and the AWS CLI (`aws eks get-token`), verified through `rampart serve`'s
//! `/v1/authenticate` and mapped through an aws-auth ConfigMap.
//!
//! Needs `moto_server` and `aws` (PyPI `moto[server]`, `awscli`): on PATH or in
//! `$RAMPART_AWS_PEERS_BIN`. `.ci/run` installs them and sets `RAMPART_REQUIRE_AWS_PEERS=1`, which
//! turns their absence into a failure instead of a skip.
//!
//! moto identifies the caller only from the `Authorization` header, so a proxy in front of it
//! copies a presigned URL's `X-Amz-Credential` into that header (STS itself reads the query).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::process::{Command, Stdio};

mod common;
use common::sts::presigned_authorization;
use common::{Kill, free_port, peers, start_moto, wait_for_port};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};

/// Forward to moto; presigned requests get an Authorization header built from the query.
async fn proxy(
    State(moto): State<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let query = query.unwrap_or_default();
    let mut req = reqwest::Client::new().request(method, format!("{moto}/?{query}")).body(body);
    for (name, value) in headers.iter().filter(|(n, _)| *n != "host") {
        req = req.header(name, value);
    }
    if !headers.contains_key("authorization") {
        req = req.header("authorization", presigned_authorization(&query));
    }
    let resp = req.send().await.unwrap();
    (StatusCode::from_u16(resp.status().as_u16()).unwrap(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_from_rampart_and_awscli_authenticate_through_moto() {
    let Some([moto, aws]) = peers(["moto_server", "aws"]) else { return };
    let (_moto, moto_url) = start_moto(&moto);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(proxy).with_state(moto_url.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEBASE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_REGION", "us-east-1"),
    ];
    let aws_cmd = |args: &[&str], sts: &str| {
        let out = Command::new(&aws)
            .args(args)
            .envs(env)
            .env("AWS_ENDPOINT_URL_STS", sts)
            .env("AWS_ENDPOINT_URL_IAM", &moto_url)
            .output()
            .unwrap();
        assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    aws_cmd(
        &["iam", "create-role", "--role-name", "k8s-admin", "--assume-role-policy-document", trust],
        &moto_url,
    );
    aws_cmd(
        &["iam", "create-role", "--role-name", "nodes", "--assume-role-policy-document", trust],
        &moto_url,
    );
    let run = |args: &[&str]| {
        let out =
            Command::new(&aws).args(args).envs(env).env("AWS_ENDPOINT_URL", &moto_url).output().unwrap();
        assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let instance = run(&[
        "ec2",
        "run-instances",
        "--image-id",
        "ami-12c6146b",
        "--count",
        "1",
        "--query",
        "Instances[0].[InstanceId,PrivateDnsName]",
        "--output",
        "text",
    ]);
    let (instance_id, private_dns) = instance.trim().split_once('\t').unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), "permit(principal, action, resource);").unwrap();
    let aws_auth = dir.path().join("aws-auth.yaml");
    std::fs::write(&aws_auth, "data:\n  mapRoles: |\n    - rolearn: arn:aws:iam::123456789012:role/k8s-admin\n      username: \"admin:{{SessionName}}\"\n      groups: [admins]\n    - rolearn: arn:aws:iam::123456789012:role/nodes\n      username: system:node:{{EC2PrivateDNSName}}\n      groups: [system:bootstrappers, system:nodes]\n    - sso: {permissionSetName: ViewOnly, accountID: \"123456789012\"}\n      username: \"viewer:{{SessionName}}\"\n      groups: [viewers]\n").unwrap();
    let port = free_port();
    let _server = Kill(
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args([
                "serve",
                "-p",
                dir.path().to_str().unwrap(),
                "--insecure-http",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--no-watch",
                "--cluster-id",
                "demo",
                "--aws-auth",
                aws_auth.to_str().unwrap(),
                "--authentication-mode",
                "CONFIG_MAP",
                "--sts-endpoint",
                &proxy_url,
                "--ec2-lookups",
                "--ec2-endpoint",
                &moto_url,
                "--region",
                "us-east-1",
            ])
            .envs(env)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);
    let review = async |token: &str| -> serde_json::Value {
        let body = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}});
        let resp = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/v1/authenticate"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    };

    // 1. rampart token: assume the role at moto, presign for the real STS host.
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "token",
            "--cluster-id",
            "demo",
            "--role-arn",
            "arn:aws:iam::123456789012:role/k8s-admin",
            "--session-name",
            "alice",
            "--region",
            "us-east-1",
        ])
        .envs(env)
        .env("AWS_ENDPOINT_URL_STS", &moto_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cred: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = review(cred["status"]["token"].as_str().unwrap()).await;
    assert_eq!(result["status"]["user"]["username"], "admin:alice", "{result}");
    assert_eq!(
        result["status"]["user"]["extra"]["arn"][0],
        "arn:aws:sts::123456789012:assumed-role/k8s-admin/alice"
    );

    // 2. aws eks get-token with the role, STS endpoint = the proxy (the configured endpoint).
    let creds_json = aws_cmd(
        &[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::123456789012:role/k8s-admin",
            "--role-session-name",
            "bob",
        ],
        &moto_url,
    );
    let creds: serde_json::Value = serde_json::from_str(&creds_json).unwrap();
    let c = &creds["Credentials"];
    let out = Command::new(&aws)
        .args(["eks", "get-token", "--cluster-name", "demo", "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", c["AccessKeyId"].as_str().unwrap())
        .env("AWS_SECRET_ACCESS_KEY", c["SecretAccessKey"].as_str().unwrap())
        .env("AWS_SESSION_TOKEN", c["SessionToken"].as_str().unwrap())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_STS", &proxy_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cred: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = review(cred["status"]["token"].as_str().unwrap()).await;
    assert_eq!(result["status"]["user"]["username"], "admin:bob", "{result}");
    assert_eq!(result["status"]["user"]["groups"], serde_json::json!(["admins"]));

    // 3. A node: the session name is the instance id, its DNS name comes from EC2.
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "token",
            "--cluster-id",
            "demo",
            "--role-arn",
            "arn:aws:iam::123456789012:role/nodes",
            "--session-name",
            instance_id,
            "--region",
            "us-east-1",
        ])
        .envs(env)
        .env("AWS_ENDPOINT_URL_STS", &moto_url)
        .output()
        .unwrap();
    let cred: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = review(cred["status"]["token"].as_str().unwrap()).await;
    assert_eq!(result["status"]["user"]["username"], format!("system:node:{private_dns}"), "{result}");

    // 4. IRSA-style credentials: a web identity token file and a role, no keys.
    let web_token = dir.path().join("web-identity-token");
    std::fs::write(&web_token, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["token", "--cluster-id", "demo", "--region", "us-east-1"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &web_token)
        .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/k8s-admin")
        .env("AWS_ROLE_SESSION_NAME", "carol")
        .env("AWS_ENDPOINT_URL_STS", &moto_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cred: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = review(cred["status"]["token"].as_str().unwrap()).await;
    assert_eq!(result["status"]["user"]["username"], "admin:carol", "{result}");

    // 5. IAM Identity Center: a role Identity Center made for the ViewOnly permission set (its
    // path and random suffix), the session named by the user's e-mail; the profile has no keys,
    // only a credential_process (as `aws configure export-credentials --format process` serves
    // what `aws sso login` cached), which rampart token runs through the SDK's provider.
    aws_cmd(
        &[
            "iam",
            "create-role",
            "--path",
            "/aws-reserved/sso.amazonaws.com/eu-west-1/",
            "--role-name",
            "AWSReservedSSO_ViewOnly_0123456789abcdef",
            "--assume-role-policy-document",
            trust,
        ],
        &moto_url,
    );
    let sso_creds = aws_cmd(
        &[
            "sts",
            "assume-role",
            "--role-arn",
            "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_ViewOnly_0123456789abcdef",
            "--role-session-name",
            "alice@example.com",
        ],
        &moto_url,
    );
    let c: serde_json::Value = serde_json::from_str(&sso_creds).unwrap();
    let c = &c["Credentials"];
    let process = dir.path().join("export-credentials");
    std::fs::write(
        &process,
        format!(
            "#!/bin/sh\nprintf '%s' '{}'\n",
            serde_json::json!({"Version": 1, "AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"], "SessionToken": c["SessionToken"]})
        ),
    )
    .unwrap();
    std::fs::set_permissions(&process, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = dir.path().join("aws-config");
    std::fs::write(&config, format!("[profile sso-viewer]\ncredential_process = {}\n", process.display()))
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["token", "--cluster-id", "demo", "--region", "us-east-1"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_PROFILE", "sso-viewer")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cred: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let result = review(cred["status"]["token"].as_str().unwrap()).await;
    assert_eq!(result["status"]["user"]["username"], "viewer:alice-example.com", "{result}");
    assert_eq!(result["status"]["user"]["groups"], serde_json::json!(["viewers"]));

    // 6. An unmapped principal (the base user) is refused.
    let out = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["token", "--cluster-id", "demo", "--region", "us-east-1"])
        .envs(env)
        .output()
        .unwrap();
    let cred: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let body = serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": cred["status"]["token"]}});
    let resp = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/authenticate"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

/// IRSA with a real SDK: `rampart serve` injects a pod whose service account names a role; the
/// injected environment (role ARN, token file path, region) is handed to boto3 as kubelet would
/// give it to the container, with the token file at the injected path under a temp root; boto3's
/// own web-identity provider calls AssumeRoleWithWebIdentity on moto and the resulting
/// credentials identify as the injected role.
#[tokio::test(flavor = "multi_thread")]
async fn boto3_assumes_the_injected_irsa_role_through_moto() {
    let Some([moto, aws, python]) = peers(["moto_server", "aws", "python3"]) else { return };
    let (_moto, moto_url) = start_moto(&moto);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.example.com/c1"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#;
    let out = Command::new(&aws)
        .args(["iam", "create-role", "--role-name", "s3-reader", "--assume-role-policy-document", trust])
        .envs([
            ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEBASE"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
        ])
        .env("AWS_ENDPOINT_URL", &moto_url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), "permit(principal, action, resource);").unwrap();
    let sa = dir.path().join("sa.yaml");
    std::fs::write(
        &sa,
        "kind: ServiceAccount\nmetadata:\n  name: reader\n  namespace: team-a\n  annotations:\n    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/s3-reader\n",
    )
    .unwrap();
    let port = free_port();
    let _server = Kill(
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["serve", "-p", dir.path().to_str().unwrap(), "--insecure-http", "--no-watch"])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--service-accounts", sa.to_str().unwrap()])
            .args(["--aws-default-region", "us-east-1"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);
    let review = serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "namespace": "team-a", "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
                   "spec": {"serviceAccountName": "reader", "containers": [{"name": "app", "image": "python"}]}}}});
    let response: serde_json::Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/v1/mutate"))
        .json(&review)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    use base64::Engine as _;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).unwrap();
    let mut container_env: Vec<(String, String)> = pod["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["value"].as_str().unwrap().to_owned()))
        .collect();
    // Kubelet would project the token at the injected path; here it lives under a temp root.
    for (name, value) in container_env.iter_mut().filter(|(n, _)| n == "AWS_WEB_IDENTITY_TOKEN_FILE") {
        let local = dir.path().join(value.trim_start_matches('/'));
        std::fs::create_dir_all(local.parent().unwrap()).unwrap();
        std::fs::write(&local, "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6dGVhbS1hOnJlYWRlciJ9.c2ln").unwrap();
        *value = local.to_str().unwrap().to_owned();
        assert_eq!(name, "AWS_WEB_IDENTITY_TOKEN_FILE");
    }
    let script = "import boto3, json; print(json.dumps(boto3.client('sts').get_caller_identity()))";
    let out = Command::new(python)
        .args(["-c", script])
        .env_clear()
        .envs(container_env)
        .env("AWS_ENDPOINT_URL_STS", &moto_url)
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    let identity: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arn = identity["Arn"].as_str().unwrap();
    assert!(arn.starts_with("arn:aws:sts::123456789012:assumed-role/s3-reader/"), "{identity}");
}

/// The AWS JSON calls of the image layer against moto, compared with the AWS CLI's answers:
/// ECR `GetAuthorizationToken` (registry logins for `--ecr-region`) and KMS `GetPublicKey`
/// (ImagePolicy keys held in KMS).
#[tokio::test(flavor = "multi_thread")]
async fn ecr_logins_and_kms_public_keys_match_the_aws_cli() {
    use base64::Engine as _;
    use rampart_identity::aws_json::{AwsJson, ecr_login, kms_public_key};
    let Some([moto, aws]) = peers(["moto_server", "aws"]) else { return };
    let (_moto, endpoint) = start_moto(&moto);
    let env_pairs = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
    ];
    let cli = |args: &[&str]| {
        let out = Command::new(&aws).args(args).envs(env_pairs).output().unwrap();
        assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let env = |k: &str| env_pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| v.to_string());
    let creds = rampart_identity::client::load_credentials(&env).unwrap();

    let ecr = AwsJson::new(creds.clone(), "us-east-1", "ecr", "AmazonEC2ContainerRegistry_V20150921", &env)
        .unwrap();
    let logins = ecr_login(&ecr).await.unwrap();
    let expected = cli(&["ecr", "get-authorization-token"]);
    let data = &expected["authorizationData"][0];
    let token = base64::engine::general_purpose::STANDARD
        .decode(data["authorizationToken"].as_str().unwrap())
        .unwrap();
    let (user, password) = std::str::from_utf8(&token).unwrap().split_once(':').unwrap();
    assert_eq!(logins.len(), 1);
    assert_eq!((logins[0].user.as_str(), logins[0].password.as_str()), (user, password));
    assert_eq!(format!("https://{}", logins[0].registry), data["proxyEndpoint"].as_str().unwrap());

    let arn = cli(&["kms", "create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY"])["KeyMetadata"]
        ["Arn"]
        .as_str()
        .unwrap()
        .to_string();
    let kms = AwsJson::new(creds.clone(), "us-east-1", "kms", "TrentService", &env).unwrap();
    let der = kms_public_key(&kms, &arn).await.unwrap();
    let expected =
        cli(&["kms", "get-public-key", "--key-id", &arn])["PublicKey"].as_str().unwrap().to_string();
    assert_eq!(base64::engine::general_purpose::STANDARD.encode(der), expected);
    // An encryption key is not a signing key; a missing key names itself.
    let encryption = cli(&["kms", "create-key"])["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let e = kms_public_key(&kms, &encryption).await.unwrap_err();
    assert!(e.contains("is not a signing key"), "{e}");
    let e = kms_public_key(&kms, "alias/none").await.unwrap_err();
    assert!(e.contains("GetPublicKey: NotFoundException"), "{e}");
}
