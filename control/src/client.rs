//! Reaching the monitor: address resolution and one gRPC call under one deadline.
//!
//! mmm_control gave up connecting after 10 s and then waited for the reply forever. ha-control
//! bounds the whole exchange (connect + request + reply) by `--timeout`, so a hung monitor
//! cannot hang an operator's script (docs/product.md F2).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use ha_proto::monitor_client::MonitorClient;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// A monitor control address, as tried and as reported in errors.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` (IPv6 in brackets), printed in error messages.
    pub display: String,
    /// `http://host:port` for tonic (`https://` once [`Target::with_tls`] is applied).
    pub uri: String,
    /// Mutual TLS towards the monitor; `None` = plaintext.
    pub tls: Option<ClientTlsConfig>,
}

impl Target {
    fn new(host: &str, port: u16) -> Target {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let display = format!("{host}:{port}");
        Target {
            uri: format!("http://{display}"),
            display,
            tls: None,
        }
    }

    /// Talks mutual TLS with `tls` (ha-control's control.yaml).
    pub fn with_tls(mut self, tls: ClientTlsConfig) -> Target {
        self.uri = self.uri.replacen("http://", "https://", 1);
        self.tls = Some(tls);
        self
    }

    pub fn from_socket_addr(addr: SocketAddr) -> Target {
        Target::new(&addr.ip().to_string(), addr.port())
    }

    /// The leader a standby named (`IP:PORT`), reached with this target's TLS settings.
    pub fn follow(&self, leader: &str) -> Result<Target, String> {
        let next = Target::parse(leader)
            .map_err(|e| format!("ERROR: {} named the leader '{leader}': {e}", self.display))?;
        Ok(match &self.tls {
            Some(tls) => next.with_tls(tls.clone()),
            None => next,
        })
    }

    /// Parses `--monitor`: `HOST`, `HOST:PORT`, `IP`, `IP:PORT`, `[IPv6]:PORT` or a bare IPv6
    /// address; the port defaults to 9988. An `http://` prefix is accepted and ignored.
    pub fn parse(s: &str) -> Result<Target, String> {
        let s = s.trim();
        let s = s.strip_prefix("http://").unwrap_or(s);
        let s = s.strip_suffix('/').unwrap_or(s);
        let bad = || {
            format!(
                "invalid monitor address '{s}' (expected HOST[:PORT], IP[:PORT] or [IPv6]:PORT)"
            )
        };
        if s.is_empty() {
            return Err(bad());
        }
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(Target::from_socket_addr(addr));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Target::new(&ip.to_string(), ha_proto::DEFAULT_MONITOR_PORT));
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| bad())?),
            None => (s, ha_proto::DEFAULT_MONITOR_PORT),
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if !host_ok {
            return Err(bad());
        }
        Ok(Target::new(host, port))
    }

    /// The control address from a monitor configuration file (`monitor.ip`, `monitor.port`).
    /// The whole file is validated; its errors are returned one per line.
    pub fn from_config(path: &Path) -> Result<Target, String> {
        let cfg = ha_config::load_monitor(path).map_err(|e| e.to_string())?;
        Ok(Target::from_socket_addr(cfg.control_addr()))
    }
}

/// Why a call produced no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Could not connect, the connection broke, or no reply before the deadline (exit 3).
    Unreachable { address: String, cause: String },
    /// The monitor answered with a gRPC error status (exit 1).
    Failed(String),
}

/// Describes a transport error for an operator: the innermost I/O error if there is one
/// (`connection refused`), else the chain of messages.
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                // Other/Uncategorized kinds say nothing; the OS text is better.
                std::io::ErrorKind::Other => io.to_string(),
                kind => kind.to_string(),
            };
        }
        let text = e.to_string();
        if chain.last() != Some(&text) && text != "transport error" {
            chain.push(text);
        }
        cur = e.source();
    }
    if chain.is_empty() {
        "transport error".to_string()
    } else {
        chain.join(": ")
    }
}

fn unreachable(target: &Target, cause: impl Into<String>) -> CallError {
    CallError::Unreachable {
        address: target.display.clone(),
        cause: cause.into(),
    }
}

/// Maps a gRPC status of a call. Statuses meaning "nobody usable is there" — unavailable,
/// cancelled, deadline exceeded, or any status caused by a transport error (tonic reports a
/// broken connection as `Unknown` with the I/O error as source) — make the monitor
/// unreachable; any other status is the monitor refusing or failing the request.
fn status_error(target: &Target, status: tonic::Status) -> CallError {
    use tonic::Code;
    let source = std::error::Error::source(&status);
    match status.code() {
        Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded => {
            let cause = source
                .map(describe)
                .unwrap_or_else(|| status.message().to_string());
            unreachable(target, cause)
        }
        _ if source.is_some() => unreachable(target, source.map(describe).unwrap_or_default()),
        code => CallError::Failed(format!(
            "ERROR: The monitor failed the request: {code:?}: {}",
            status.message()
        )),
    }
}

fn secs_text(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// Connects to `target` and runs `call` on the client with `req`, the whole exchange bounded
/// by `timeout`. Builds its own single-threaded runtime: ha-control makes one call per run.
///
/// Redundant monitors: a standby refuses with the leader's address (gRPC metadata
/// `ha-leader`); the call is then made once more, against the leader, with the same request,
/// TLS settings and deadline.
pub fn call<R, T, F, Fut>(
    target: &Target,
    timeout: Duration,
    req: R,
    call: F,
) -> Result<T, CallError>
where
    R: Clone,
    F: Fn(MonitorClient<Channel>, R) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| unreachable(target, format!("cannot start the I/O runtime: {e}")))?;
    rt.block_on(async {
        match exchange(target, timeout, req.clone(), &call).await {
            Err(Attempt::Redirect(leader)) => {
                let next = target.follow(&leader).map_err(CallError::Failed)?;
                match exchange(&next, timeout, req, &call).await {
                    Ok(v) => Ok(v),
                    Err(Attempt::Failed(e)) => Err(e),
                    Err(Attempt::Redirect(other)) => Err(CallError::Failed(format!(
                        "ERROR: {} named the leader {}, which names {other}: the monitors \
                         disagree about who leads (an election is under way); retry",
                        target.display, next.display
                    ))),
                }
            }
            Err(Attempt::Failed(e)) => Err(e),
            Ok(v) => Ok(v),
        }
    })
}

/// Why one exchange produced no reply.
enum Attempt {
    Failed(CallError),
    /// A standby named the leader's control address.
    Redirect(String),
}

/// One connection and call under `timeout`.
async fn exchange<R, T, F, Fut>(
    target: &Target,
    timeout: Duration,
    req: R,
    call: &F,
) -> Result<T, Attempt>
where
    F: Fn(MonitorClient<Channel>, R) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let failed = |e| Attempt::Failed(e);
    let mut endpoint = Endpoint::from_shared(target.uri.clone()).map_err(|e| {
        failed(unreachable(
            target,
            format!("invalid address: {}", describe(&e)),
        ))
    })?;
    if let Some(tls) = &target.tls {
        endpoint = endpoint
            .tls_config(tls.clone())
            .map_err(|e| failed(unreachable(target, format!("TLS set-up: {}", describe(&e)))))?;
    }
    let endpoint = endpoint
        // The request itself is bounded by the outer timeout below (one deadline for the
        // whole exchange, reported as "no answer within …").
        .connect_timeout(timeout);
    let exchange = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| failed(unreachable(target, describe(&e))))?;
        let plaintext = target.tls.is_none();
        call(MonitorClient::new(channel), req)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| {
                if let Some(leader) = s
                    .metadata()
                    .get(ha_proto::LEADER_METADATA)
                    .and_then(|v| v.to_str().ok())
                {
                    return Attempt::Redirect(leader.to_string());
                }
                // A broken transport on a plaintext call is what a TLS monitor looks like.
                let transport = std::error::Error::source(&s).is_some();
                failed(match status_error(target, s) {
                    CallError::Unreachable { address, cause } if plaintext && transport => {
                        CallError::Unreachable {
                            address,
                            cause: format!("{cause} (ha-control spoke plaintext; a monitor with TLS, the default, needs ha-control's control.yaml: see --control-config)"),
                        }
                    }
                    e => e,
                })
            })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(failed(unreachable(
            target,
            format!("no answer within {}", secs_text(timeout)),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let t = |s: &str| Target::parse(s).map(|t| (t.display, t.uri));
        assert_eq!(
            t("127.0.0.1:9000"),
            Ok(("127.0.0.1:9000".into(), "http://127.0.0.1:9000".into()))
        );
        assert_eq!(t("10.0.0.5").map(|x| x.0), Ok("10.0.0.5:9988".into()));
        assert_eq!(t("::1").map(|x| x.0), Ok("[::1]:9988".into()));
        assert_eq!(t("[::1]:7").map(|x| x.1), Ok("http://[::1]:7".into()));
        assert_eq!(t("mon.example").map(|x| x.0), Ok("mon.example:9988".into()));
        assert_eq!(t("mon-1:99").map(|x| x.0), Ok("mon-1:99".into()));
        assert_eq!(
            t("http://127.0.0.1:5/").map(|x| x.0),
            Ok("127.0.0.1:5".into())
        );
        assert!(t("").is_err());
        assert!(t("host:notaport").is_err());
        assert!(t("a b").is_err());
        assert!(t("host:99999").is_err());
    }

    #[test]
    fn timeout_text() {
        assert_eq!(secs_text(Duration::from_secs(10)), "10 s");
        assert_eq!(secs_text(Duration::from_millis(500)), "0.5 s");
    }

    #[test]
    fn io_errors_are_described_by_kind() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(describe(&e), "connection refused");
    }
}
