//! The registry side, on `oci-client`: resolve a tag to its digest, and read cosign's
//! signature and attestation manifests with their layers — bounded in count and size, each
//! layer checked against its digest.
//!
//! Credentials come from [`Credentials`]: anonymous, a docker `config.json`, the pod's
//! `imagePullSecrets`, or an ECR token the caller obtained. Plain HTTP is used only for
//! registries named in `insecure_registries`, and only when they are on loopback.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciManifest;
pub use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::Digest as _;

use crate::cosign::Layer;

/// Signature and attestation manifests are small: refuse more than this.
pub const MAX_LAYERS: usize = 64;
pub const MAX_LAYER_BYTES: i64 = 1 << 20;

/// How to reach registries.
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    /// Extra CA certificates (PEM) for HTTPS registries.
    pub ca_pem: Vec<Vec<u8>>,
    /// `host:port` of loopback registries to talk to over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Per request (connect and read).
    pub timeout: Option<Duration>,
}

/// Registry credentials by host, as `config.json` and `.dockerconfigjson` write them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Credentials {
    by_host: BTreeMap<String, (String, String)>,
}

impl Credentials {
    /// Parse a docker `config.json` / `.dockerconfigjson` (`{"auths": {host: {auth | username,
    /// password}}}`).
    pub fn from_docker_config(json: &[u8]) -> Result<Self, String> {
        let config: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("docker config is not JSON: {e}"))?;
        let mut by_host = BTreeMap::new();
        let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
            return Ok(Credentials::default());
        };
        for (host, entry) in auths {
            let host = normalise_host(host);
            if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()).filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth)
                    .map_err(|_| format!("auths.{host}.auth is not base64"))?;
                let text =
                    String::from_utf8(decoded).map_err(|_| format!("auths.{host}.auth is not UTF-8"))?;
                let (user, password) =
                    text.split_once(':').ok_or_else(|| format!("auths.{host}.auth is not user:password"))?;
                by_host.insert(host, (user.to_string(), password.to_string()));
            } else if let (Some(user), Some(password)) = (
                entry.get("username").and_then(|u| u.as_str()),
                entry.get("password").and_then(|p| p.as_str()),
            ) {
                by_host.insert(host, (user.to_string(), password.to_string()));
            }
        }
        Ok(Credentials { by_host })
    }

    /// Add (or replace) one registry's credentials, e.g. an ECR token (`AWS`, token).
    pub fn insert(&mut self, host: &str, user: String, password: String) {
        self.by_host.insert(normalise_host(host), (user, password));
    }

    /// These credentials, with `other`'s added where these have none.
    pub fn merged(&self, other: &Credentials) -> Credentials {
        let mut by_host = other.by_host.clone();
        by_host.extend(self.by_host.clone());
        Credentials { by_host }
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }

    /// The auth for one registry host.
    pub fn auth_for(&self, registry: &str) -> RegistryAuth {
        match self.by_host.get(&normalise_host(registry)) {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        }
    }
}

/// `https://index.docker.io/v1/` and `docker.io` are the same registry to `config.json`.
fn normalise_host(host: &str) -> String {
    let host = host.trim_start_matches("https://").trim_start_matches("http://");
    let host = host.split('/').next().unwrap_or(host);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// Whether a registry host is on loopback (`localhost`, `127.x`, `[::1]`).
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What went wrong talking to a registry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry} refused the credentials ({detail})")]
    Unauthorized { registry: String, detail: String },
    #[error("image not found in registry {registry} ({detail})")]
    NotFound { registry: String, detail: String },
    #[error("registry {registry} unreachable: {detail}")]
    Unreachable { registry: String, detail: String },
    #[error("registry {registry} answered with something unusable: {detail}")]
    Invalid { registry: String, detail: String },
}

/// A shared registry client.
#[derive(Clone)]
pub struct Registry {
    client: Arc<Client>,
}

impl Registry {
    pub fn new(settings: &RegistrySettings) -> Result<Self, String> {
        for host in &settings.insecure_registries {
            if !is_loopback(host) {
                return Err(format!(
                    "plain HTTP is only for loopback registries; {host} must be reached over HTTPS \
                     (give its CA with --registry-ca)"
                ));
            }
        }
        // oci-client's HTTP client takes the process's rustls provider; Rampart's is ring
        // everywhere. Installed only when none is yet (a caller's choice stands).
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let config = oci_client::client::ClientConfig {
            protocol: if settings.insecure_registries.is_empty() {
                oci_client::client::ClientProtocol::Https
            } else {
                oci_client::client::ClientProtocol::HttpsExcept(settings.insecure_registries.clone())
            },
            extra_root_certificates: settings
                .ca_pem
                .iter()
                .map(|pem| oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            read_timeout: settings.timeout,
            connect_timeout: settings.timeout,
            user_agent: concat!("rampart/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        Ok(Registry { client: Arc::new(Client::new(config)) })
    }

    /// The digest a reference names now (a HEAD on the manifest; a reference with a digest is
    /// returned as is, without asking).
    pub async fn resolve(&self, reference: &Reference, auth: &RegistryAuth) -> Result<String, RegistryError> {
        if let Some(digest) = reference.digest() {
            return Ok(digest.to_string());
        }
        self.client
            .fetch_manifest_digest(reference, auth)
            .await
            .map_err(|e| classify(reference.registry(), e))
    }

    /// The layers of a cosign signature or attestation manifest; `Ok(None)` when the tag does
    /// not exist (nothing signed or attested).
    pub async fn cosign_layers(
        &self,
        reference: &Reference,
        auth: &RegistryAuth,
    ) -> Result<Option<Vec<Layer>>, RegistryError> {
        let registry = reference.registry();
        let invalid = |detail: String| RegistryError::Invalid { registry: registry.to_string(), detail };
        let manifest = match self.client.pull_manifest(reference, auth).await {
            Ok((OciManifest::Image(m), _)) => m,
            Ok((OciManifest::ImageIndex(_), _)) => {
                return Err(invalid(format!("{reference} is an index, not a cosign manifest")));
            }
            Err(e) => {
                return match classify(registry, e) {
                    RegistryError::NotFound { .. } => Ok(None),
                    other => Err(other),
                };
            }
        };
        if manifest.layers.len() > MAX_LAYERS {
            return Err(invalid(format!(
                "{reference} has {} layers; at most {MAX_LAYERS} are read",
                manifest.layers.len()
            )));
        }
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for descriptor in &manifest.layers {
            if !(0..=MAX_LAYER_BYTES).contains(&descriptor.size) {
                return Err(invalid(format!(
                    "{reference}: a layer of {} bytes; at most {MAX_LAYER_BYTES}",
                    descriptor.size
                )));
            }
            let mut data = Vec::with_capacity(descriptor.size as usize);
            self.client
                .pull_blob(reference, descriptor, &mut data)
                .await
                .map_err(|e| classify(registry, e))?;
            // The payload is what the signature covers; checking the digest too keeps a
            // registry from swapping layers under a valid manifest.
            let actual = format!("sha256:{:x}", sha2::Sha256::digest(&data));
            if actual != descriptor.digest {
                return Err(invalid(format!("{reference}: layer {} has digest {actual}", descriptor.digest)));
            }
            layers.push(Layer {
                media_type: descriptor.media_type.clone(),
                data,
                annotations: descriptor.annotations.clone().unwrap_or_default(),
            });
        }
        Ok(Some(layers))
    }
}

fn classify(registry: &str, error: OciDistributionError) -> RegistryError {
    let registry = registry.to_string();
    let detail = error.to_string();
    match &error {
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            RegistryError::Unauthorized { registry, detail }
        }
        OciDistributionError::ImageManifestNotFoundError(_) => RegistryError::NotFound { registry, detail },
        OciDistributionError::RegistryError { envelope, .. } => {
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::BlobUnknown
                )
            }) {
                RegistryError::NotFound { registry, detail }
            } else if envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                RegistryError::Unauthorized { registry, detail }
            } else {
                RegistryError::Invalid { registry, detail }
            }
        }
        OciDistributionError::ServerError { code: 404, .. } => RegistryError::NotFound { registry, detail },
        OciDistributionError::ServerError { code: 401 | 403, .. } => {
            RegistryError::Unauthorized { registry, detail }
        }
        OciDistributionError::RequestError(_)
        | OciDistributionError::IoError(_)
        | OciDistributionError::ServerError { .. } => RegistryError::Unreachable { registry, detail },
        _ => RegistryError::Invalid { registry, detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_credentials() {
        let auth = base64::engine::general_purpose::STANDARD.encode("ci:s3cret");
        let json = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.example.com":{{"username":"u","password":"p"}}}}}}"#
        );
        let c = Credentials::from_docker_config(json.as_bytes()).unwrap();
        assert_eq!(c.auth_for("docker.io"), RegistryAuth::Basic("ci".into(), "s3cret".into()));
        assert_eq!(c.auth_for("reg.example.com"), RegistryAuth::Basic("u".into(), "p".into()));
        assert_eq!(c.auth_for("other.example.com"), RegistryAuth::Anonymous);
        let e = Credentials::from_docker_config(br#"{"auths":{"r":{"auth":"!!"}}}"#).unwrap_err();
        assert!(e.contains("auths.r.auth"), "{e}");
    }

    #[test]
    fn plain_http_only_on_loopback() {
        for host in ["127.0.0.1:5000", "localhost:5000", "[::1]:5000", "localhost"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["10.0.0.1:5000", "registry.example.com", "127.example.com:5000"] {
            assert!(!is_loopback(host), "{host}");
        }
        let settings =
            RegistrySettings { insecure_registries: vec!["10.0.0.1:5000".into()], ..Default::default() };
        assert!(Registry::new(&settings).err().unwrap().contains("only for loopback"));
    }
}
