//! What one webhook delivery costs the dispatcher's client: `WebhookClient::post` of a 1 KiB
//! body to a local receiver, over plain HTTP and over HTTPS (a new connection and a full TLS 1.3
//! handshake per delivery, ECDSA P-256 certificate from a test CA, chain and name verified).
//! The receivers run on their own thread and runtime, so the CPU time printed (this thread's,
//! from `/proc/thread-self/schedstat`) is the client's alone; wall time includes the receiver
//! and the machine's neighbours.
//!
//! `cargo bench -p automation --bench deliveries` (`-- --quick` for a smaller run).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use automation::WebhookClient;
use axum::http::StatusCode;
use hyper::body::Bytes;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};

/// CPU time of this thread so far, in nanoseconds (Linux), for figures on a shared machine.
fn cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

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
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A test CA's PEM and a server configuration for `localhost` issued by it.
fn pki() -> (String, Arc<rustls::ServerConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (ca.pem(), Arc::new(config))
}

/// Starts both receivers on a thread of their own; returns their ports.
fn start_receivers(config: Arc<rustls::ServerConfig>) -> (u16, u16) {
    let (ports_sender, ports) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = axum::Router::new()
                .route("/hooks", axum::routing::post(|| async { StatusCode::OK }));
            let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
            ports_sender
                .send((
                    plain.local_addr().unwrap().port(),
                    tls.local_addr().unwrap().port(),
                ))
                .unwrap();
            let tls = TlsListener {
                tcp: tls,
                acceptor: tokio_rustls::TlsAcceptor::from(config),
            };
            let plain_app = app.clone();
            tokio::spawn(async move { axum::serve(plain, plain_app).await.unwrap() });
            axum::serve(tls, app).await.unwrap();
        });
    });
    ports.recv().unwrap()
}

#[allow(clippy::print_stdout, reason = "a benchmark prints its figures")]
fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let deliveries: u32 = if quick { 100 } else { 1_000 };
    let (ca_pem, config) = pki();
    let (plain_port, tls_port) = start_receivers(config);
    let client = WebhookClient::new(Some(ca_pem.as_bytes())).unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    let headers = [(
        "docket-event-id",
        "00000000-0000-0000-0000-000000000001".to_owned(),
    )];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("webhook client, {deliveries} deliveries of a 1 KiB body each, one connection per delivery:");
    for (name, url) in [
        ("http:// ", format!("http://127.0.0.1:{plain_port}/hooks")),
        ("https://", format!("https://localhost:{tls_port}/hooks")),
    ] {
        let outcome = runtime.block_on(client.post(&url, &headers, body.clone()));
        assert_eq!(
            outcome,
            automation::webhook::AttemptOutcome::Status(200),
            "{url}"
        );
        let started = Instant::now();
        let cpu_started = cpu_nanos();
        runtime.block_on(async {
            for _ in 0..deliveries {
                let outcome = client.post(&url, &headers, body.clone()).await;
                assert_eq!(outcome, automation::webhook::AttemptOutcome::Status(200));
            }
        });
        let wall = started.elapsed().as_secs_f64() * 1e6 / f64::from(deliveries);
        let cpu = cpu_started.zip(cpu_nanos()).map_or_else(
            || "n/a".to_owned(),
            |(a, b)| format!("{:.1}", (b - a) as f64 / 1e3 / f64::from(deliveries)),
        );
        println!("  {name}  {wall:8.1} µs wall  {cpu:>8} µs cpu (client)  per delivery");
    }
}
