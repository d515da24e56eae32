//! Optional TLS (rustls with the ring provider) from `EAP_TLS_CERT` and `EAP_TLS_KEY`.
//!
//! Most deployments terminate TLS at a proxy; this is for those that do not. TLS 1.2 and 1.3
//! with rustls's safe defaults; no client certificates.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Reads the certificate chain and key and builds the server configuration. Every error
/// names the variable to fix.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("EAP_TLS_CERT: cannot read {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("EAP_TLS_CERT: {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "EAP_TLS_CERT: {} holds no PEM certificate",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("EAP_TLS_KEY: {}: {e}", key.display()))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!("EAP_TLS_KEY: the key does not fit the certificate or is unsupported: {e}")
        })
}
