//! The KMS v2 gRPC service on a unix socket, as kube-apiserver's `EncryptionConfiguration`
//! names it (`endpoint: unix:///…`). The socket is created with mode 0600: only the
//! apiserver's user (root on a control-plane node) may ask it to decrypt.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use crate::KmsError;
use crate::envelope::Envelope;
use crate::metrics::{LatencyLabels, OperationLabels};
use crate::proto::key_management_service_server::{KeyManagementService, KeyManagementServiceServer};
use crate::proto::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, StatusRequest, StatusResponse,
};

/// The version string KMS v2 plugins report.
pub const VERSION: &str = "v2";
/// The apiserver never sends more than a data-key seed; refuse anything larger.
const MAX_PLAINTEXT: usize = 1024;

/// The gRPC service over an [`Envelope`].
pub struct Plugin {
    pub envelope: Arc<Envelope>,
}

impl Plugin {
    fn observe(&self, operation: &'static str, started: Instant, ok: bool) {
        let m = &self.envelope.metrics;
        let result = if ok { "ok" } else { "error" };
        m.operations.get_or_create(&OperationLabels { operation, result }).inc();
        m.latency.get_or_create(&LatencyLabels { operation }).observe(started.elapsed().as_secs_f64());
    }
}

fn grpc_error(e: KmsError) -> Status {
    match e {
        KmsError::Ciphertext(_) => Status::invalid_argument(e.to_string()),
        KmsError::Unhealthy(_) | KmsError::Remote { .. } => Status::unavailable(e.to_string()),
        KmsError::Config(_) => Status::internal(e.to_string()),
    }
}

#[tonic::async_trait]
impl KeyManagementService for Plugin {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let started = Instant::now();
        let status = self.envelope.status().await;
        self.observe("status", started, status.healthz == "ok");
        Ok(Response::new(StatusResponse {
            version: VERSION.into(),
            healthz: status.healthz,
            key_id: status.key_id,
        }))
    }

    async fn encrypt(&self, request: Request<EncryptRequest>) -> Result<Response<EncryptResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        if request.plaintext.len() > MAX_PLAINTEXT {
            self.observe("encrypt", started, false);
            return Err(Status::invalid_argument(format!(
                "plaintext of {} bytes: a KMS v2 plugin encrypts data-key seeds (at most {MAX_PLAINTEXT})",
                request.plaintext.len()
            )));
        }
        let answer = self.envelope.encrypt(&request.plaintext).await;
        self.observe("encrypt", started, answer.is_ok());
        let sealed = answer.map_err(|e| {
            tracing::warn!(uid = request.uid, "encrypt refused: {e}");
            grpc_error(e)
        })?;
        Ok(Response::new(EncryptResponse {
            ciphertext: sealed.ciphertext,
            key_id: sealed.key_id,
            annotations: sealed.annotations.into_iter().collect(),
        }))
    }

    async fn decrypt(&self, request: Request<DecryptRequest>) -> Result<Response<DecryptResponse>, Status> {
        let started = Instant::now();
        let request = request.into_inner();
        let annotations: HashMap<String, Vec<u8>> = request.annotations;
        let answer = self.envelope.decrypt(&request.ciphertext, &request.key_id, &annotations).await;
        self.observe("decrypt", started, answer.is_ok());
        let plaintext = answer.map_err(|e| {
            tracing::warn!(uid = request.uid, key_id = request.key_id, "decrypt failed: {e}");
            grpc_error(e)
        })?;
        Ok(Response::new(DecryptResponse { plaintext }))
    }
}

/// Bind `socket` (a stale socket file is replaced; anything else there is an error), mode 0600.
pub fn bind(socket: &Path) -> Result<tokio::net::UnixListener, KmsError> {
    if let Ok(meta) = std::fs::symlink_metadata(socket) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(KmsError::Config(format!(
                "{} exists and is not a socket: refusing to replace it",
                socket.display()
            )));
        }
        std::fs::remove_file(socket).map_err(|e| KmsError::Config(format!("{}: {e}", socket.display())))?;
    }
    if let Some(dir) = socket.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| KmsError::Config(format!("{}: {e}", dir.display())))?;
    }
    let listener = tokio::net::UnixListener::bind(socket)
        .map_err(|e| KmsError::Config(format!("cannot listen on {}: {e}", socket.display())))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| KmsError::Config(format!("{}: {e}", socket.display())))?;
    Ok(listener)
}

/// Serve the plugin on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::UnixListener,
    envelope: Arc<Envelope>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), KmsError> {
    let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
    tonic::transport::Server::builder()
        .add_service(KeyManagementServiceServer::new(Plugin { envelope }))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| KmsError::Config(format!("the KMS plugin server stopped: {e}")))
}
