//! Mutual TLS on the agent port, on real MariaDB: only the monitor's certificate may call.
//! A caller without a certificate, with a certificate of another CA, with another identity of
//! the cluster's CA, or speaking plaintext is refused on every RPC, and nothing changes on the
//! host (read_only, IPs, replication, client connections). Garbage on the port leaves the agent
//! serving.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use ha_lab::{netns, Lab, LabOptions};
use ha_proto::{AgentPingRequest, AgentStatusRequest, ClearBadRolesRequest};

/// What the host looks like to an observer that does not go through the agent.
fn host_facts(lab: &Lab, c: &Cluster) -> (bool, Vec<std::net::Ipv4Addr>, Option<String>) {
    let ro = lab.read_only("db1").expect("read_only");
    let ips: Vec<_> = std::iter::once(c.writer)
        .chain(c.readers.iter().copied())
        .filter(|ip| has_ip(lab, "db1", *ip))
        .collect();
    let source = lab
        .sql_value(
            "db1",
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'system user'",
        )
        .expect("replication threads");
    (ro, ips, source)
}

#[test]
fn only_the_monitor_certificate_is_obeyed() {
    let lab = Lab::start(LabOptions::hosts(2)).expect("lab");
    let a1 = start_agent(&lab, "db1", &AgentOpts::default());
    let _logs = LogsOnPanic(vec![a1.clone()]);
    let c = Cluster::of(&lab);
    let addr = agent_addr(&lab, "db1");
    let before = host_facts(&lab, &c);
    assert!(before.0, "db1 starts read-only");

    let callers = [
        Caller::Identity(ha_lab::tls::OPERATOR),
        Caller::Identity(ha_lab::tls::STRANGER),
        Caller::Foreign,
        Caller::NoCertificate,
        Caller::Plaintext,
    ];
    for caller in callers {
        // The most dangerous request there is: the writer role, no lease, a huge epoch.
        let mut req = c.req("db1", vec![c.writer_role()], Some("db1"), u64::MAX / 2);
        req.writer_lease_ms = 0;
        let r = call_as(&lab, addr, caller, move |mut cl| async move {
            cl.apply_state(req).await
        });
        let e = r.expect_err("ApplyState must be refused");
        if let Caller::Identity(_) = caller {
            assert_eq!(e.code(), tonic::Code::PermissionDenied, "{caller:?}: {e:?}");
            assert!(
                e.message().contains("none of the allowed identities"),
                "{caller:?}: {e:?}"
            );
        }
        let all = c.all_roles();
        let r = call_as(&lab, addr, caller, move |mut cl| async move {
            cl.clear_bad_roles(ClearBadRolesRequest {
                leader_term: 0,
                host: "db1".into(),
                all_roles: all,
                writer_role: "writer".into(),
            })
            .await
        });
        assert!(r.is_err(), "{caller:?}: ClearBadRoles must be refused");
        let r = call_as(&lab, addr, caller, |mut cl| async move {
            cl.get_status(AgentStatusRequest { host: "db1".into() })
                .await
        });
        assert!(r.is_err(), "{caller:?}: GetStatus must be refused");
        let r = call_as(&lab, addr, caller, |mut cl| async move {
            cl.get_system_status(AgentStatusRequest { host: "db1".into() })
                .await
        });
        assert!(r.is_err(), "{caller:?}: GetSystemStatus must be refused");
        let r = call_as(&lab, addr, caller, |mut cl| async move {
            cl.ping(AgentPingRequest { host: "db1".into() }).await
        });
        assert!(r.is_err(), "{caller:?}: Ping must be refused");
    }
    let after = host_facts(&lab, &c);
    assert_eq!(before.0, after.0, "read_only unchanged");
    assert_eq!(before.1, after.1, "role IPs unchanged");
    assert_eq!(before.2, after.2, "replication threads unchanged");
    let st = status(&lab, "db1").expect("the monitor's certificate is obeyed");
    assert!(st.roles.is_empty() && st.read_only, "{st:#?}");
    let log = a1.log();
    assert!(
        log.contains("refused ApplyState") && log.contains("none of the allowed identities"),
        "refusals are logged with the reason:\n{log}"
    );

    // Garbage on the port: random bytes, a truncated HTTP/2 preface, a silent connection.
    let ns = lab.mon().ns.clone();
    netns::in_netns(&ns, move || {
        let mut silent = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok();
        for payload in [
            (0..200u32)
                .map(|i| (i * 37 % 251) as u8)
                .collect::<Vec<u8>>(),
            b"PRI * HTTP/2.0\r\n\r\nSM".to_vec(),
        ] {
            if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
                let _ = s.write_all(&payload);
            }
        }
        if let Some(s) = silent.as_mut() {
            let _ = s.write_all(b"");
        }
        silent
    })
    .expect("garbage thread");
    let st = status(&lab, "db1").expect("still serving after garbage");
    assert!(st.read_only);
    assert!(a1.is_running(), "the agent survived");
}

/// `systemctl reload` (SIGHUP) re-reads the certificate: a broken key is reported and the old
/// certificate stays in use; a re-issued certificate is taken, and the monitor's calls keep
/// working throughout.
#[test]
fn sighup_reloads_the_certificate_and_survives_a_broken_one() {
    let lab = Lab::start(LabOptions::hosts(1)).expect("lab");
    let a1 = start_agent(&lab, "db1", &AgentOpts::default());
    let _logs = LogsOnPanic(vec![a1.clone()]);
    let pid = a1.pid().expect("agent pid") as libc::pid_t;
    let files = lab.cert_files("db1").expect("db1 files");
    let hup = || {
        // SAFETY: kill(2) on the PID of the agent this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0, "SIGHUP");
    };
    let wait_log = |needle: &str| {
        ha_lab::wait_until(
            &format!("agent log shows {needle:?}"),
            Duration::from_secs(10),
            || Ok(a1.log().contains(needle).then_some(())),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", a1.log()));
    };

    // A key that does not match: refused, the old certificate stays.
    let good_key = std::fs::read(&files.key).expect("read key");
    std::fs::write(
        &files.key,
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .expect("break key");
    hup();
    wait_log("TLS reload failed, the previous certificate stays in use");
    status(&lab, "db1").expect("still serving with the old certificate");

    // Rotation: a new certificate for the same identity.
    std::fs::write(&files.key, good_key).expect("restore key");
    let dir = lab.tls_dir().expect("tls dir");
    ha_tls::certs::issue(&dir, "db1", &[], 30).expect("re-issue db1");
    hup();
    wait_log("SIGHUP: reloaded the TLS certificate");
    status(&lab, "db1").expect("serving with the new certificate");
    assert!(a1.is_running());
}
