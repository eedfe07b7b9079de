//! TLS on both sides: the public listener's certificate (reloadable without dropping connections)
//! and the verification of each Manager's certificate. TLS 1.2 and 1.3 only, ring provider.
//!
//! Key material is read here and nowhere else; errors name the file or variable, never the content.

use std::fmt;
use std::sync::{Arc, RwLock};

use prometheus::IntGaugeVec;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::config::{TlsFiles, UpstreamTls};
use crate::time::parse_x509_time;

static PROTOCOL_VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks a certificate chain and its private key.
pub(crate) fn load_certified_key(files: &TlsFiles) -> Result<Arc<CertifiedKey>, String> {
    let cert_pem =
        std::fs::read(&files.cert).map_err(|e| format!("cannot read {}: {e}", files.cert.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", files.cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate found", files.cert.display()));
    }
    let key_pem = files.key.read()?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("tls_key: not a PEM private key: {e}"))?;
    CertifiedKey::from_der(chain, key, &provider())
        .map(Arc::new)
        .map_err(|e| {
            format!(
                "tls_key does not fit the certificate in {}: {e}",
                files.cert.display()
            )
        })
}

/// The listener's certificate, swapped whole on reload; handshakes in progress and open connections
/// keep the one they started with. The certificate in use publishes its expiry
/// (`gateway_tls_certificate_expiry_timestamp_seconds`), so an alert sees a renewal that never
/// came (deploy/README.md, "Metrics").
pub(crate) struct ReloadableCert {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    expiry: IntGaugeVec,
}

impl fmt::Debug for ReloadableCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableCert")
            .field("cert", &self.files.cert)
            .finish_non_exhaustive()
    }
}

impl ReloadableCert {
    /// Loads the pair and sets `expiry` (a gauge without labels) to its certificate's notAfter.
    pub(crate) fn load(files: TlsFiles, expiry: IntGaugeVec) -> Result<ReloadableCert, String> {
        let key = load_certified_key(&files)?;
        publish_expiry(&expiry, &key, &files);
        let current = RwLock::new(key);
        Ok(ReloadableCert {
            files,
            current,
            expiry,
        })
    }

    /// Reads the files again; on any error the old certificate (and its expiry) stays in use.
    pub(crate) fn reload(&self) -> Result<(), String> {
        let fresh = load_certified_key(&self.files)?;
        publish_expiry(&self.expiry, &fresh, &self.files);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        Ok(())
    }
}

/// Sets the gauge to the leaf certificate's notAfter, or removes its series when that cannot be
/// read: rustls accepted the pair, so the listener serves it either way, but a stale value would
/// hide the expiry of the certificate now in use.
fn publish_expiry(expiry: &IntGaugeVec, key: &CertifiedKey, files: &TlsFiles) {
    let leaf = key.cert.first().map(|cert| cert.as_ref());
    match leaf.and_then(not_after) {
        Some(seconds) => expiry.with_label_values::<&str>(&[]).set(seconds),
        None => {
            tracing::warn!(cert = %files.cert.display(), "cannot read the certificate's notAfter; its expiry is not exported");
            let _ = expiry.remove_label_values::<&str>(&[]);
        }
    }
}

/// A certificate's notAfter, in seconds since the epoch, from its DER: Certificate, then
/// TBSCertificate, past the optional version, serialNumber, signature and issuer, to validity's
/// second time (RFC 5280, 4.1). `None` for anything not shaped so.
fn not_after(der: &[u8]) -> Option<i64> {
    const SEQUENCE: u8 = 0x30;
    const VERSION: u8 = 0xa0;
    const UTC_TIME: u8 = 0x17;
    const GENERALIZED_TIME: u8 = 0x18;
    let (SEQUENCE, certificate, _) = der_element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = der_element(certificate)? else {
        return None;
    };
    let mut fields = tbs;
    if fields.first() == Some(&VERSION) {
        fields = der_element(fields)?.2;
    }
    for _serial_signature_issuer in 0..3 {
        fields = der_element(fields)?.2;
    }
    let (SEQUENCE, validity, _) = der_element(fields)? else {
        return None;
    };
    let (_not_before, _, times) = der_element(validity)?;
    match der_element(times)? {
        (UTC_TIME, text, _) => parse_x509_time(true, text),
        (GENERALIZED_TIME, text, _) => parse_x509_time(false, text),
        _ => None,
    }
}

/// The DER element at the start of `input` (low tag numbers, definite lengths of at most four
/// bytes, as X.509 certificates use): its tag, its contents and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = match first {
        0..=0x7f => (usize::from(first), rest),
        0x81..=0x84 => {
            let (bytes, rest) = rest.split_at_checked(usize::from(first & 0x7f))?;
            let length = bytes.iter().fold(0usize, |n, &b| n << 8 | usize::from(b));
            (length, rest)
        }
        _ => return None,
    };
    let (contents, rest) = rest.split_at_checked(length)?;
    Some((tag, contents, rest))
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// The listener's TLS configuration: HTTP/2 and HTTP/1.1 by ALPN.
/// The listener's TLS configuration; ALPN offers `h2` only when `http2` is on.
pub(crate) fn server_config(cert: Arc<ReloadableCert>, http2: bool) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .expect("ring supports TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = if http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Arc::new(config)
}

/// The client TLS configuration for one Manager; `None` for a plain http:// Manager.
pub(crate) fn client_config(tls: &UpstreamTls) -> Result<Option<ClientConfig>, String> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(PROTOCOL_VERSIONS)
        .expect("ring supports TLS 1.2 and 1.3");
    let config = match tls {
        UpstreamTls::Plain => return Ok(None),
        UpstreamTls::CaFile(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("{}: not a PEM certificate: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: unusable CA certificate: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no CA certificate found", path.display()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        UpstreamTls::SystemRoots => {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("no trusted CA certificates found on this system; set ca_file".to_owned());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        UpstreamTls::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(
                provider().signature_verification_algorithms,
            )))
            .with_no_client_auth(),
    };
    Ok(Some(config))
}

/// `insecure = true`: accepts any certificate (signatures are still checked, so the handshake
/// itself is sound). Only for labs; the gateway warns at every start.
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate valid until the given day, in DER.
    fn certificate_until(year: i32, month: u8, day: u8) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    /// notAfter is read in both of RFC 5280's forms: UTCTime through 2049, GeneralizedTime from
    /// 2050 on (rcgen writes each where RFC 5280 asks for it).
    #[test]
    fn not_after_in_both_time_forms() {
        assert_eq!(not_after(&certificate_until(2027, 3, 1)), Some(1_803_859_200));
        assert_eq!(not_after(&certificate_until(2049, 12, 31)), Some(2_524_521_600));
        assert_eq!(not_after(&certificate_until(2050, 1, 1)), Some(2_524_608_000));
    }

    /// What is not a certificate, or is cut short anywhere, has no notAfter (and no panic).
    #[test]
    fn not_after_of_broken_input() {
        let der = certificate_until(2027, 3, 1);
        for end in 0..der.len() {
            assert_eq!(not_after(&der[..end]), None, "cut at {end}");
        }
        assert_eq!(not_after(b"not DER"), None);
        let mut other_tag = der.clone();
        other_tag[0] = 0x31;
        assert_eq!(not_after(&other_tag), None);
        // A length of five bytes is more than a certificate needs.
        assert_eq!(der_element(&[0x30, 0x85, 0, 0, 0, 0, 1, 0]), None);
        assert_eq!(
            der_element(&[0x04, 0x82, 0x00, 0x01, 0xff, 0x01]),
            Some((0x04, &[0xff][..], &[0x01][..]))
        );
    }
}
