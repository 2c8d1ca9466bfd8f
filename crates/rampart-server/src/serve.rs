//! Binding and running the server.
//!
//! TLS is the default. Plain HTTP exists for local tests and load benchmarks only: it must be
//! asked for explicitly and is refused on any address other than loopback, because the
//! apiserver sends bearer-equivalent identity data in every review.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use tokio::task::JoinHandle;

use crate::router::{AppState, router};
use crate::tls::{self, CertSource};

/// Errors starting the server; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "refusing plain HTTP on {0}: plain HTTP is only allowed on a loopback address (127.0.0.1 or ::1); \
         drop --insecure-http to serve TLS"
    )]
    PlainHttpNotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ServerError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ServerError::Io { path: path.display().to_string(), source }
    }
}

/// How to talk to clients.
#[derive(Debug, Clone)]
pub enum Transport {
    Tls(CertSource),
    /// Plain HTTP; loopback only.
    PlainHttp,
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub addr: SocketAddr,
    pub transport: Transport,
}

/// A server running in the background.
pub struct RunningServer {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// `https` or `http`.
    pub scheme: &'static str,
    /// The certificate clients must trust (the generated CA, or the operator's certificate).
    pub cert_file: Option<PathBuf>,
    handle: Handle<SocketAddr>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Base URL, e.g. `https://127.0.0.1:10288`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Stop accepting, let in-flight requests finish (up to `grace`), and wait.
    pub async fn shutdown(self, grace: std::time::Duration) -> std::io::Result<()> {
        self.handle.graceful_shutdown(Some(grace));
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// Wait until the server stops (it stops on [`RunningServer::shutdown`] or an I/O error).
    pub async fn wait(self) -> std::io::Result<()> {
        self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }

    /// A handle that can stop the server from elsewhere (e.g. a signal handler).
    pub fn handle(&self) -> Handle<SocketAddr> {
        self.handle.clone()
    }
}

/// Bind and start serving in the background. Must be called inside a tokio runtime.
pub fn start(config: &ServeConfig, state: AppState) -> Result<RunningServer, ServerError> {
    start_router(config, router(state))
}

/// Serve any router with the same rules (TLS by default, plain HTTP on loopback only).
pub fn start_router(config: &ServeConfig, app: axum::Router) -> Result<RunningServer, ServerError> {
    if matches!(config.transport, Transport::PlainHttp) && !config.addr.ip().is_loopback() {
        return Err(ServerError::PlainHttpNotLoopback(config.addr));
    }
    let listener =
        TcpListener::bind(config.addr).map_err(|source| ServerError::Bind { addr: config.addr, source })?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind { addr: config.addr, source })?;
    let handle = Handle::new();
    let app = app.into_make_service();
    let bind_err = |source| ServerError::Bind { addr, source };
    let (scheme, cert_file, task) = match &config.transport {
        Transport::PlainHttp => {
            let server = axum_server::from_tcp(listener).map_err(bind_err)?.handle(handle.clone());
            ("http", None, tokio::spawn(server.serve(app)))
        }
        Transport::Tls(source) => {
            let (cert, key) = tls::ensure_files(source)?;
            let anchor = tls::trust_anchor(source)?;
            let rustls = RustlsConfig::from_config(tls::server_config(&cert, &key)?);
            // cert-manager and Secret volumes replace the files in place: pick the new pair
            // up without a restart (in-flight connections keep theirs).
            tokio::spawn(tls::reload_on_change(rustls.clone(), cert, key, tls::RELOAD_INTERVAL));
            let server = axum_server::tls_rustls::from_tcp_rustls(listener, rustls)
                .map_err(bind_err)?
                .handle(handle.clone());
            ("https", Some(anchor), tokio::spawn(server.serve(app)))
        }
    };
    tracing::info!(%addr, scheme, "rampart is serving");
    Ok(RunningServer { addr, scheme, cert_file, handle, task })
}
