//! The real signing peers, started by the tests on loopback: the CNCF distribution registry
//! (Debian's `docker-registry`), crane to push images without a Docker engine, cosign to sign
//! and attest them and to check Rampart's verdicts. cosign and crane come from
//! `scripts/peers.sh` (pinned in e2e/tools/signing/go.mod). A missing peer fails the test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The bin directory of scripts/peers.sh (built on first use).
pub fn peers_bin() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(root.join("scripts/peers.sh")).stderr(Stdio::inherit()).output().unwrap();
    assert!(out.status.success(), "scripts/peers.sh failed: cosign and crane are required");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A throw-away registry on a free loopback port, stopped on drop.
pub struct Registry {
    pub host: String,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub bin: PathBuf,
    /// The CA of a registry served over HTTPS (`start_secure`).
    pub ca: Option<PathBuf>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Registry {
    pub fn start() -> Registry {
        let registry = Path::new("/usr/bin/docker-registry");
        assert!(
            registry.exists(),
            "docker-registry (the CNCF distribution server) is required: apt-get install docker-registry"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\nlog:\n  level: error\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let mut r = Registry { host, dir, child: None, bin: peers_bin(), ca: None };
        r.run(&config);
        r
    }

    /// A registry over HTTPS (a throw-away CA, `ca.pem`) that wants `user`/`password`
    /// (htpasswd, bcrypt); crane is logged in (`$HOME/.docker/config.json` in its directory).
    pub fn start_secure(user: &str, password: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let host = format!("127.0.0.1:{port}");
        let d = dir.path();
        new_ca(d, "registry-ca", "/CN=registry CA");
        issue(
            d,
            "registry-ca",
            "tls",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        let hash = bcrypt::hash(password, 4).unwrap();
        std::fs::write(d.join("htpasswd"), format!("{user}:{hash}\n")).unwrap();
        let config = d.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {data}\nhttp:\n  addr: {host}\n  tls:\n    certificate: {cert}\n    key: {key}\nauth:\n  htpasswd:\n    realm: rampart-test\n    path: {htpasswd}\nlog:\n  level: error\n",
                data = d.join("data").display(),
                cert = d.join("tls.pem").display(),
                key = d.join("tls.key").display(),
                htpasswd = d.join("htpasswd").display(),
            ),
        )
        .unwrap();
        let ca = d.join("registry-ca.pem");
        let mut r = Registry { host, dir, child: None, bin: peers_bin(), ca: Some(ca) };
        r.run(&config);
        let out =
            r.tool("crane").args(["auth", "login", &r.host, "-u", user, "-p", password]).output().unwrap();
        assert!(out.status.success(), "crane auth login: {}", String::from_utf8_lossy(&out.stderr));
        r
    }

    fn run(&mut self, config: &Path) {
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&self.host).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start on {}", self.host);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the registry (the "registry down" case).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(self.bin.join(name));
        c.env("COSIGN_PASSWORD", "").env("HOME", self.dir.path()).current_dir(self.dir.path());
        if let Some(ca) = &self.ca {
            c.env("SSL_CERT_FILE", ca);
        }
        c
    }

    /// Push a one-layer image holding `content` to `repo:tag`; returns its digest.
    pub fn push(&self, repo_tag: &str, content: &str) -> String {
        let layer = self.dir.path().join(format!("layer-{}.tar", fastrand_name()));
        let src = self.dir.path().join("content");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("content.txt"), content).unwrap();
        let tar = Command::new("tar")
            .arg("cf")
            .arg(&layer)
            .arg("-C")
            .arg(&src)
            .arg("content.txt")
            .status()
            .unwrap();
        assert!(tar.success());
        let reference = format!("{}/{repo_tag}", self.host);
        let out = self
            .tool("crane")
            .args(["append", "--insecure", "-f"])
            .arg(&layer)
            .args(["-t", &reference])
            .output()
            .unwrap();
        assert!(out.status.success(), "crane append: {}", String::from_utf8_lossy(&out.stderr));
        let pushed = String::from_utf8(out.stdout).unwrap();
        pushed.trim().rsplit_once('@').expect("crane prints ref@digest").1.to_string()
    }

    /// A cosign key pair (`name.key`, `name.pub`) in the registry's directory.
    pub fn keypair(&self, name: &str) -> PathBuf {
        let out =
            self.tool("cosign").args(["generate-key-pair", "--output-key-prefix", name]).output().unwrap();
        assert!(out.status.success(), "cosign generate-key-pair: {}", String::from_utf8_lossy(&out.stderr));
        self.dir.path().join(format!("{name}.pub"))
    }

    /// Import a PEM private key (RSA, ECDSA, Ed25519) as a cosign key pair.
    pub fn import_key(&self, pem: &Path, name: &str) -> PathBuf {
        let out = self
            .tool("cosign")
            .args(["import-key-pair", "-y", "--key"])
            .arg(pem)
            .args(["--output-key-prefix", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "cosign import-key-pair: {}", String::from_utf8_lossy(&out.stderr));
        self.dir.path().join(format!("{name}.pub"))
    }

    /// `cosign sign` with a key (no transparency log: everything stays on loopback).
    pub fn sign(&self, key: &str, image: &str, extra: &[&str]) {
        let out = self
            .tool("cosign")
            .args([
                "sign",
                "--key",
                &format!("{key}.key"),
                "--tlog-upload=false",
                "--allow-insecure-registry",
                "-y",
            ])
            .args(extra)
            .arg(format!("{}/{image}", self.host))
            .output()
            .unwrap();
        assert!(out.status.success(), "cosign sign: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `cosign attest` of a predicate (JSON) of a cosign predicate `type`.
    pub fn attest(&self, key: &str, image: &str, predicate_type: &str, predicate: &str) {
        let file = self.dir.path().join(format!("predicate-{}.json", fastrand_name()));
        std::fs::write(&file, predicate).unwrap();
        let out = self
            .tool("cosign")
            .args([
                "attest",
                "--key",
                &format!("{key}.key"),
                "--tlog-upload=false",
                "--allow-insecure-registry",
                "-y",
            ])
            .args(["--type", predicate_type, "--predicate"])
            .arg(&file)
            .arg(format!("{}/{image}", self.host))
            .output()
            .unwrap();
        assert!(out.status.success(), "cosign attest: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `cosign verify` (or `verify-attestation`) with `args`: whether cosign accepts the image.
    pub fn cosign_accepts(&self, command: &str, image: &str, args: &[&str]) -> bool {
        self.tool("cosign")
            .args([command, "--insecure-ignore-tlog", "--allow-insecure-registry"])
            .args(args)
            .arg(format!("{}/{image}", self.host))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn fastrand_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// An admitter with one ImagePolicy, `release`, over every image of `registry` (`spec`: the
/// policy's lines after `images`, indented two spaces), reaching it over plain HTTP.
pub async fn admitter(
    registry: &Registry,
    spec: &str,
    cache: rampart_images::verify::CacheSettings,
    deadline: Duration,
) -> rampart_images::admission::ImageAdmitter {
    use rampart_images::registry::{Credentials, Registry as OciRegistry, RegistrySettings};
    let yaml = format!(
        "apiVersion: rampart.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {{name: release}}\nspec:\n  images: [\"{}/*\"]\n{spec}",
        registry.host
    );
    let documents =
        rampart_images::policy::parse_documents(&yaml, "test policy", Some(registry.dir.path())).unwrap();
    let policies =
        rampart_images::verify::PolicySet::load(documents, &rampart_images::authority::NoExternalKeys)
            .await
            .unwrap();
    let settings = RegistrySettings {
        insecure_registries: vec![registry.host.clone()],
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let verifier = rampart_images::verify::Verifier::new(OciRegistry::new(&settings).unwrap(), &cache);
    rampart_images::admission::ImageAdmitter::new(policies, verifier, Credentials::default(), deadline)
}

/// A Pod `default/p` with one container per image.
pub fn pod<S: AsRef<str>>(images: &[S]) -> serde_json::Value {
    let containers: Vec<serde_json::Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| serde_json::json!({"name": format!("c{i}"), "image": image.as_ref()}))
        .collect();
    serde_json::json!({"kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": containers}})
}

/// openssl, for keys and a throw-away CA.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and a code-signing leaf for `identity` issued by `issuer` (both Fulcio issuer
/// extensions), as `ca.pem`, `leaf.pem`, `leaf.key` in `dir`.
pub fn certificate_authority(dir: &Path, identity: &str, issuer: &str) {
    new_ca(dir, "ca", "/CN=Rampart Test CA");
    let hex: Vec<String> = issuer.bytes().map(|b| format!("{b:02X}")).collect();
    let extensions = format!(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n\
         subjectAltName=email:{identity}\n1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:{issuer}\n\
         1.3.6.1.4.1.57264.1.1=DER:{}\n",
        hex.join(":")
    );
    issue(dir, "ca", "leaf", "/CN=signer", &extensions);
}

/// A self-signed P-256 CA: `NAME.pem`, `NAME.key` in `dir`.
fn new_ca(dir: &Path, name: &str, subject: &str) {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "30",
            "-subj",
            subject,
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
}

/// A P-256 certificate `NAME.pem` (key `NAME.key`) issued by the CA `CA` with `extensions`.
fn issue(dir: &Path, ca: &str, name: &str, subject: &str, extensions: &str) {
    let (key, csr, pem, ext) =
        (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
    std::fs::write(dir.join(&ext), extensions).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "10",
            "-extfile",
            &ext,
        ],
    );
}
