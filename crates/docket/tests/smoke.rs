//! One real-socket smoke test of the `docket` binary: `docket serve` on a free loopback port
//! over a SQLite file, called over HTTP, stopped with SIGTERM (exit 0), and started again on
//! the same file with its data still there; and, with a trigger in its `docket.toml` and a
//! webhook signing key, `/metrics` showing the trigger manager, the webhook dispatcher and the
//! routing manager (on by default) it runs.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest the server may take to start answering or to stop.
const WAIT_MAX: Duration = Duration::from_secs(30);
const ADMIN_TOKEN: &str = "dkt_smoke_test_admin_token_0123456789";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 request on its own connection (`Connection: close`): status and body.
fn call(port: u16, method: &str, path: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(WAIT_MAX))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn start(port: u16, database: &Path) -> Child {
    start_with(port, database, &[])
}

/// `docket serve` in the database's directory (where it reads `docket.toml`, if there is one),
/// with `env` set besides the admin token.
#[allow(
    clippy::zombie_processes,
    reason = "the child is returned, and `stop` waits for it"
)]
fn start_with(port: u16, database: &Path, env: &[(&str, &str)]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_docket"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--database-url")
        .arg(format!("sqlite://{}", database.display()))
        .current_dir(database.parent().unwrap())
        .env("DOCKET_ADMIN_TOKEN", ADMIN_TOKEN)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(
            // Appended: a second start keeps what the first wrote, for `assert_no_panic`.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(stderr_path(database))
                .unwrap(),
        )
        .spawn()
        .expect("starting docket serve");
    let started = Instant::now();
    loop {
        if let Ok((200, _)) = call(port, "GET", "/healthz", None) {
            return child;
        }
        // It exited (the port was taken meanwhile, say): fail now, not after `WAIT_MAX`.
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = std::fs::read_to_string(stderr_path(database)).unwrap_or_default();
            panic!("docket serve exited with {status} before answering:\n{stderr}");
        }
        if started.elapsed() > WAIT_MAX {
            let _ = child.kill();
            let _ = child.wait();
            panic!("docket serve did not answer /healthz within {WAIT_MAX:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where a server started for `database` writes its stderr.
fn stderr_path(database: &Path) -> std::path::PathBuf {
    database.with_extension("stderr.log")
}

/// What the server wrote to stderr has no panic in it (a panic on a background thread does not
/// change the exit status).
fn assert_no_panic(database: &Path) {
    let stderr = std::fs::read_to_string(stderr_path(database)).unwrap_or_default();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn stop(mut child: Child) {
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > WAIT_MAX {
            let _ = child.kill();
            let _ = child.wait();
            panic!("docket serve did not stop within {WAIT_MAX:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "docket serve exited with {status}");
}

#[test]
fn serve_answers_stops_on_sigterm_and_keeps_its_data() {
    let dir = std::env::temp_dir().join(format!("docket-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = dir.join("docket.db");
    let port = free_port();
    let server = start(port, &database);
    let (status, body) =
        call(port, "POST", "/v1/admin/teams", Some(r#"{"name":"Smoke"}"#)).unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(port, "GET", "/readyz", None).unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(port, "GET", "/v1/nowhere", None).unwrap();
    assert_eq!(status, 404, "{body}");
    stop(server);

    let port = free_port();
    let server = start(port, &database);
    let (status, teams) = call(port, "GET", "/v1/admin/teams", None).unwrap();
    assert_eq!(status, 200, "{teams}");
    assert!(teams.contains("\"Smoke\""), "{teams}");
    stop(server);
    assert_no_panic(&database);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_shows_its_background_managers_in_metrics() {
    let dir = std::env::temp_dir().join(format!("docket-smoke-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("docket.toml"),
        r#"
[[automation.triggers]]
id = "tag-new"
on = ["TicketCreated"]
actions = [{ add_tags = ["new"] }]
"#,
    )
    .unwrap();
    let database = dir.join("docket.db");
    let port = free_port();
    let server = start_with(
        port,
        &database,
        &[("DOCKET_WEBHOOK_SIGNING_KEY", "smoke test signing key")],
    );
    // The managers and the dispatcher start beside the API: a bounded wait for all to show.
    let started = Instant::now();
    let metrics = loop {
        let (status, body) = call(port, "GET", "/metrics", None).unwrap();
        assert_eq!(status, 200, "{body}");
        if body.contains("\ndocket_webhooks_leader 1")
            && body.contains("\ndocket_trigger_lag_events 0")
            && body.contains("\ndocket_routing_lag_events 0")
        {
            break body;
        }
        assert!(started.elapsed() < WAIT_MAX, "{body}");
        std::thread::sleep(Duration::from_millis(50));
    };
    for name in [
        "docket_trigger_position",
        "docket_trigger_firings_total",
        "docket_webhooks_delivered_total",
        "docket_routing_position",
        "docket_routing_assigned_total",
    ] {
        assert!(
            metrics.contains(&format!("\n{name} ")),
            "{name} in {metrics}"
        );
    }
    stop(server);
    assert_no_panic(&database);
    let _ = std::fs::remove_dir_all(&dir);
}
