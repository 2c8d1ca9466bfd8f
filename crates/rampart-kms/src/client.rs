//! A KMS v2 client over the plugin's unix socket: `rampart kms status`, the tests and the
//! benchmark talk to the plugin exactly as the apiserver does.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use crate::KmsError;
use crate::proto::key_management_service_client::KeyManagementServiceClient;
use crate::proto::{StatusRequest, StatusResponse};

/// A gRPC channel to the plugin at `socket`.
pub async fn connect(socket: &Path) -> Result<KeyManagementServiceClient<Channel>, KmsError> {
    let path: PathBuf = socket.to_path_buf();
    // The URI is required by the API and unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://kms.local")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { tokio::net::UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await
        .map_err(|e| KmsError::Config(format!("cannot connect to {}: {e}", socket.display())))?;
    Ok(KeyManagementServiceClient::new(channel))
}

/// The plugin's Status.
pub async fn status(socket: &Path) -> Result<StatusResponse, KmsError> {
    let mut client = connect(socket).await?;
    client
        .status(StatusRequest {})
        .await
        .map(|r| r.into_inner())
        .map_err(|e| KmsError::Config(format!("Status: {}", e.message())))
}
