//! TLS as FLoM speaks it: the peer's certificate, private key and certification authority
//! from PEM files, TLS 1.2 or 1.3 right after connect/accept (Unix socket or TCP alike),
//! a certificate required from both sides, no host name check; then the same XML.
//!
//! FLoM's OpenSSL verify callback lets every handshake complete and checks the peer's
//! certificate afterwards, so a bad peer is told apart from a failed handshake by its
//! return code: the verifiers here do the same (signatures are checked during the
//! handshake, the chain after it, in [`Tls::check_peer`]). The errors are FLoM's codes
//! and texts, which the client prints.
//!
//! Makes configurations and judges certificates; reading and writing the connection is
//! the server's ([`crate::server`]) or the client's.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

/// The three files FLoM's TLS needs (all three given, or no TLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub ca_certificate: PathBuf,
}

/// A TLS failure, as FLoM's return code (`rc`) and text (`Display`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("ERROR: 'OpenSSL SSL_CTX_use_certificate_file' function returned an error")]
    Certificate,
    #[error("ERROR: 'OpenSSL SSL_CTX_use_PrivateKey_file' function returned an error")]
    PrivateKey,
    #[error("ERROR: 'OpenSSL SSL_CTX_check_private_key' function returned an error")]
    KeyMismatch,
    #[error("ERROR: 'OpenSSL SSL_CTX_load_verify_locations' function returned an error")]
    CaCertificate,
    #[error("ERROR: 'OpenSSL SSL_accept' function returned an error")]
    Accept,
    #[error("ERROR: 'OpenSSL SSL_connect' function returned an error")]
    Connect,
    #[error("ERROR: 'OpenSSL SSL_get_verify_result' function returned an error")]
    Verify,
    #[error("ERROR: the peer did not supply a valid certificate for a TLS/SSL connection")]
    NoCertificate,
    #[error(
        "ERROR: the unique ID sent by the peer does not match the CN field inside the X.509 provided certificate"
    )]
    PeerIdMismatch,
    /// No CN in the certificate, or no peer id in the message (FLoM's `NULL_OBJECT`).
    #[error("ERROR: the object is null")]
    NoPeerId,
}

impl TlsError {
    /// FLoM's return code (`FLOM_RC_...`).
    pub fn rc(&self) -> i32 {
        match self {
            TlsError::Certificate => -403,
            TlsError::PrivateKey => -404,
            TlsError::KeyMismatch => -400,
            TlsError::CaCertificate => -401,
            TlsError::Accept => -405,
            TlsError::Connect => -406,
            TlsError::Verify => -407,
            TlsError::NoCertificate => -22,
            TlsError::PeerIdMismatch => -23,
            TlsError::NoPeerId => -4,
        }
    }
}

/// One side's TLS: its configuration and what it judges the peer's certificate by.
pub struct Tls {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    server: Option<Arc<rustls::ServerConfig>>,
    client: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = if self.server.is_some() {
            "server"
        } else {
            "client"
        };
        write!(f, "Tls({side})")
    }
}

/// What the peer's certificate says once it passed [`Tls::check_peer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    /// Its subject's common name (FLoM compares it with the peer id), if any.
    pub cn: Option<String>,
}

impl Tls {
    /// The daemon's side; `Err` logs nothing, the caller says which file failed.
    pub fn server(files: &TlsFiles) -> Result<Tls, TlsError> {
        let (certs, key, roots, provider) = load(files)?;
        let verifier = Arc::new(AnyClient {
            hints: roots.subjects(),
            algs: provider.signature_verification_algorithms,
        });
        let config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|_| TlsError::Accept)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key)
            .map_err(|_| TlsError::PrivateKey)?;
        Ok(Tls {
            roots,
            provider,
            server: Some(Arc::new(config)),
            client: None,
        })
    }

    /// The client's side.
    pub fn client(files: &TlsFiles) -> Result<Tls, TlsError> {
        let (certs, key, roots, provider) = load(files)?;
        let verifier = Arc::new(AnyServer {
            algs: provider.signature_verification_algorithms,
        });
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|_| TlsError::Connect)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(certs, key)
            .map_err(|_| TlsError::PrivateKey)?;
        Ok(Tls {
            roots,
            provider,
            server: None,
            client: Some(Arc::new(config)),
        })
    }

    /// A new server-side connection (for a [`Tls::server`]).
    pub fn accept(&self) -> Result<rustls::ServerConnection, TlsError> {
        let config = self.server.clone().ok_or(TlsError::Accept)?;
        rustls::ServerConnection::new(config).map_err(|_| TlsError::Accept)
    }

    /// A new client-side connection (for a [`Tls::client`]). FLoM checks no host name and
    /// sends none: the name given here is only what rustls requires.
    pub fn connect(&self) -> Result<rustls::ClientConnection, TlsError> {
        let config = self.client.clone().ok_or(TlsError::Connect)?;
        let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
        rustls::ClientConnection::new(config, name).map_err(|_| TlsError::Connect)
    }

    /// FLoM's check after the handshake: the peer sent a certificate (else
    /// [`TlsError::NoCertificate`]) that chains to our CA and is valid now (else
    /// [`TlsError::Verify`]).
    pub fn check_peer(&self, certs: Option<&[CertificateDer<'_>]>) -> Result<PeerCert, TlsError> {
        let (end_entity, intermediates) = certs
            .and_then(|c| c.split_first())
            .ok_or(TlsError::NoCertificate)?;
        let now = UnixTime::now();
        let verdict = if self.server.is_some() {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                self.roots.clone(),
                self.provider.clone(),
            )
            .build()
            .map_err(|_| TlsError::Verify)?;
            verifier
                .verify_client_cert(end_entity, intermediates, now)
                .map(drop)
        } else {
            ParsedCertificate::try_from(end_entity).and_then(|parsed| {
                rustls::client::verify_server_cert_signed_by_trust_anchor(
                    &parsed,
                    &self.roots,
                    intermediates,
                    now,
                    self.provider.signature_verification_algorithms.all,
                )
            })
        };
        if let Err(e) = verdict {
            log::info!("the peer's certificate is refused: {e}");
            return Err(TlsError::Verify);
        }
        Ok(PeerCert {
            cn: common_name(end_entity),
        })
    }
}

impl PeerCert {
    /// FLoM's peer-id check: the peer id it sent is its certificate's CN.
    pub fn check_id(&self, peerid: Option<&str>) -> Result<(), TlsError> {
        match (&self.cn, peerid) {
            (Some(cn), Some(id)) if cn == id => Ok(()),
            (Some(_), Some(_)) => Err(TlsError::PeerIdMismatch),
            _ => Err(TlsError::NoPeerId),
        }
    }
}

type Loaded = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    Arc<RootCertStore>,
    Arc<CryptoProvider>,
);

/// Reads the three files in FLoM's order, with FLoM's error for each (the reason logged).
fn load(files: &TlsFiles) -> Result<Loaded, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let cert_file = &files.certificate;
    let certs: Vec<_> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect())
        .map_err(|e| refused(cert_file, &e, TlsError::Certificate))?;
    // The first must be one webpki reads (not an X.509 v1 one, say).
    let Some(end_entity) = certs.first() else {
        return Err(refused(cert_file, &"no certificate", TlsError::Certificate));
    };
    ParsedCertificate::try_from(end_entity)
        .map_err(|e| refused(cert_file, &e, TlsError::Certificate))?;
    let key_file = &files.private_key;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| refused(key_file, &e, TlsError::PrivateKey))?;
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| refused(key_file, &e, TlsError::PrivateKey))?;
    rustls::sign::CertifiedKey::new(certs.clone(), signing)
        .keys_match()
        .map_err(|e| refused(key_file, &e, TlsError::KeyMismatch))?;
    let ca_file = &files.ca_certificate;
    let mut roots = RootCertStore::empty();
    let cas: Vec<_> = CertificateDer::pem_file_iter(ca_file)
        .and_then(|cas| cas.collect())
        .map_err(|e| refused(ca_file, &e, TlsError::CaCertificate))?;
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| refused(ca_file, &e, TlsError::CaCertificate))?;
    }
    if roots.is_empty() {
        return Err(refused(ca_file, &"no certificate", TlsError::CaCertificate));
    }
    Ok((certs, key, Arc::new(roots), provider))
}

/// Logs why a file is refused; returns FLoM's error for it.
fn refused(path: &std::path::Path, why: &dyn std::fmt::Display, e: TlsError) -> TlsError {
    log::warn!("{}: {why}", path.display());
    e
}

fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// The daemon's verifier during the handshake: a certificate is required, its signature
/// checked; the chain is judged afterwards ([`Tls::check_peer`]), as FLoM's callback does.
#[derive(Debug)]
struct AnyClient {
    hints: Vec<DistinguishedName>,
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClient {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// The client's verifier during the handshake: as [`AnyClient`], and no host name check
/// (FLoM makes none).
#[derive(Debug)]
struct AnyServer {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_id_must_be_the_cn() {
        let cert = PeerCert {
            cn: Some("3d12".into()),
        };
        assert_eq!(cert.check_id(Some("3d12")), Ok(()));
        assert_eq!(cert.check_id(Some("0011")), Err(TlsError::PeerIdMismatch));
        assert_eq!(cert.check_id(None), Err(TlsError::NoPeerId));
        let no_cn = PeerCert { cn: None };
        assert_eq!(no_cn.check_id(Some("3d12")), Err(TlsError::NoPeerId));
        assert_eq!(TlsError::PeerIdMismatch.rc(), -23);
        assert_eq!(TlsError::NoPeerId.rc(), -4);
    }

    #[test]
    fn a_missing_certificate_file_is_flom_s_certificate_error() {
        let missing = std::path::Path::new("/nonexistent/latch-tls");
        let files = TlsFiles {
            certificate: missing.join("cert.pem"),
            private_key: missing.join("key.pem"),
            ca_certificate: missing.join("ca.pem"),
        };
        assert_eq!(Tls::client(&files).err(), Some(TlsError::Certificate));
        assert_eq!(Tls::server(&files).err(), Some(TlsError::Certificate));
        assert_eq!(TlsError::Certificate.rc(), -403);
    }
}
