//! Mutual TLS end to end, in process: a tonic server behind `ServerTls` + `incoming()` on
//! loopback, tonic clients with `client_config()`, and raw TCP peers misbehaving.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ha_proto::agent_client::AgentClient;
use ha_proto::agent_server::{Agent, AgentServer};
use ha_proto::*;
use ha_tls::{certs, client_config, ServerTls, TlsFiles};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server};
use tonic::{Request, Response, Status};

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Bound of every network wait.
const WAIT: Duration = Duration::from_secs(10);

/// An agent whose `ping` answers with the caller's identity.
struct WhoAmI {
    allowed: Vec<String>,
}

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("not in this test"))
}

#[tonic::async_trait]
impl Agent for WhoAmI {
    async fn ping(&self, r: Request<AgentPingRequest>) -> Result<Response<AgentPingReply>, Status> {
        let who = ha_tls::caller_identity(&r, &self.allowed)?;
        Ok(Response::new(AgentPingReply {
            host: who,
            ..Default::default()
        }))
    }
    async fn apply_state(
        &self,
        _: Request<ApplyStateRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        unimplemented()
    }
    async fn get_status(
        &self,
        _: Request<AgentStatusRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        unimplemented()
    }
    async fn get_system_status(
        &self,
        _: Request<AgentStatusRequest>,
    ) -> Result<Response<SystemStatus>, Status> {
        unimplemented()
    }
    async fn clear_bad_roles(
        &self,
        _: Request<ClearBadRolesRequest>,
    ) -> Result<Response<ClearBadRolesReply>, Status> {
        unimplemented()
    }

    async fn promise(
        &self,
        _: Request<ha_proto::PromiseRequest>,
    ) -> Result<Response<ha_proto::PromiseReply>, Status> {
        unimplemented()
    }
}

struct Running {
    addr: SocketAddr,
    tls: Arc<ServerTls>,
    _stop: oneshot::Sender<()>,
}

/// Serves `WhoAmI` (allowing only `monitor`) as `db1` from `dir`.
async fn serve(
    dir: &Path,
    handshake_timeout: Duration,
) -> Result<Running, Box<dyn std::error::Error + Send + Sync>> {
    let tls = Arc::new(ServerTls::new(TlsFiles::in_dir(dir, "db1"))?);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = ha_tls::incoming(listener, tls.clone(), handshake_timeout);
    let (stop, stopped) = oneshot::channel::<()>();
    let svc = AgentServer::new(WhoAmI {
        allowed: vec!["monitor".to_string()],
    });
    tokio::spawn(async move {
        let _ = Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Running {
        addr,
        tls,
        _stop: stop,
    })
}

/// How one ping went.
#[derive(Debug)]
enum Outcome {
    /// The server answered with the caller's identity.
    Identity(String),
    /// The call reached the service and was refused.
    Denied(String),
    /// No TLS session or no gRPC exchange.
    Failed(String),
    /// Nothing decided within the bound: the server hangs instead of refusing.
    TimedOut,
}

async fn ping_with(addr: SocketAddr, scheme: &str, tls: Option<ClientTlsConfig>) -> Outcome {
    let call = async {
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(WAIT)
            .timeout(WAIT);
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        Ok::<_, String>(
            AgentClient::new(channel)
                .ping(AgentPingRequest { host: "db1".into() })
                .await,
        )
    };
    match timeout(WAIT * 2, call).await {
        Err(_) => Outcome::TimedOut,
        Ok(Err(e)) => Outcome::Failed(e),
        Ok(Ok(Ok(reply))) => Outcome::Identity(reply.into_inner().host),
        Ok(Ok(Err(s))) if s.code() == tonic::Code::PermissionDenied => {
            Outcome::Denied(s.message().to_string())
        }
        Ok(Ok(Err(s))) => Outcome::Failed(format!("{s:?}")),
    }
}

/// A ping as `identity` with material from `dir`, expecting the server to be `db1`.
async fn ping_as(addr: SocketAddr, dir: &Path, identity: &str) -> Outcome {
    match client_config(&TlsFiles::in_dir(dir, identity), "db1") {
        Ok(tls) => ping_with(addr, "https", Some(tls)).await,
        Err(e) => Outcome::Failed(format!("client_config: {e}")),
    }
}

/// Refused before reaching the service: no TLS session or no gRPC exchange, promptly.
fn expect_failed(outcome: Outcome, what: &str) {
    match outcome {
        Outcome::Failed(why) => eprintln!("{what}: refused as expected: {why}"),
        other => panic!("{what}: expected the connection to fail, got {other:?}"),
    }
}

async fn expect_identity(addr: SocketAddr, dir: &Path, identity: &str) {
    match ping_as(addr, dir, identity).await {
        Outcome::Identity(who) => assert_eq!(who, identity),
        other => panic!("{identity}: expected to get through, got {other:?}"),
    }
}

/// The certificate the server presents to a client holding `client` material.
async fn server_certificate(
    addr: SocketAddr,
    client: &TlsFiles,
) -> Result<CertificateDer<'static>, Box<dyn std::error::Error + Send + Sync>> {
    let loaded = ha_tls::load(client)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in loaded.ca {
        roots.add(ca)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(ha_tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(loaded.chain, loaded.key)?;
    let tcp = timeout(WAIT, TcpStream::connect(addr)).await??;
    let tls = timeout(
        WAIT,
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("db1")?, tcp),
    )
    .await??;
    let (_, session) = tls.get_ref();
    let certs = session
        .peer_certificates()
        .ok_or("server sent no certificate")?;
    Ok(certs
        .first()
        .ok_or("empty certificate chain")?
        .clone()
        .into_owned())
}

fn file_certificate(
    path: &Path,
) -> Result<CertificateDer<'static>, Box<dyn std::error::Error + Send + Sync>> {
    use rustls_pki_types::pem::PemObject;
    Ok(CertificateDer::from_pem_file(path)?)
}

fn cluster(ids: &[&str]) -> Result<tempfile::TempDir, Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    certs::create_ca(dir.path(), certs::DEFAULT_CA_NAME, 30)?;
    for id in ids {
        certs::issue(dir.path(), id, &[], 30)?;
    }
    Ok(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_gets_through() -> TestResult {
    let dir = cluster(&["db1", "monitor", "alice"])?;
    let other = cluster(&["monitor"])?;
    let server = serve(dir.path(), WAIT).await?;

    // (a) same CA, allowed identity
    expect_identity(server.addr, dir.path(), "monitor").await;

    // (b) same CA, identity not allowed
    match ping_as(server.addr, dir.path(), "alice").await {
        Outcome::Denied(message) => {
            assert!(message.starts_with("caller 127.0.0.1:"), "{message}");
            assert!(
                message.ends_with(
                    "presented a certificate for none of the allowed identities [monitor]"
                ),
                "{message}"
            );
        }
        other => panic!("alice: expected PermissionDenied, got {other:?}"),
    }

    // (c) a certificate from another CA (same CA name, same identity), trusting our CA so
    // only the client side is wrong. client_config() refuses such material locally, so the
    // configuration is built by hand, as a misconfigured peer would have it.
    let ca = std::fs::read(dir.path().join("ca.crt"))?;
    let foreign = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca))
        .identity(Identity::from_pem(
            std::fs::read(other.path().join("monitor.crt"))?,
            std::fs::read(other.path().join("monitor.key"))?,
        ))
        .domain_name("db1");
    let outcome = ping_with(server.addr, "https", Some(foreign)).await;
    expect_failed(outcome, "a foreign CA's certificate");

    // (d) no client certificate
    let anonymous = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca))
        .domain_name("db1");
    let outcome = ping_with(server.addr, "https", Some(anonymous)).await;
    expect_failed(outcome, "a client without certificate");

    // (e) plaintext
    let outcome = ping_with(server.addr, "http", None).await;
    expect_failed(outcome, "a plaintext client");

    // The server survived all of it.
    expect_identity(server.addr, dir.path(), "monitor").await;
    Ok(())
}

/// Pseudo-random bytes (xorshift), enough to look like line noise.
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_peers_block_no_one() -> TestResult {
    let dir = cluster(&["db1", "monitor"])?;
    // A long handshake timeout: the silent peer stays pending during the good call.
    let server = serve(dir.path(), Duration::from_secs(60)).await?;

    let mut garbage = timeout(WAIT, TcpStream::connect(server.addr)).await??;
    // Noise that does not even start like a TLS record (a plausible record header followed by
    // silence is the silent peer's case, ended by the handshake timeout).
    let mut bytes = noise(100, 0x9e37_79b9_7f4a_7c15);
    bytes[0] = 0xff;
    garbage.write_all(&bytes).await?;
    let mut preface = timeout(WAIT, TcpStream::connect(server.addr)).await??;
    preface.write_all(b"PRI * HTTP/2.0\r\n\r\nSM").await?;
    let silent = timeout(WAIT, TcpStream::connect(server.addr)).await??;

    let started = std::time::Instant::now();
    expect_identity(server.addr, dir.path(), "monitor").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "good client took {:?}",
        started.elapsed()
    );

    // The garbage senders were answered (alert or close), not left hanging.
    for (name, peer) in [("noise", &mut garbage), ("preface", &mut preface)] {
        let mut buf = [0u8; 512];
        let mut total = 0;
        loop {
            match timeout(WAIT, peer.read(&mut buf)).await {
                Err(_) => panic!("{name}: connection still open after {WAIT:?}"),
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => total += n,
            }
        }
        assert!(total < 512, "{name}: server sent {total} bytes to garbage");
    }
    drop(silent);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peers_are_dropped_after_the_handshake_timeout() -> TestResult {
    let dir = cluster(&["db1", "monitor"])?;
    let server = serve(dir.path(), Duration::from_millis(300)).await?;
    let mut silent = timeout(WAIT, TcpStream::connect(server.addr)).await??;
    let mut buf = [0u8; 16];
    let started = std::time::Instant::now();
    let read = timeout(WAIT, silent.read(&mut buf)).await?;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= Duration::from_millis(250));
    expect_identity(server.addr, dir.path(), "monitor").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_rotates_and_survives_a_broken_key() -> TestResult {
    let dir = cluster(&["db1", "monitor"])?;
    let server = serve(dir.path(), WAIT).await?;
    let client = TlsFiles::in_dir(dir.path(), "monitor");
    let db1 = TlsFiles::in_dir(dir.path(), "db1");

    let first = file_certificate(&db1.cert_file)?;
    assert_eq!(server_certificate(server.addr, &client).await?, first);

    // Rotation: a new certificate on disk is served after reload, not before.
    certs::issue(dir.path(), "db1", &[], 30)?;
    let second = file_certificate(&db1.cert_file)?;
    assert_ne!(first, second);
    assert_eq!(server_certificate(server.addr, &client).await?, first);
    server.tls.reload()?;
    assert_eq!(server_certificate(server.addr, &client).await?, second);
    expect_identity(server.addr, dir.path(), "monitor").await;

    // A broken key: reload fails, names the file, and the server keeps serving `second`.
    std::fs::write(&db1.key_file, "-----BEGIN PRIVATE KEY-----\ngarbage\n")?;
    let e = match server.tls.reload() {
        Ok(()) => panic!("reload with a broken key succeeded"),
        Err(e) => e,
    };
    assert!(
        e.to_string()
            .starts_with(&format!("{}: ", db1.key_file.display())),
        "{e}"
    );
    assert_eq!(server_certificate(server.addr, &client).await?, second);
    expect_identity(server.addr, dir.path(), "monitor").await;
    Ok(())
}
