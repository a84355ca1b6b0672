//! The `/metrics` endpoint: a minimal HTTP/1.1 responder (one request per connection), enough
//! for Prometheus and curl. Every read and write has a deadline; anything but `GET /metrics`
//! gets a 404.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::Metrics;
use crate::shutdown::Shutdown;
use crate::snapshot::Snapshot;

const IO_DEADLINE: Duration = Duration::from_secs(5);
const MAX_REQUEST: usize = 8 * 1024;

/// Binds `addr` (failing start-up if it cannot) and serves until shutdown.
pub async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    snapshot: watch::Receiver<Snapshot>,
    mut shutdown: Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {addr} (monitor.yaml metrics)"))?;
    tracing::info!("serving Prometheus metrics on http://{addr}/metrics");
    Ok(tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.recv() => return,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("metrics: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (metrics, snapshot) = (metrics.clone(), snapshot.clone());
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(IO_DEADLINE, answer(stream, &metrics, &snapshot)).await;
            });
        }
    }))
}

async fn answer(
    mut stream: TcpStream,
    metrics: &Metrics,
    snapshot: &watch::Receiver<Snapshot>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let request = String::from_utf8_lossy(&buf);
    let first = request.lines().next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, kind, body) = if method == "GET" && target.split('?').next() == Some("/metrics") {
        let snap = snapshot.borrow().clone();
        (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(&snap),
        )
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only GET /metrics is served here\n".to_string(),
        )
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
