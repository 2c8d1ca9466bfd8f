//! Helpers shared by the tests that run real peers (moto, the AWS CLI, boto3, rampart itself).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod sts;

pub fn peer(name: &str) -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("RAMPART_AWS_PEERS_BIN") {
        let p = PathBuf::from(dir).join(name);
        return p.exists().then_some(p);
    }
    on_path(name)
}

/// `name` in a directory of `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.exists()))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Kill(pub Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on {port}");
}

/// A `rampart agent` on loopback talking to the broker on `broker_port`, listening once this
/// returns; the process dies with the guard.
pub struct Agent {
    pub process: Kill,
    pub port: u16,
    pub probe_port: u16,
    pub metrics_port: u16,
}

pub fn start_agent(cluster_name: &str, broker_port: u16) -> Agent {
    let (port, probe_port, metrics_port) = (free_port(), free_port(), free_port());
    let process = Kill(
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args([
                "agent",
                "--cluster-name",
                cluster_name,
                "--broker",
                &format!("http://127.0.0.1:{broker_port}"),
            ])
            .args(["--bind-hosts", "127.0.0.1", "--port", &port.to_string(), "--accepted-hosts", "127.0.0.1"])
            .args(["--probe-port", &probe_port.to_string(), "--metrics-address", "127.0.0.1"])
            .args(["--metrics-port", &metrics_port.to_string()])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(broker_port);
    wait_for_port(port);
    wait_for_port(metrics_port);
    Agent { process, port, probe_port, metrics_port }
}

/// Start moto on a free port; the process dies with the returned guard.
pub fn start_moto(moto: &std::path::Path) -> (Kill, String) {
    let port = free_port();
    let child = Command::new(moto)
        .args(["-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Kill(child);
    wait_for_port(port);
    (guard, format!("http://127.0.0.1:{port}"))
}

/// The peers a test needs, or `None` to skip — unless `RAMPART_REQUIRE_AWS_PEERS` is set, when
/// a missing peer fails the test.
pub fn peers<const N: usize>(names: [&str; N]) -> Option<[PathBuf; N]> {
    let found = names.map(peer);
    if found.iter().all(Option::is_some) {
        return Some(found.map(|p| p.unwrap()));
    }
    assert!(
        std::env::var_os("RAMPART_REQUIRE_AWS_PEERS").is_none(),
        "{names:?} are required (pip install 'moto[server]' awscli boto3, or set RAMPART_AWS_PEERS_BIN)"
    );
    eprintln!("skipping: {names:?} not all installed (set RAMPART_AWS_PEERS_BIN)");
    None
}
