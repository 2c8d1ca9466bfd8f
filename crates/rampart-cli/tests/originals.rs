//! Side by side with the Go original: `rampart serve`'s `/v1/authenticate` and
//! `aws-iam-authenticator server` (sigs.k8s.io/aws-iam-authenticator, pinned in
//! e2e/tools/originals/go.mod, built by scripts/peers.sh) get the same tokens — from `rampart
//! token` and `aws eks get-token`, valid and mutated — against the same moto STS and the same
//! role and user mappings, and must agree on accept/reject and on the username, uid, groups and
//! extras they map to.
//!
//! The original sends a token's presigned URL to the real STS host it names
//! (`https://sts.us-east-1.amazonaws.com/…`), so it runs in its own mount namespace whose
//! `/etc/hosts` points the STS hosts at 127.0.0.2, where a TLS front (certificate from a CA
//! made here, trusted through `SSL_CERT_FILE`) forwards to moto; Rampart reaches the same
//! front over plain HTTP with `--sts-endpoint`. Like real STS, the front answers JSON when asked
//! (moto answers XML) and identifies the caller from the presigned credential.
//!
//! Needs root (a mount namespace, port 443 on 127.0.0.2), `unshare`, moto and awscli; fails,
//! never skips, under `RAMPART_REQUIRE_AWS_PEERS` (as `.ci/run` sets).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::sts::{STS_HOSTS, presigned_authorization, sts_host_tls};
use common::{Kill, free_port, on_path, peers, start_moto, wait_for_port};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

const CLUSTER: &str = "diff";
const ACCOUNT: &str = "123456789012";
/// Where the original's `/etc/hosts` sends the STS hosts.
const STS_ADDRESS: &str = "127.0.0.2";

/// The text between `<tag>` and `</tag>` in moto's XML answer.
fn xml_field<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(&xml[start..end])
}

/// STS in front of moto: the presigned credential becomes the Authorization header moto reads,
/// and the answer is JSON when the caller asks for it, as real STS does.
async fn sts(
    State(moto): State<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = query.unwrap_or_default();
    let resp = reqwest::Client::new()
        .request(method, format!("{moto}/?{query}"))
        .header("authorization", presigned_authorization(&query))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let xml = resp.text().await.unwrap();
    let wants_json = headers.get(header::ACCEPT).is_some_and(|a| a.as_bytes() == b"application/json");
    if !wants_json || !status.is_success() {
        return (status, xml).into_response();
    }
    let field = |tag| xml_field(&xml, tag).unwrap_or_default();
    let body = json!({"GetCallerIdentityResponse": {
        "GetCallerIdentityResult": {"Account": field("Account"), "Arn": field("Arn"), "UserId": field("UserId")},
        "ResponseMetadata": {"RequestId": field("RequestId")},
    }});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The original, built by scripts/peers.sh beside the control plane.
fn original() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(root.join("scripts/peers.sh")).stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "scripts/peers.sh failed: the Go originals are required");
    let bin = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("aws-iam-authenticator");
    assert!(bin.exists(), "{} is missing", bin.display());
    bin
}

/// The mappings both authenticators use, as aws-auth `data` (Rampart) and the original's
/// `server:` config keys.
const MAP_ROLES: &str = "\
- rolearn: arn:aws:iam::123456789012:role/k8s-admin
  username: \"admin:{{SessionName}}\"
  groups: [admins]
- rolearn: arn:aws:iam::123456789012:role/dev
  username: \"dev:{{AccountID}}:{{SessionName}}\"
  groups: [devs, \"team-{{SessionName}}\"]
";
const MAP_USERS: &str = "\
- userarn: arn:aws:iam::123456789012:user/alice
  username: alice
  groups: [readers]
";

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

/// A token's presigned URL, decoded.
fn url_of(token: &str) -> String {
    let b64 = token.strip_prefix("k8s-aws-v1.").unwrap();
    String::from_utf8(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
}

fn token_of(url: &str) -> String {
    format!("k8s-aws-v1.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url))
}

/// Replace one query parameter's value (matched case-insensitively).
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (base, query) = url.split_once('?').unwrap();
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case(name) => format!("{k}={value}"),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// What an authenticator answered: the user it mapped the token to, or `None` for a refusal.
fn answer(body: &Value) -> Option<Value> {
    let status = &body["status"];
    let user = &status["user"];
    (status["authenticated"] == json!(true)).then(|| {
        json!({"username": user["username"], "uid": user["uid"], "groups": user["groups"], "extra": user["extra"]})
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_get_the_same_answer_from_rampart_and_aws_iam_authenticator() {
    let Some([moto, aws]) = peers(["moto_server", "aws"]) else { return };
    let original = original();
    let unshare = on_path("unshare").expect("unshare is required (util-linux)");
    let (_moto, moto_url) = start_moto(&moto);
    let dir = tempfile::tempdir().unwrap();

    // STS: plain for Rampart, TLS on 127.0.0.2:443 for the original.
    let app = axum::Router::new().fallback(sts).with_state(moto_url.clone());
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sts_url = format!("http://{}", plain.local_addr().unwrap());
    tokio::spawn({
        let app = app.clone();
        async move { axum::serve(plain, app).await.unwrap() }
    });
    let ca_file = dir.path().join("sts-ca.pem");
    let tls = sts_host_tls(&ca_file);
    let tls_addr: std::net::SocketAddr = format!("{STS_ADDRESS}:443").parse().unwrap();
    tokio::spawn(async move { axum_server::bind_rustls(tls_addr, tls).serve(app.into_make_service()).await });

    // IAM at moto: two roles and a user with a key.
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEBASE"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_REGION", "us-east-1"),
    ];
    let aws_json = |args: &[&str]| -> Value {
        let out =
            Command::new(&aws).args(args).envs(env).env("AWS_ENDPOINT_URL", &moto_url).output().unwrap();
        assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    };
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    for role in ["k8s-admin", "dev", "unmapped"] {
        aws_json(&["iam", "create-role", "--role-name", role, "--assume-role-policy-document", trust]);
    }
    aws_json(&["iam", "create-user", "--user-name", "alice"]);
    let key = aws_json(&["iam", "create-access-key", "--user-name", "alice"]);
    let alice_key = [
        ("AWS_ACCESS_KEY_ID", key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned()),
        ("AWS_SECRET_ACCESS_KEY", key["AccessKey"]["SecretAccessKey"].as_str().unwrap().to_owned()),
    ];

    // Rampart.
    std::fs::write(dir.path().join("p.cedar"), "permit(principal, action, resource);").unwrap();
    let aws_auth = dir.path().join("aws-auth.yaml");
    std::fs::write(
        &aws_auth,
        format!(
            "data:\n  mapRoles: |\n{}  mapUsers: |\n{}",
            indent(MAP_ROLES, "    "),
            indent(MAP_USERS, "    ")
        ),
    )
    .unwrap();
    let rampart_port = free_port();
    let _rampart = Kill(
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["serve", "-p", dir.path().to_str().unwrap(), "--insecure-http", "--no-watch"])
            .args(["--listen", &format!("127.0.0.1:{rampart_port}"), "--cluster-id", CLUSTER])
            .args(["--aws-auth", aws_auth.to_str().unwrap(), "--authentication-mode", "CONFIG_MAP"])
            .args(["--sts-endpoint", &sts_url, "--region", "us-east-1"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The original, seeing the STS hosts at 127.0.0.2.
    let config = dir.path().join("authenticator.yaml");
    std::fs::write(
        &config,
        format!(
            "clusterID: {CLUSTER}\nserver:\n  mapRoles:\n{}  mapUsers:\n{}",
            indent(MAP_ROLES, "  "),
            indent(MAP_USERS, "  ")
        ),
    )
    .unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 localhost\n{STS_ADDRESS} {}\n", STS_HOSTS.join(" "))).unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let original_port = free_port();
    let _original = Kill(
        Command::new(&unshare)
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount --bind \"$0\" /etc/hosts && exec \"$@\"")
            .arg(&hosts)
            .arg(&original)
            .args(["server", "-c", config.to_str().unwrap(), "--address", "127.0.0.1"])
            .args(["--port", &original_port.to_string(), "--state-dir", state.to_str().unwrap()])
            .arg(format!("--generate-kubeconfig={}", state.join("kubeconfig.yaml").display()))
            .env("SSL_CERT_FILE", &ca_file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("original.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for_port(rampart_port);
    wait_for_port(original_port);

    let client = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let review = async |url: String, token: &str| -> (u16, Value) {
        let body = json!({"apiVersion": "authentication.k8s.io/v1beta1", "kind": "TokenReview", "spec": {"token": token}});
        let resp = client.post(url).json(&body).timeout(Duration::from_secs(20)).send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    };

    // Tokens: rampart token (an assumed role, a user's key), aws eks get-token.
    let rampart_token = |role: Option<&str>, session: &str, keys: &[(&str, String)]| -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
        cmd.args(["token", "--cluster-id", CLUSTER, "--region", "us-east-1"]).envs(env);
        if let Some(role) = role {
            cmd.args([
                "--role-arn",
                &format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
                "--session-name",
                session,
            ]);
        }
        let out = cmd
            .envs(keys.iter().map(|(k, v)| (*k, v.as_str())))
            .env("AWS_ENDPOINT_URL_STS", &moto_url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let cred: Value = serde_json::from_slice(&out.stdout).unwrap();
        cred["status"]["token"].as_str().unwrap().to_owned()
    };
    let assumed = aws_json(&[
        "sts",
        "assume-role",
        "--role-arn",
        &format!("arn:aws:iam::{ACCOUNT}:role/dev"),
        "--role-session-name",
        "bob",
    ]);
    let c = &assumed["Credentials"];
    let out = Command::new(&aws)
        .args(["eks", "get-token", "--cluster-name", CLUSTER, "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", c["AccessKeyId"].as_str().unwrap())
        .env("AWS_SECRET_ACCESS_KEY", c["SecretAccessKey"].as_str().unwrap())
        .env("AWS_SESSION_TOKEN", c["SessionToken"].as_str().unwrap())
        .env("AWS_STS_REGIONAL_ENDPOINTS", "regional")
        .output()
        .unwrap();
    assert!(out.status.success(), "aws eks get-token: {}", String::from_utf8_lossy(&out.stderr));
    let awscli: Value = serde_json::from_slice(&out.stdout).unwrap();
    let awscli_token = awscli["status"]["token"].as_str().unwrap().to_owned();

    let admin = rampart_token(Some("k8s-admin"), "carol", &[]);
    let admin_url = url_of(&admin);
    let mut cases: Vec<(&str, String, bool)> = vec![
        ("rampart token, assumed role", admin.clone(), true),
        ("rampart token, role with templates", rampart_token(Some("dev"), "dave", &[]), true),
        ("rampart token, IAM user key", rampart_token(None, "", &alice_key), true),
        ("aws eks get-token, assumed role", awscli_token, true),
        ("unmapped role", rampart_token(Some("unmapped"), "eve", &[]), false),
    ];
    let mutated: Vec<(&str, String)> = vec![
        ("expired", token_of(&with_param(&admin_url, "X-Amz-Date", "20200101T000000Z"))),
        ("X-Amz-Expires above 900", token_of(&with_param(&admin_url, "X-Amz-Expires", "901"))),
        ("wrong host", token_of(&admin_url.replace("sts.us-east-1.amazonaws.com", "sts.us-east-1.evil.com"))),
        ("another partition's host", token_of(&admin_url.replace("amazonaws.com", "amazonaws.com.cn"))),
        ("http scheme", token_of(&admin_url.replacen("https://", "http://", 1))),
        ("duplicate parameter, other case", token_of(&format!("{admin_url}&x-amz-date=20300101T000000Z"))),
        ("duplicate parameter, same name", token_of(&format!("{admin_url}&Action=GetCallerIdentity"))),
        ("unknown parameter", token_of(&format!("{admin_url}&X-Evil=1"))),
        ("another action", token_of(&with_param(&admin_url, "Action", "GetSessionToken"))),
        ("cluster id header not signed", token_of(&with_param(&admin_url, "X-Amz-SignedHeaders", "host"))),
        ("a path", token_of(&admin_url.replacen(".com/?", ".com/x?", 1))),
        ("oversized", token_of(&format!("{admin_url}&X-Amz-Security-Token={}", "A".repeat(5000)))),
        ("no prefix", admin.trim_start_matches("k8s-aws-v1.").to_owned()),
        ("not base64", "k8s-aws-v1.***".to_owned()),
        ("empty", String::new()),
    ];
    cases.extend(mutated.into_iter().map(|(name, token)| (name, token, false)));

    let mut report = Vec::new();
    for (name, token, accepted) in &cases {
        let (rampart_status, rampart) =
            review(format!("http://127.0.0.1:{rampart_port}/v1/authenticate"), token).await;
        let (original_status, original) =
            review(format!("https://127.0.0.1:{original_port}/authenticate"), token).await;
        let (ours, theirs) = (answer(&rampart), answer(&original));
        assert_eq!(
            ours,
            theirs,
            "{name}: Rampart {rampart_status} {rampart} vs aws-iam-authenticator {original_status} {original}\n(original's log: {})",
            std::fs::read_to_string(dir.path().join("original.log")).unwrap_or_default()
        );
        assert_eq!(ours.is_some(), *accepted, "{name}: {rampart}");
        assert_eq!(rampart_status, original_status, "{name}: the HTTP status differs");
        report.push(format!("{name}: both {}", if *accepted { "accept" } else { "refuse" }));
    }
    eprintln!("{}", report.join("\n"));
}
