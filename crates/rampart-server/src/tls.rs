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
    /// A private CA (`<dir>/ca.crt`, `<dir>/ca.key`) and a serving certificate it signed
    /// (`<dir>/rampart.crt`, `<dir>/rampart.key`) for these subject alternative names, each
    /// generated when missing. The apiserver trusts the CA, so the serving certificate can be
    /// reissued (new names, renewal) without touching the webhook configurations.
    SelfSigned { dir: PathBuf, names: Vec<String> },
}

/// Default names on a generated certificate: loopback (static-pod deployments such as kind
/// and the upstream demo) and the in-cluster Service names.
pub fn default_names() -> Vec<String> {
    ["localhost", "127.0.0.1", "::1", "rampart", "rampart.rampart-system", "rampart.rampart-system.svc"]
        .map(String::from)
        .to_vec()
}

/// How long the generated CA is valid. Bounded, like kubeadm's CA, so a forgotten throw-away
/// CA does not stay trusted forever.
const CA_VALIDITY: time::Duration = time::Duration::days(5 * 365);
/// How long a generated serving certificate is valid (kubeadm's leaf lifetime).
const LEAF_VALIDITY: time::Duration = time::Duration::days(365);
/// A serving certificate this close to expiry is reissued at the next start.
const RENEW_BEFORE: time::Duration = time::Duration::days(30);

/// The certificate clients must trust to reach a server using `source`: the generated CA, or
/// the operator's certificate itself.
pub fn trust_anchor(source: &CertSource) -> Result<PathBuf, ServerError> {
    match source {
        CertSource::Files { cert, .. } => Ok(cert.clone()),
        CertSource::SelfSigned { dir, .. } => {
            ensure_files(source)?;
            Ok(dir.join("ca.crt"))
        }
    }
}

/// Resolve the source to cert/key files, generating the CA and serving certificate if needed.
/// An existing serving certificate is reissued by the same CA when it lacks one of the names
/// or expires within 30 days.
pub fn ensure_files(source: &CertSource) -> Result<(PathBuf, PathBuf), ServerError> {
    match source {
        CertSource::Files { cert, key } => Ok((cert.clone(), key.clone())),
        CertSource::SelfSigned { dir, names } => {
            fs::create_dir_all(dir).map_err(|e| ServerError::io(dir, e))?;
            let (ca_cert, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
            let (cert, key) = (dir.join("rampart.crt"), dir.join("rampart.key"));
            let fresh_ca = !(ca_cert.exists() && ca_key.exists());
            if fresh_ca {
                let (pem, key_pem) = generate_ca()?;
                write_file(&ca_key, key_pem.as_bytes(), 0o600)?;
                write_file(&ca_cert, pem.as_bytes(), 0o644)?;
                tracing::info!(ca = %ca_cert.display(), "generated a private CA for the serving certificate");
            }
            if fresh_ca || !cert.exists() || !key.exists() || !covers(&cert, names)? {
                let (pem, key_pem) = issue_leaf(&ca_cert, &ca_key, names)?;
                write_file(&key, key_pem.as_bytes(), 0o600)?;
                write_file(&cert, pem.as_bytes(), 0o644)?;
                tracing::info!(cert = %cert.display(), ?names, "issued a serving certificate");
            }
            Ok((cert, key))
        }
    }
}

fn tls_err(what: &str) -> impl Fn(rcgen::Error) -> ServerError + '_ {
    move |e| ServerError::Tls(format!("{what}: {e}"))
}

fn generate_ca() -> Result<(String, String), ServerError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let key = KeyPair::generate().map_err(tls_err("cannot generate the CA key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "Rampart webhook CA");
    params.distinguished_name.push(DnType::OrganizationName, "Rampart");
    // Path length 0: this CA signs serving certificates only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + CA_VALIDITY;
    let cert = params.self_signed(&key).map_err(tls_err("cannot sign the CA certificate"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn issue_leaf(ca_cert: &Path, ca_key: &Path, names: &[String]) -> Result<(String, String), ServerError> {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose};
    let read = |p: &Path| fs::read_to_string(p).map_err(|e| ServerError::io(p, e));
    let ca_signer = KeyPair::from_pem(&read(ca_key)?)
        .map_err(|e| ServerError::Tls(format!("{}: cannot read the CA key: {e}", ca_key.display())))?;
    let issuer = Issuer::from_ca_cert_pem(&read(ca_cert)?, ca_signer).map_err(|e| {
        ServerError::Tls(format!("{}: cannot read the CA certificate: {e}", ca_cert.display()))
    })?;
    let mut params = CertificateParams::new(names.to_vec())
        .map_err(|e| ServerError::Tls(format!("invalid certificate name in {names:?}: {e}")))?;
    params.distinguished_name.push(DnType::CommonName, "rampart");
    params.distinguished_name.push(DnType::OrganizationName, "Rampart");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + LEAF_VALIDITY;
    let key = KeyPair::generate().map_err(tls_err("cannot generate the serving key"))?;
    let cert = params.signed_by(&key, &issuer).map_err(tls_err("cannot sign the serving certificate"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Whether the certificate at `path` names every one of `names` and is not about to expire.
fn covers(path: &Path, names: &[String]) -> Result<bool, ServerError> {
    let der = CertificateDer::from_pem_file(path)
        .map_err(|e| ServerError::Tls(format!("{}: cannot read certificate: {e}", path.display())))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| ServerError::Tls(format!("{}: cannot parse certificate: {e}", path.display())))?;
    let expires = cert.validity().not_after.timestamp();
    if expires < (time::OffsetDateTime::now_utc() + RENEW_BEFORE).unix_timestamp() {
        return Ok(false);
    }
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                x509_parser::extensions::GeneralName::IPAddress(bytes) => ips.push(bytes.to_vec()),
                _ => {}
            }
        }
    }
    Ok(names.iter().all(|n| match n.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ips.contains(&ip.octets().to_vec()),
        Ok(std::net::IpAddr::V6(ip)) => ips.contains(&ip.octets().to_vec()),
        Err(_) => dns.contains(&n.to_ascii_lowercase()),
    }))
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

/// How often the serving certificate files are checked for a new pair.
pub const RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// The bytes of a certificate/key pair, to tell when either changed (Secret volumes swap a
/// symlink, so modification times are not reliable; the files are small).
fn pair_contents(cert: &Path, key: &Path) -> Option<(Vec<u8>, Vec<u8>)> {
    Some((fs::read(cert).ok()?, fs::read(key).ok()?))
}

/// Re-read `cert` and `key` every `every` and serve the new pair once it changed and is a
/// valid pair. A half-written or mismatched pair is logged and the current one kept:
/// a rotation never takes the server down. Runs until the task is dropped.
pub async fn reload_on_change(
    config: axum_server::tls_rustls::RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
    every: std::time::Duration,
) {
    let mut current = pair_contents(&cert, &key);
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let seen = pair_contents(&cert, &key);
        if seen.is_none() || seen == current {
            continue;
        }
        match server_config(&cert, &key) {
            Ok(new) => {
                config.reload_from_config(new);
                current = seen;
                tracing::info!(cert = %cert.display(), "serving certificate reloaded");
            }
            Err(e) => tracing::warn!("new serving certificate not loaded, keeping the current one: {e}"),
        }
    }
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
        let ca = fs::read(dir.path().join("ca.crt")).unwrap();
        // A new name reissues the serving certificate from the same CA.
        let more = CertSource::SelfSigned { dir: dir.path().to_path_buf(), names: vec!["10.0.0.5".into()] };
        ensure_files(&more).unwrap();
        assert_ne!(first, fs::read(&cert).unwrap());
        assert_eq!(ca, fs::read(dir.path().join("ca.crt")).unwrap());
        assert!(covers(&cert, &["10.0.0.5".to_owned()]).unwrap());
        assert!(!covers(&cert, &["10.0.0.6".to_owned(), "localhost".to_owned()]).unwrap());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        }
        server_config(&cert, &key).unwrap();
    }

    #[test]
    fn the_ca_is_a_ca_and_the_leaf_is_a_bounded_server_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let source = CertSource::SelfSigned { dir: dir.path().to_path_buf(), names: default_names() };
        let (cert, _) = ensure_files(&source).unwrap();
        let ca_der = CertificateDer::from_pem_file(dir.path().join("ca.crt")).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        assert!(ca.is_ca());
        assert!(ca.subject().to_string().contains("Rampart webhook CA"));
        let leaf_der = CertificateDer::from_pem_file(&cert).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
        assert!(!leaf.is_ca());
        assert_eq!(leaf.issuer(), ca.subject());
        let lifetime = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
        assert!(lifetime <= 366 * 86400, "{lifetime}");
        assert!(leaf.extended_key_usage().unwrap().unwrap().value.server_auth);
    }

    #[test]
    fn mismatched_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.crt");
        let err = server_config(&missing, &missing).unwrap_err().to_string();
        assert!(err.contains("nope.crt"), "{err}");
    }

    #[tokio::test]
    async fn a_rotated_pair_is_served_and_a_mismatched_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let pair = |name: &str| {
            let source = CertSource::SelfSigned { dir: dir.path().join(name), names: default_names() };
            ensure_files(&source).unwrap()
        };
        let ((a_cert, a_key), (b_cert, b_key)) = (pair("a"), pair("b"));
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        fs::copy(&a_cert, &cert).unwrap();
        fs::copy(&a_key, &key).unwrap();
        let config = axum_server::tls_rustls::RustlsConfig::from_config(server_config(&cert, &key).unwrap());
        let every = std::time::Duration::from_millis(20);
        let task = tokio::spawn(reload_on_change(config.clone(), cert.clone(), key.clone(), every));
        let settle = || tokio::time::sleep(every * 10);
        let first = config.get_inner();
        // Half a rotation: B's certificate with A's key. Not served.
        fs::copy(&b_cert, &cert).unwrap();
        settle().await;
        assert!(Arc::ptr_eq(&first, &config.get_inner()), "a mismatched pair must not be served");
        // The rest of it: B's key. Served.
        fs::copy(&b_key, &key).unwrap();
        settle().await;
        assert!(!Arc::ptr_eq(&first, &config.get_inner()), "the rotated pair is served");
        task.abort();
    }
}
