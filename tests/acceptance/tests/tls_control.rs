//! Mutual TLS and authorization on the monitor's control port, with the whole cluster running
//! with TLS: an admin operator may change state (and is named in the log), a read-only
//! operator may only read, an identity monitor.yaml does not list, a certificate of another
//! CA and a plaintext client get nothing; garbage on the port leaves the monitor serving.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ha_acceptance::{Cluster, ClusterOptions};
use ha_lab::tls::{OPERATOR, STRANGER, VIEWER};

#[test]
fn operators_are_authorized_by_certificate() {
    let c = Cluster::start(ClusterOptions::fast()).expect("cluster");
    let before = c.show().expect("show");
    assert_eq!(before.state("db3"), "ONLINE", "{}", before.brief());
    let monitor = || c.monitor().expect("monitor");

    // A reader may read …
    let o = c
        .control_as(VIEWER, false, &["--monitor", "127.0.0.1:9988", "show"])
        .expect("viewer show");
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("db3("), "{o:?}");
    // … but not change anything.
    let o = c
        .control_as(
            VIEWER,
            false,
            &["--monitor", "127.0.0.1:9988", "set_offline", "db3"],
        )
        .expect("viewer set_offline");
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stdout.contains("PermissionDenied") && o.stdout.contains("may only read"),
        "{o:?}"
    );
    // Not listed, another CA, plaintext: nothing at all.
    let o = c
        .control_as(STRANGER, false, &["--monitor", "127.0.0.1:9988", "show"])
        .expect("stranger show");
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("none of the allowed identities"), "{o:?}");
    let o = c
        .control_as(
            OPERATOR,
            true,
            &["--monitor", "127.0.0.1:9988", "set_offline", "db3"],
        )
        .expect("foreign set_offline");
    assert_eq!(
        o.code, 3,
        "another CA's certificate fails the handshake: {o:?}"
    );
    let plain = c
        .lab
        .write_private_file("control-plaintext.yaml", "tls: off\n")
        .expect("plaintext control config");
    let o = c
        .control_with(
            &plain,
            &["--monitor", "127.0.0.1:9988", "set_offline", "db3"],
        )
        .expect("plaintext set_offline");
    assert_eq!(o.code, 3, "a plaintext client gets no answer: {o:?}");
    assert!(o.stdout.contains("spoke plaintext"), "says why: {o:?}");

    // Garbage on the control port.
    let addr: SocketAddr = "127.0.0.1:9988".parse().expect("addr");
    let ns = c.lab.mon().ns.clone();
    ha_lab::netns::in_netns(&ns, move || {
        for payload in [
            (0..300u32)
                .map(|i| (i * 91 % 253) as u8)
                .collect::<Vec<u8>>(),
            b"PRI * HTTP/2.0\r\n\r\nSM".to_vec(),
        ] {
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
                let _ = s.write_all(&payload);
            }
        }
    })
    .expect("garbage thread");

    let after = c.show().expect("show after the refusals");
    assert_eq!(after.state("db3"), "ONLINE", "{}", after.brief());
    assert_eq!(after.writer(), before.writer());
    let log = monitor().log();
    assert!(
        log.contains("refused SetOffline(\"db3\"): operator 'viewer'"),
        "refusals are logged with who asked:\n{log}"
    );

    // The admin operator may, and is named in the log.
    let o = c
        .control(&["set_offline", "db3"])
        .expect("operator set_offline");
    assert_eq!(o.code, 0, "{o:?}");
    c.wait_show("db3 ADMIN_OFFLINE", Duration::from_secs(30), |s| {
        s.state("db3") == "ADMIN_OFFLINE"
    })
    .expect("db3 offline");
    let log = monitor().log();
    assert!(
        log.contains("admin command SetOffline(\"db3\") from operator 'operator'"),
        "{log}"
    );
    let o = c
        .control(&["set_online", "db3"])
        .expect("operator set_online");
    assert_eq!(o.code, 0, "{o:?}");
    c.wait_show("db3 ONLINE again", Duration::from_secs(30), |s| {
        s.state("db3") == "ONLINE"
    })
    .expect("db3 online");
}
