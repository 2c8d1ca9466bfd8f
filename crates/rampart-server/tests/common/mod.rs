//! What the endpoint tests share: a permit-all engine and a plain-HTTP server on loopback.
#![allow(clippy::unwrap_used, dead_code)] // test helpers; not every test file uses each one

use std::sync::Arc;

use rampart_policy::EngineOptions;
use rampart_policy::store::{LiveEngine, PolicySources};
use rampart_server::serve::RunningServer;
use rampart_server::{AppState, ServeConfig, Transport, start};

/// An engine over one `permit(principal, action, resource);` policy; keep the dir alive.
pub fn permit_all() -> (Arc<LiveEngine>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.cedar"), "permit(principal, action, resource);").unwrap();
    let (live, _) =
        LiveEngine::load(PolicySources::new(vec![dir.path().into()], EngineOptions::default())).unwrap();
    (live, dir)
}

/// Serve `state` over plain HTTP on a free loopback port.
pub fn serve(state: AppState) -> RunningServer {
    let config = ServeConfig { addr: "127.0.0.1:0".parse().unwrap(), transport: Transport::PlainHttp };
    start(&config, state).unwrap()
}
