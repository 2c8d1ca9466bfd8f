//! The plugin over its unix socket, as the apiserver calls it, with moto as AWS KMS: remote
//! calls counted across 10,000 encryptions, three rotations of the key behind the alias and a
//! restart that decrypts everything again; the encryption context; a disabled key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rampart_kms::envelope::Envelope;
use rampart_kms::metrics::RemoteLabels;
use rampart_kms::proto::{DecryptRequest, EncryptRequest, StatusRequest};
use rampart_kms::remote::{AwsKmsKey, RemoteKey};

struct Moto(Child, String);
impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// moto and the AWS CLI from the test venv (scripts/test.sh installs them); a missing peer
/// fails under RAMPART_REQUIRE_AWS_PEERS (CI) and skips otherwise.
fn peers() -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::var("RAMPART_AWS_PEERS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv-peers/bin")));
    let (moto, aws) = (dir.join("moto_server"), dir.join("aws"));
    if moto.exists() && aws.exists() {
        return Some((moto, aws));
    }
    assert!(
        std::env::var_os("RAMPART_REQUIRE_AWS_PEERS").is_none(),
        "moto_server and aws are required in {}",
        dir.display()
    );
    None
}

fn start_moto(moto: &PathBuf) -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(moto)
        .args(["-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto(child, format!("http://127.0.0.1:{port}"))
}

fn aws(cli: &PathBuf, endpoint: &str, args: &[&str]) -> String {
    let out = Command::new(cli)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .output()
        .unwrap();
    assert!(out.status.success(), "aws {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The plugin's AWS KMS key, pointed at moto.
async fn key(endpoint: &str, cluster: &str) -> AwsKmsKey {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(rampart_kms::remote::http_client())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_kms::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    AwsKmsKey::from_config("alias/secrets", cluster, &config)
}

fn remote_calls(envelope: &Envelope, operation: &'static str) -> u64 {
    envelope.metrics.remote_calls.get_or_create(&RemoteLabels { operation }).get()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_calls_once_per_local_key_across_rotations_and_a_restart() {
    let Some((moto, cli)) = peers() else { return };
    let moto = start_moto(&moto);
    let first = aws(&cli, &moto.1, &["kms", "create-key", "--query", "KeyMetadata.Arn", "--output", "text"]);
    aws(&cli, &moto.1, &["kms", "create-alias", "--alias-name", "alias/secrets", "--target-key-id", &first]);

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("kms.sock");
    let envelope =
        Arc::new(Envelope::new(Arc::new(key(&moto.1, "test-cluster").await), Duration::ZERO, Arc::default()));
    let listener = rampart_kms::server::bind(&socket).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(rampart_kms::server::serve(listener, envelope.clone(), async {
        let _ = stopped.await;
    }));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o600,
        "only root may ask it to decrypt"
    );
    let mut client = rampart_kms::client::connect(&socket).await.unwrap();

    let status = client.status(StatusRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (status.version.as_str(), status.healthz.as_str(), status.key_id.as_str()),
        ("v2", "ok", first.as_str())
    );

    // 10,000 encryptions across three rotations of the key behind the alias.
    let mut sealed = Vec::new();
    let mut keys = vec![first.clone()];
    for round in 0..4usize {
        if round > 0 {
            let key =
                aws(&cli, &moto.1, &["kms", "create-key", "--query", "KeyMetadata.Arn", "--output", "text"]);
            aws(
                &cli,
                &moto.1,
                &["kms", "update-alias", "--alias-name", "alias/secrets", "--target-key-id", &key],
            );
            let status = client.status(StatusRequest {}).await.unwrap().into_inner();
            assert_eq!(status.key_id, key, "a re-pointed alias is a new key id");
            keys.push(key);
        }
        for i in 0..2_500u32 {
            let plaintext: Vec<u8> = [round as u8; 28].into_iter().chain(i.to_be_bytes()).collect();
            let answer = client
                .encrypt(EncryptRequest { plaintext: plaintext.clone(), uid: format!("{round}-{i}") })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(answer.key_id, keys[round]);
            sealed.push((plaintext, answer));
        }
    }
    let wraps = remote_calls(&envelope, "encrypt");
    assert_eq!(wraps, 4, "one remote Encrypt per local key: the first and three rotations");

    // A restart: a new process decrypts all 10,000, as an apiserver re-reading everything.
    let restarted =
        Envelope::new(Arc::new(key(&moto.1, "test-cluster").await), Duration::ZERO, Arc::default());
    for (plaintext, answer) in &sealed {
        assert_eq!(
            &restarted.decrypt(&answer.ciphertext, &answer.key_id, &answer.annotations).await.unwrap(),
            plaintext
        );
    }
    let unwraps = remote_calls(&restarted, "decrypt");
    assert_eq!(unwraps, 4, "one remote Decrypt per local key after a restart");
    println!(
        "remote KMS calls for 10,000 encryptions, 3 rotations and a restart: {wraps} Encrypt + {unwraps} Decrypt"
    );

    // Over the socket too; a tampered ciphertext is refused as invalid, naming the cause.
    let (plaintext, answer) = &sealed[0];
    let request = DecryptRequest {
        ciphertext: answer.ciphertext.clone(),
        uid: "u".into(),
        key_id: answer.key_id.clone(),
        annotations: answer.annotations.clone(),
    };
    assert_eq!(&client.decrypt(request.clone()).await.unwrap().into_inner().plaintext, plaintext);
    let mut tampered = request.clone();
    tampered.ciphertext[5] ^= 1;
    let e = client.decrypt(tampered).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("does not authenticate"), "{}", e.message());

    // Another cluster's encryption context: the wrapped key does not open there.
    let other =
        Envelope::new(Arc::new(key(&moto.1, "another-cluster").await), Duration::ZERO, Arc::default());
    let e =
        other.decrypt(&answer.ciphertext, &answer.key_id, &answer.annotations).await.unwrap_err().to_string();
    assert!(e.contains("Decrypt"), "{e}");

    // The key disabled: Status unhealthy, Encrypt refused (never a plaintext answer).
    // (moto's DisableKey takes the key id, not the ARN.)
    let key_id = keys.last().unwrap().rsplit('/').next().unwrap();
    aws(&cli, &moto.1, &["kms", "disable-key", "--key-id", key_id]);
    let status = client.status(StatusRequest {}).await.unwrap().into_inner();
    assert!(status.healthz.contains("disabled"), "{}", status.healthz);
    let e = client.encrypt(EncryptRequest { plaintext: vec![1; 32], uid: "x".into() }).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert!(e.message().contains("refusing to encrypt"), "{}", e.message());
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_remote_key_counts_its_calls() {
    let local = rampart_kms::remote::LocalKeyFile::new(&[3; 32]).unwrap();
    let (wrapped, _) = local.wrap(b"k").await.unwrap();
    local.unwrap(&wrapped).await.unwrap();
    assert_eq!(local.calls(), 2);
}
