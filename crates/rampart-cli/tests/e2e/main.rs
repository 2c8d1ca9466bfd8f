//! End to end through a real control plane: etcd, kube-apiserver and kubectl built from the
//! pinned Kubernetes release (`scripts/peers.sh`), moto as AWS STS, and this build of
//! `rampart serve`, wired with `rampart kube-config`'s output unchanged (`scripts/cluster.sh`).
//!
//! One control plane serves every test of this binary; each test works in its own namespace.
//! The failure-and-recovery test stops Rampart, so it takes the control plane exclusively.
//! A component that cannot be built or started fails the tests: they never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly

mod admission;
mod authorization;
#[path = "../common/mod.rs"]
mod common;
mod default_roles;
mod demo;
mod detection;
mod failure;
mod helm;
mod iam;
mod images;
mod kms;
mod mutation;
mod netpol;
mod pod_identity;
mod policy_objects;
mod replay;
mod rotation;
mod scan;
mod tokens;
mod unified;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

/// The running control plane.
pub struct Cluster {
    pub dir: PathBuf,
    /// What `scripts/cluster.sh env` exports (KUBECONFIG, PATH, RAMPART_E2E_*).
    pub env: BTreeMap<String, String>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
/// Shared by the tests that only use the cluster; taken exclusively by the test that stops Rampart.
static GATE: RwLock<()> = RwLock::new(());

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn start() -> Result<Cluster, String> {
    let dir = std::env::temp_dir().join(format!("rampart-e2e-{}", std::process::id()));
    let script = repo_root().join("scripts/cluster.sh");
    let started = Instant::now();
    let out = Command::new(&script)
        .args(["up", "--dir"])
        .arg(&dir)
        .args(["--owner-pid", &std::process::id().to_string()])
        .env("RAMPART_BIN", env!("CARGO_BIN_EXE_rampart"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the real control plane did not start (scripts/cluster.sh up):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!("control plane up in {:.1}s ({})", started.elapsed().as_secs_f64(), dir.display());
    let out = Command::new(&script).args(["env", "--dir"]).arg(&dir).output().map_err(|e| e.to_string())?;
    let env = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            // `rampart` itself is on the PATH too: the wired kubeconfig's exec plugin runs it.
            let rampart_dir =
                Path::new(env!("CARGO_BIN_EXE_rampart")).parent().unwrap().display().to_string();
            let path = format!("{rampart_dir}:{}", std::env::var("PATH").unwrap_or_default());
            (k.to_owned(), v.trim_matches('"').replace("$PATH", &path))
        })
        .collect();
    Ok(Cluster { dir, env })
}

fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

/// The cluster, shared with other tests.
pub fn shared() -> (RwLockReadGuard<'static, ()>, &'static Cluster) {
    let c = cluster();
    (GATE.read().unwrap_or_else(|e| e.into_inner()), c)
}

/// The cluster, with no other test running.
pub fn exclusive() -> (RwLockWriteGuard<'static, ()>, &'static Cluster) {
    let c = cluster();
    (GATE.write().unwrap_or_else(|e| e.into_inner()), c)
}

/// What a command printed.
#[derive(Debug)]
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
    what: String,
}

impl Out {
    /// Stdout of a command that must succeed.
    #[track_caller]
    pub fn ok(self) -> String {
        assert!(self.ok, "{} failed:\n{}{}", self.what, self.stdout, self.stderr);
        self.stdout
    }
    /// Stderr of a command that must fail.
    #[track_caller]
    pub fn fails(self) -> String {
        assert!(!self.ok, "{} succeeded but should not have:\n{}", self.what, self.stdout);
        self.stderr
    }
    pub fn json(self) -> serde_json::Value {
        let text = self.ok();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// A kubectl invocation.
pub struct Kubectl<'a> {
    cluster: &'a Cluster,
    kubeconfig: PathBuf,
    env: Vec<(String, String)>,
    stdin: Option<String>,
}

impl Kubectl<'_> {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
    pub fn stdin(mut self, text: &str) -> Self {
        self.stdin = Some(text.into());
        self
    }
    pub fn run(self, args: &[&str]) -> Out {
        let mut cmd = Command::new("kubectl");
        cmd.envs(&self.cluster.env).env("KUBECONFIG", &self.kubeconfig).envs(self.env).args(args);
        cmd.stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        // kubectl is found on the cluster's PATH (its bin directory first).
        cmd.env("PATH", &self.cluster.env["PATH"]);
        let mut child = cmd.spawn().expect("kubectl runs");
        if let Some(text) = self.stdin {
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
            what: format!("kubectl {}", args.join(" ")),
        }
    }
}

impl Cluster {
    /// kubectl as the `system:masters` admin.
    pub fn admin(&self) -> Kubectl<'_> {
        self.user("admin")
    }
    /// kubectl with the client certificate of `users/<name>.kubeconfig`.
    pub fn user(&self, name: &str) -> Kubectl<'_> {
        self.kubeconfig(self.dir.join(format!("users/{name}.kubeconfig")))
    }
    pub fn kubeconfig(&self, path: PathBuf) -> Kubectl<'_> {
        Kubectl { cluster: self, kubeconfig: path, env: vec![], stdin: None }
    }
    /// Admin kubectl with `--as USER --as-group G…` prepended.
    pub fn as_user(&self, user: &str, groups: &[&str], args: &[&str]) -> Out {
        let mut all = vec![format!("--as={user}")];
        all.extend(groups.iter().map(|g| format!("--as-group={g}")));
        all.extend(args.iter().map(|a| a.to_string()));
        self.admin().run(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }
    /// Apply YAML as the admin.
    pub fn apply(&self, yaml: &str) {
        self.admin().stdin(yaml).run(&["apply", "-f", "-"]).ok();
    }
    /// A fresh namespace with its `default` service account (the ServiceAccount admission
    /// plugin needs it; there is no controller-manager to create it).
    pub fn namespace(&self, name: &str) {
        self.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {name}}}\n"
        ));
    }
    /// The e2e environment value `key` (RAMPART_E2E_*).
    pub fn var(&self, key: &str) -> &str {
        &self.env[key]
    }
    /// Run `scripts/cluster.sh <command>` on this cluster.
    pub fn script(&self, command: &str) {
        let out = Command::new(repo_root().join("scripts/cluster.sh"))
            .args([command, "--dir"])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "cluster.sh {command}: {}", String::from_utf8_lossy(&out.stderr));
    }
    /// GET a path of Rampart itself (HTTPS, trusting its CA); empty on failure.
    pub fn rampart_get(&self, path: &str) -> String {
        let out = Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(self.dir.join("rampart-certs/ca.crt"))
            .arg(format!("{}{path}", self.var("RAMPART_E2E_RAMPART")))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// The directory of the policy tier tests may edit (`-p` of the running Rampart).
    pub fn policies(&self) -> PathBuf {
        self.dir.join("policies/e2e")
    }
}

/// Retry `check` until it returns `Some`, for changes that take effect asynchronously
/// (policy reloads, refreshed namespace labels, the apiserver's decision cache).
#[track_caller]
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => panic!("{what}: not within {timeout:?}; last: {last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}
