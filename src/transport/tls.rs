//! TLS for the blocking connections (`transport/blocking.rs`): a rustls client configuration made once per
//! server from `TlsOptions`, verifying as redis-py does by default — the chain against the
//! system's roots (or `ssl_ca_certs` alone), and the host name — with redis-py's two ways to
//! relax it: `ssl_cert_reqs="none"` (nothing verified) and `ssl_check_hostname=False` (the
//! chain, not the name).

use crate::errors::{Error, Result};
use crate::settings::location::TlsOptions;
use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};

fn read(path: &Path, option: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| Error::config(option, format!("{option} {}: {e}", path.display())))
}

fn certificates(path: &Path, option: &'static str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(&read(path, option)?)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config(option, format!("{option} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::config(
            option,
            format!("{option} {}: no certificate in the file", path.display()),
        ));
    }
    Ok(certs)
}

/// The CAs to trust: `ssl_ca_certs`, else the system's.
fn roots(tls: &TlsOptions) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let certs = match &tls.ca_certs {
        Some(path) => certificates(path, "ssl_ca_certs")?,
        None => rustls_native_certs::load_native_certs().certs,
    };
    // A system certificate rustls cannot use is skipped, as OpenSSL skips it.
    roots.add_parsable_certificates(certs);
    Ok(roots)
}

/// The client configuration for these options, made once per process: sentinel and cluster
/// discovery open throwaway connections, and building a configuration reads the system's CA
/// store from disk.
pub fn client_config(tls: &TlsOptions) -> Result<Arc<ClientConfig>> {
    static MADE: LazyLock<Mutex<HashMap<TlsOptions, Arc<ClientConfig>>>> =
        LazyLock::new(Mutex::default);
    if let Some(config) = MADE.lock().get(tls) {
        return Ok(Arc::clone(config));
    }
    // Built outside the lock (file I/O); two threads may both build it, the first one kept.
    let config = build(tls)?;
    Ok(Arc::clone(MADE.lock().entry(tls.clone()).or_insert(config)))
}

fn build(tls: &TlsOptions) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let invalid = |e: rustls::Error| Error::config("LOCATION", format!("TLS: {e}"));
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(invalid)?;
    let builder = if tls.verify_peer {
        let chain = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots(tls)?),
            Arc::clone(&provider),
        )
        .build()
        .map_err(|e| Error::config("ssl_ca_certs", format!("ssl_ca_certs: {e}")))?;
        if tls.verify_hostname {
            builder.with_webpki_verifier(chain)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Relaxed {
                    chain: Some(chain),
                    provider,
                }))
        }
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Relaxed {
                chain: None,
                provider,
            }))
    };
    let config = match (&tls.certfile, &tls.keyfile) {
        (Some(cert), Some(key)) => {
            let key = PrivateKeyDer::from_pem_slice(&read(key, "ssl_keyfile")?).map_err(|e| {
                Error::config("ssl_keyfile", format!("ssl_keyfile {}: {e}", key.display()))
            })?;
            builder
                .with_client_auth_cert(certificates(cert, "ssl_certfile")?, key)
                .map_err(|e| Error::config("ssl_certfile", format!("ssl_certfile: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(Error::config(
                "ssl_certfile",
                "ssl_certfile and ssl_keyfile must be given together",
            ))
        }
    };
    Ok(Arc::new(config))
}

/// The name the server's certificate is checked against (and sent as SNI).
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| Error::config("LOCATION", format!("TLS server name {host:?}: {e}")))
}

/// Verification relaxed as redis-py allows: the chain but not the name (`chain` given), or
/// nothing. Handshake signatures are still checked: the server must hold its certificate's key.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            verified => verified,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
