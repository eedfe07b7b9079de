//! The simulator's own certificate authority, generated at start as the engine's installer
//! generates one: served at `/ovirt-engine/services/pki-resource`, used for `--self-signed` HTTPS,
//! and by `demo` for the gateway's listener certificate.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct Pki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A certificate and its private key, PEM.
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn generate() -> Result<Pki, String> {
        let failed = |e: rcgen::Error| format!("cannot generate the simulator's CA: {e}");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ovirt-gateway simulator CA");
        let key = rcgen::KeyPair::generate().map_err(failed)?;
        let ca_pem = params.self_signed(&key).map_err(failed)?.pem();
        Ok(Pki {
            ca_pem,
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// A server certificate for `localhost` and `ip`, signed by this CA.
    pub fn issue(&self, ip: IpAddr) -> Result<IssuedCert, String> {
        let failed = |e: rcgen::Error| format!("cannot issue a certificate: {e}");
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        if !ip.is_unspecified() && ip.to_string() != "127.0.0.1" {
            names.push(ip.to_string());
        }
        let mut params = rcgen::CertificateParams::new(names).map_err(failed)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let key = rcgen::KeyPair::generate().map_err(failed)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(failed)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A TLS server configuration with a fresh certificate for `ip`. ALPN offers HTTP/1.1 only,
    /// as the engine's Apache front end does (no mod_http2); clients such as the Python SDK behave
    /// differently over HTTP/2.
    pub fn server_config(&self, ip: IpAddr) -> Result<Arc<ServerConfig>, String> {
        let issued = self.issue(ip)?;
        let chain =
            vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).map_err(|e| e.to_string())?];
        let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).map_err(|e| e.to_string())?;
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .and_then(|builder| builder.with_no_client_auth().with_single_cert(chain, key))
                .map_err(|e| format!("simulator TLS: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
