//! TLS: a server started with a certificate serves only over TLS, and with a client CA only to
//! clients presenting a certificate that CA signed. Certificates are made by the test (rcgen).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opsgate_proto::v1 as pb;
use opsgate_proto::v1::gate_service_client::GateServiceClient;
use opsgate_server::{Config, Tls};
use opsgate_tests::{TestDb, TestServer, bearer, workflows_dir};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const BOOTSTRAP: &str = "og_3333333333333333333333333333333333333333333333333333333333333333";

struct Pki {
    ca_pem: String,
    dir: tempfile::TempDir,
    client: Identity,
    stranger: Identity,
}

/// A CA, a server certificate for localhost signed by it, a client certificate signed by it, and
/// a client certificate from another (self-signed) CA.
fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["ci-runner".to_owned()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    let stranger_key = KeyPair::generate().unwrap();
    let stranger_cert = CertificateParams::new(vec!["ci-runner".to_owned()])
        .unwrap()
        .self_signed(&stranger_key)
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.crt"), server_cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca_cert.pem()).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        dir,
        client: Identity::from_pem(client_cert.pem(), client_key.serialize_pem()),
        stranger: Identity::from_pem(stranger_cert.pem(), stranger_key.serialize_pem()),
    }
}

async fn start(db: &TestDb, pki: &Pki, client_ca: bool) -> (TestServer, u16) {
    let server = TestServer::start_config(
        db,
        Config {
            workflows_dir: Some(workflows_dir()),
            bootstrap_token: Some(BOOTSTRAP.into()),
            tls: Some(Tls {
                cert: pki.dir.path().join("server.crt"),
                key: pki.dir.path().join("server.key"),
                client_ca: client_ca.then(|| pki.dir.path().join("ca.crt")),
            }),
            ..Config::new("127.0.0.1:0".parse().unwrap(), &db.url)
        },
    )
    .await;
    let port = server.url.rsplit(':').next().unwrap().parse().unwrap();
    (server, port)
}

/// A gate check over TLS to localhost:`port`, presenting `identity` when given.
async fn gate_check(pki: &Pki, port: u16, identity: Option<Identity>) -> Result<(), String> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let answer = GateServiceClient::new(channel)
        .check_gate(bearer(
            BOOTSTRAP,
            pb::CheckGateRequest {
                target: Some(pb::check_gate_request::Target::Service(pb::ServiceRef {
                    name: "payroll".into(),
                    version: "9.9".into(),
                })),
            },
        ))
        .await;
    match answer {
        // No such transition: the call went through TLS and authentication to the store.
        Err(status) if status.code() == tonic::Code::NotFound => Ok(()),
        Err(status) => Err(format!("{status:?}")),
        Ok(_) => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_travel_only_inside_tls() {
    let pki = pki();
    let db = TestDb::sqlite();
    let (server, port) = start(&db, &pki, false).await;
    gate_check(&pki, port, None).await.unwrap();
    // Plain text to a TLS port gets nowhere.
    let plain = GateServiceClient::connect(format!("http://127.0.0.1:{port}")).await;
    // (Had it reached the server, the empty request would be InvalidArgument.)
    if let Ok(mut client) = plain {
        let status = client
            .check_gate(bearer(BOOTSTRAP, pb::CheckGateRequest::default()))
            .await
            .unwrap_err();
        assert_ne!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ca_admits_only_the_certificates_it_signed() {
    let pki = pki();
    let db = TestDb::sqlite();
    let (server, port) = start(&db, &pki, true).await;
    gate_check(&pki, port, Some(pki.client.clone()))
        .await
        .unwrap();
    assert!(
        gate_check(&pki, port, None).await.is_err(),
        "no client certificate"
    );
    assert!(
        gate_check(&pki, port, Some(pki.stranger.clone()))
            .await
            .is_err(),
        "a certificate the CA did not sign"
    );
    server.stop().await;
}
