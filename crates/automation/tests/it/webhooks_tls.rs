//! Webhooks over TLS against real local https receivers (axum behind tokio-rustls on
//! 127.0.0.1:0) with certificates made by a test CA at run time (rcgen). The client trusts the
//! test CA as an operator's extra CA. Checks: a receiver whose certificate chains to the trusted
//! CA and names the host gets every event, signed; a certificate for another name, and one from
//! a CA nobody trusts, fail each attempt with the TLS reason in the delivery log, are retried on
//! the backoff schedule and dead-lettered after `ATTEMPTS_MAX` attempts, like any other failure.
//! The manual clock moves to each next due time; nothing sleeps.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use automation::webhook::{
    delivery_log, retry_delay, subscribe, subscription_secret, ClientError, DeliveryState,
    Dispatcher, ATTEMPTS_MAX,
};
use automation::WebhookClient;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use store::scratch::ScratchDb;
use store::Store;
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use crate::support::at;
use crate::webhooks::{append_ticket_event, receiver_app, Receiver, Shared, SIGNING_KEY};

/// A certificate authority made for one test.
struct TestCa {
    certificate: rcgen::Certificate,
    key: KeyPair,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.distinguished_name.push(DnType::CommonName, name);
        let certificate = params.self_signed(&key).unwrap();
        TestCa { certificate, key }
    }

    fn pem(&self) -> String {
        self.certificate.pem()
    }

    /// A server's TLS configuration with a certificate for `names` issued by this CA.
    fn server_config(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let leaf = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.certificate, &self.key)
            .unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .unwrap();
        Arc::new(config)
    }
}

/// Accepts TCP connections and completes the TLS handshake before handing them to axum; a
/// client that refuses the certificate just ends its connection.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, address)) = self.tcp.accept().await else {
                continue;
            };
            match self.acceptor.accept(tcp).await {
                Ok(tls) => return (tls, address),
                Err(_) => continue,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Starts an https receiver on 127.0.0.1; returns its port.
async fn start_tls_receiver(receiver: Shared, config: Arc<rustls::ServerConfig>) -> u16 {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(config),
    };
    let app = receiver_app(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test]
async fn https_receivers_are_verified_and_tls_failures_retry_then_dead_letter() {
    let db = ScratchDb::sqlite().await;
    let store = Store::open_with(db.config.clone()).await.unwrap();
    let clock = Arc::new(Mutex::new(at(0)));
    let trusted = TestCa::new("Docket test CA");
    let stranger = TestCa::new("Nobody's CA");

    let good = Receiver::reliable(clock.clone());
    let good_port = start_tls_receiver(good.clone(), trusted.server_config(&["localhost"])).await;
    let unknown = Receiver::reliable(clock.clone());
    let unknown_port =
        start_tls_receiver(unknown.clone(), stranger.server_config(&["localhost"])).await;

    // "wrong-name" reaches the good receiver by IP address, which its certificate does not name.
    let targets = [
        ("good", format!("https://localhost:{good_port}/hooks")),
        ("wrong-name", format!("https://127.0.0.1:{good_port}/hooks")),
        (
            "untrusted",
            format!("https://localhost:{unknown_port}/hooks"),
        ),
    ];
    let mut subscriptions = Vec::new();
    for (name, url) in &targets {
        let subscription = subscribe(&store, name, url, vec!["TagsAdded".to_owned()], at(0))
            .await
            .unwrap()
            .unwrap();
        subscriptions.push(subscription.subscription_id);
    }
    let secret = subscription_secret(SIGNING_KEY, subscriptions[0]);
    good.lock().unwrap().set_secret(secret.clone());
    unknown.lock().unwrap().set_secret(secret);

    let ticket = Uuid::now_v7();
    let mut sent = BTreeSet::new();
    for version in 1..=3 {
        sent.insert(append_ticket_event(&store, ticket, version).await);
    }
    let client = WebhookClient::new(Some(trusted.pem().as_bytes())).unwrap();
    let mut dispatcher = Dispatcher::open(store.clone(), Arc::from(SIGNING_KEY), client)
        .await
        .unwrap();
    for step in 0.. {
        assert!(step < 100, "deliveries do not settle");
        let now = *clock.lock().unwrap();
        while dispatcher.catch_up(now).await.unwrap() > 0 {}
        dispatcher.deliver_due(now).await.unwrap();
        match dispatcher.next_due() {
            Some(due) => *clock.lock().unwrap() = due.max(now),
            None => break,
        }
    }

    {
        let good = good.lock().unwrap();
        assert_eq!(good.bad_signatures(), 0, "every signature verifies");
        assert_eq!(
            good.received().iter().copied().collect::<BTreeSet<_>>(),
            sent
        );
        assert_eq!(good.received().len(), sent.len(), "each delivered once");
        assert!(unknown.lock().unwrap().received().is_empty());
    }

    let log = delivery_log(&store, subscriptions[0]).await.unwrap();
    assert!(
        log.deliveries
            .iter()
            .all(|delivery| delivery.state == DeliveryState::Delivered
                && delivery.attempts.len() == 1)
    );
    let mut errors = Vec::new();
    for (subscription, (name, _)) in subscriptions.iter().zip(&targets).skip(1) {
        let log = delivery_log(&store, *subscription).await.unwrap();
        assert_eq!(log.deliveries.len(), sent.len());
        for delivery in &log.deliveries {
            assert_eq!(delivery.state, DeliveryState::DeadLetter, "{name}");
            assert_eq!(delivery.attempts.len(), ATTEMPTS_MAX as usize, "{name}");
            for pair in delivery.attempts.windows(2) {
                assert_eq!(
                    pair[1].at - pair[0].at,
                    retry_delay(pair[0].attempt, delivery.event_id),
                    "{name}: a TLS failure waits its backoff like any other"
                );
            }
            let reasons: BTreeSet<_> = delivery
                .attempts
                .iter()
                .map(|attempt| (attempt.status, attempt.error.clone().unwrap()))
                .collect();
            assert_eq!(reasons.len(), 1, "{name}: {reasons:?}");
        }
        let error = log.deliveries[0].attempts[0].error.clone().unwrap();
        errors.push(format!(
            "{name}: {}",
            error.replace(&good_port.to_string(), "PORT")
        ));
    }
    expect_test::expect![[r#"
        wrong-name: tls handshake with 127.0.0.1: invalid peer certificate: certificate not valid for name "127.0.0.1"; certificate is only valid for DnsName("localhost")
        untrusted: tls handshake with localhost: invalid peer certificate: UnknownIssuer"#]].assert_eq(&errors.join("\n"));
    drop(store);
    db.cleanup().await;
}

#[test]
fn an_extra_ca_that_is_not_a_certificate_is_refused_precisely() {
    let check = |pem: &[u8]| match WebhookClient::new(Some(pem)) {
        Ok(_) => "accepted".to_owned(),
        Err(error) => error.to_string(),
    };
    let key = KeyPair::generate().unwrap().serialize_pem();
    let ca = TestCa::new("Docket test CA").pem();
    let actual = [
        check(b"not a PEM file"),
        check(key.as_bytes()),
        check(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        check(ca.as_bytes()),
        check(ca.repeat(automation::webhook::EXTRA_CAS_MAX).as_bytes()),
        check(ca.repeat(automation::webhook::EXTRA_CAS_MAX + 1).as_bytes()),
    ];
    expect_test::expect![[r#"
        extra CA PEM holds no CERTIFICATE block
        extra CA PEM holds no CERTIFICATE block
        extra CA certificate 0 is not a usable trust anchor: invalid peer certificate: BadEncoding
        accepted
        accepted
        extra CA PEM holds more than 64 certificates"#]]
    .assert_eq(&actual.join("\n"));
    assert!(matches!(
        WebhookClient::new(Some(b"")),
        Err(ClientError::NoCertificate)
    ));
}
