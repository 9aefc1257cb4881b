//! `HOTPROF_TLS_CERT` and `HOTPROF_TLS_KEY`: HTTPS on hotprof's own server
//! (feature `tls`, rustls with the `ring` provider). Basic credentials cross
//! the network in the clear over plain HTTP; a server bound beyond loopback
//! should serve HTTPS, as Parca, Alloy and `go tool pprof` all can.
//!
//! Both files are PEM, read once at start: the certificate chain, leaf
//! first, and its private key. Asked for HTTPS without the feature, the
//! server stays off rather than serve plain HTTP.

use crate::config::{Env, vars};

/// A TLS configuration ready to accept connections.
#[derive(Clone)]
pub(crate) struct Tls {
    #[cfg(feature = "tls")]
    acceptor: tokio_rustls::TlsAcceptor,
    #[cfg(not(feature = "tls"))]
    never: std::convert::Infallible,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls") // never the key
    }
}

impl Tls {
    /// `Ok(None)` when neither variable is set; an error naming the
    /// variables when one is missing or a file cannot be used.
    pub(crate) fn load(env: Env<'_>) -> Result<Option<Tls>, String> {
        match (vars::TLS_CERT.read(env)?, vars::TLS_KEY.read(env)?) {
            (None, None) => Ok(None),
            (Some(_), None) | (None, Some(_)) => {
                Err("HOTPROF_TLS_CERT and HOTPROF_TLS_KEY go together: set both (PEM files) or neither"
                    .to_string())
            }
            (Some(cert), Some(key)) => Tls::from_files(&cert, &key).map(Some),
        }
    }

    #[cfg(not(feature = "tls"))]
    fn from_files(_cert: &std::path::Path, _key: &std::path::Path) -> Result<Tls, String> {
        Err("HOTPROF_TLS_CERT is set, but hotprof was built without its `tls` feature, so it cannot \
             serve HTTPS: enable the feature, or unset HOTPROF_TLS_CERT and HOTPROF_TLS_KEY"
            .to_string())
    }

    #[cfg(feature = "tls")]
    fn from_files(cert: &std::path::Path, key: &std::path::Path) -> Result<Tls, String> {
        use std::sync::Arc;
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls::{ServerConfig, crypto};

        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| format!("HOTPROF_TLS_CERT={cert:?}: cannot read a PEM certificate chain: {e}"))?;
        if chain.is_empty() {
            return Err(format!("HOTPROF_TLS_CERT={cert:?}: no `BEGIN CERTIFICATE` block in the file"));
        }
        let key_der = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("HOTPROF_TLS_KEY={key:?}: cannot read a PEM private key: {e}"))?;
        // Our own provider, so a process-wide default chosen (or not) by the
        // application's other rustls users changes nothing here.
        let mut config = ServerConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key_der))
            .map_err(|e| {
                format!("HOTPROF_TLS_CERT={cert:?} and HOTPROF_TLS_KEY={key:?} do not make a TLS server: {e}")
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) })
    }

    /// The TLS handshake on an accepted connection.
    #[cfg(feature = "tls")]
    pub(crate) async fn accept(
        &self,
        stream: tokio::net::TcpStream,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
        self.acceptor.accept(stream).await
    }

    /// Without the feature no `Tls` exists; this only makes matches complete.
    #[cfg(not(feature = "tls"))]
    pub(crate) fn unreachable(&self) -> ! {
        match self.never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Option<Tls>, String> {
        let lookup = |k: &str| vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.to_string());
        Tls::load(Env::from_fn(&lookup))
    }

    #[test]
    fn neither_or_both() {
        assert!(load(&[]).unwrap().is_none());
        for one in ["HOTPROF_TLS_CERT", "HOTPROF_TLS_KEY"] {
            let e = load(&[(one, "/x.pem")]).unwrap_err();
            assert!(e.starts_with("HOTPROF_TLS_CERT and HOTPROF_TLS_KEY go together"), "{e}");
        }
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn without_the_feature_https_is_refused_not_downgraded() {
        let e = load(&[("HOTPROF_TLS_CERT", "/c.pem"), ("HOTPROF_TLS_KEY", "/k.pem")]).unwrap_err();
        assert!(e.contains("built without its `tls` feature"), "{e}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn unreadable_or_empty_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let empty = empty.to_str().unwrap();
        let e = load(&[("HOTPROF_TLS_CERT", "/nonexistent.pem"), ("HOTPROF_TLS_KEY", empty)]).unwrap_err();
        assert!(e.starts_with("HOTPROF_TLS_CERT=\"/nonexistent.pem\": cannot read"), "{e}");
        let e = load(&[("HOTPROF_TLS_CERT", empty), ("HOTPROF_TLS_KEY", empty)]).unwrap_err();
        assert!(e.contains("no `BEGIN CERTIFICATE` block"), "{e}");
    }
}
