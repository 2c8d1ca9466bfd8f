//! Serving certificates: a given cert/key pair, or a self-signed pair generated on first
//! start and reused afterwards (its CA bundle goes into the apiserver's webhook config).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ServerError;

/// Where the serving certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// PEM files provided by the operator (e.g. from cert-manager).
    Files { cert: PathBuf, key: PathBuf },
    /// `<dir>/rampart.crt` and `<dir>/rampart.key`, generated when missing, with these
    /// subject alternative names.
    SelfSigned { dir: PathBuf, names: Vec<String> },
}

/// Default names on a generated certificate: loopback (static-pod deployments such as kind
/// and the upstream demo) and the in-cluster Service names.
pub fn default_names() -> Vec<String> {
    ["localhost", "127.0.0.1", "::1", "rampart", "rampart.rampart-system", "rampart.rampart-system.svc"]
        .map(String::from)
        .to_vec()
}

/// Resolve the source to cert/key files, generating them if needed.
pub fn ensure_files(source: &CertSource) -> Result<(PathBuf, PathBuf), ServerError> {
    match source {
        CertSource::Files { cert, key } => Ok((cert.clone(), key.clone())),
        CertSource::SelfSigned { dir, names } => {
            let cert = dir.join("rampart.crt");
            let key = dir.join("rampart.key");
            if cert.exists() && key.exists() {
                return Ok((cert, key));
            }
            let generated = rcgen::generate_simple_self_signed(names.clone())
                .map_err(|e| ServerError::Tls(format!("cannot generate a self-signed certificate: {e}")))?;
            fs::create_dir_all(dir).map_err(|e| ServerError::io(dir, e))?;
            write_file(&cert, generated.cert.pem().as_bytes(), 0o644)?;
            write_file(&key, generated.signing_key.serialize_pem().as_bytes(), 0o600)?;
            tracing::info!(cert = %cert.display(), "generated a self-signed serving certificate");
            Ok((cert, key))
        }
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ServerError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let mut f = options.open(path).map_err(|e| ServerError::io(path, e))?;
    f.write_all(bytes).map_err(|e| ServerError::io(path, e))
}

/// A rustls server config (ring provider, TLS 1.2+) from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, ServerError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServerError::Tls(format!("{}: cannot read certificate: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Tls(format!("{}: no certificate found", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServerError::Tls(format!("{}: cannot read private key: {e}", key.display())))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(format!("certificate and key do not match: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let source = CertSource::SelfSigned { dir: dir.path().to_path_buf(), names: default_names() };
        let (cert, key) = ensure_files(&source).unwrap();
        let first = fs::read(&cert).unwrap();
        ensure_files(&source).unwrap();
        assert_eq!(first, fs::read(&cert).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        }
        server_config(&cert, &key).unwrap();
    }

    #[test]
    fn mismatched_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.crt");
        let err = server_config(&missing, &missing).unwrap_err().to_string();
        assert!(err.contains("nope.crt"), "{err}");
    }
}
