//! The server side: a reloadable mutual-TLS configuration and the accept loop for tonic.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use crate::{load, Loaded, TlsError, TlsFiles};

/// Server side with mutual TLS: a client certificate signed by the CA is required. ALPN `h2`.
/// [`ServerTls::reload`] re-reads the files; new connections use the new configuration.
pub struct ServerTls {
    files: TlsFiles,
    config: RwLock<Arc<ServerConfig>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads and checks the files (see [`load`]) and builds the configuration.
    pub fn new(files: TlsFiles) -> Result<ServerTls, TlsError> {
        let config = server_config(&load(&files)?)?;
        Ok(ServerTls {
            files,
            config: RwLock::new(config),
        })
    }

    /// Re-reads the files. On error the current configuration stays in use and the error is
    /// returned for the caller to log.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&load(&self.files)?)?;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        Ok(())
    }

    /// An acceptor with the current configuration.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.config
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// The files this configuration is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

/// Re-reads `tls`'s files whenever the process receives SIGHUP: certificates are rotated
/// without a restart (`systemctl reload`). New connections use the new certificate; a failed
/// reload is logged and the previous one stays in use.
pub fn reload_on_sighup(tls: Arc<ServerTls>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot install the SIGHUP handler: certificates are reloaded only by a restart: {e}");
            return;
        }
    };
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            reload_logged(&tls);
        }
    });
}

/// [`ServerTls::reload`], with the outcome logged.
pub fn reload_logged(tls: &ServerTls) {
    match tls.reload() {
        Ok(()) => tracing::info!(
            "SIGHUP: reloaded the TLS certificate {} and CA {}",
            tls.files().cert_file.display(),
            tls.files().ca_file.display()
        ),
        Err(e) => {
            tracing::error!("SIGHUP: TLS reload failed, the previous certificate stays in use: {e}")
        }
    }
}

fn server_config(loaded: &Loaded) -> Result<Arc<ServerConfig>, TlsError> {
    let files = &loaded.files;
    let config_error = |path: &std::path::Path, e: &dyn std::fmt::Display| TlsError::Config {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let mut roots = RootCertStore::empty();
    for ca in &loaded.ca {
        roots
            .add(ca.clone())
            .map_err(|e| config_error(&files.ca_file, &e))?;
    }
    let provider = crate::provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| config_error(&files.ca_file, &e))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(&files.cert_file, &e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(loaded.chain.clone(), loaded.key.clone_key())
        .map_err(|e| config_error(&files.cert_file, &e))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// At most this many TLS handshakes run at once; further accepted connections wait.
const MAX_CONCURRENT_HANDSHAKES: usize = 256;
/// Pause after a failed `accept` (EMFILE, ENFILE, ENOBUFS…) before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// At most one warning about failed handshakes per this interval; the rest go to debug.
const WARN_INTERVAL: Duration = Duration::from_secs(60);

/// The accept loop for tonic's `serve_with_incoming_shutdown`: accepts TCP connections on
/// `listener`, runs each TLS handshake on its own task bounded by `handshake_timeout`, and
/// yields the established streams. A peer that sends garbage, a truncated preface or nothing
/// delays no one else; failed handshakes are logged at debug level with the peer address (and
/// summarised in at most one warning a minute). Accept errors are logged and retried; the
/// stream ends only when its consumer drops it (the listener is then closed). Must be called
/// within a Tokio runtime (it spawns the accept loop).
pub fn incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    handshake_timeout: Duration,
) -> impl futures_core::Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(accept_loop(listener, tls, handshake_timeout, tx));
    ReceiverStream::new(rx)
}

type Established = Result<TlsStream<TcpStream>, std::io::Error>;

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    handshake_timeout: Duration,
    tx: mpsc::Sender<Established>,
) {
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_HANDSHAKES));
    let failures = Arc::new(FailureLog::default());
    loop {
        let accepted = tokio::select! {
            _ = tx.closed() => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(
                    "TLS listener {local}: accept failed: {e}; retrying in {} ms",
                    ACCEPT_RETRY.as_millis()
                );
                tokio::time::sleep(ACCEPT_RETRY).await;
                continue;
            }
        };
        let permit = tokio::select! {
            _ = tx.closed() => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break, // never closed
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = tls.acceptor();
        let tx = tx.clone();
        let failures = failures.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    // The consumer is gone: the server is shutting down; drop the connection.
                    let _ = tx.send(Ok(stream)).await;
                }
                Ok(Err(e)) => failures.record(peer, &format!("TLS handshake failed: {e}")),
                Err(_) => failures.record(
                    peer,
                    &format!(
                        "TLS handshake not finished within {} ms",
                        handshake_timeout.as_millis()
                    ),
                ),
            }
        });
    }
    tracing::debug!("TLS listener {local}: closed");
}

/// Rate limit for handshake-failure warnings: a port scan must not flood the log.
#[derive(Default)]
struct FailureLog {
    state: Mutex<FailureState>,
}

#[derive(Default)]
struct FailureState {
    last_warning: Option<Instant>,
    suppressed: u64,
}

impl FailureLog {
    fn record(&self, peer: SocketAddr, what: &str) {
        tracing::debug!("TLS connection from {peer}: {what}");
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match s.last_warning {
            Some(t) if now.duration_since(t) < WARN_INTERVAL => s.suppressed += 1,
            _ => {
                let suppressed = std::mem::take(&mut s.suppressed);
                s.last_warning = Some(now);
                drop(s);
                tracing::warn!(
                    "TLS connection from {peer}: {what} (check that client's certificate and CA; \
                     {suppressed} failures since the previous warning; for a minute further \
                     failures are logged at debug level only)"
                );
            }
        }
    }
}
