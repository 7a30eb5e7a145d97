//! `docket bench http`: the API over a real socket under a realistic mix. The server runs
//! in-process on 127.0.0.1:0 over a scratch store; the load generator is in the same process,
//! with its own small HTTP/1.1 client (keep-alive, Content-Length requests; Content-Length or
//! chunked responses). Beside the API it runs what `docket serve` runs on its default
//! configuration (the routing manager, the SLA scheduler). It measures and prints; it never
//! asserts a time.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use store::scratch::ScratchDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bench::{ms, percentile};

/// Agents (each with a token) and customers in the benchmark's workspace.
const AGENTS: usize = 16;
const CUSTOMERS: usize = 32;
/// Largest response the client accepts (a page of tickets is far below it).
const RESPONSE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Longest the client waits for one response before calling the run broken.
const RESPONSE_WAIT_MAX: Duration = Duration::from_secs(30);

/// The wall clock for commands.
#[derive(Debug)]
struct SystemClock;

impl api::Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// The operations of the mix, in the order one ticket goes through them.
const OPS: [&str; 8] = [
    "create",
    "assign_team",
    "assign_agent",
    "public_reply",
    "internal_note",
    "transition",
    "get",
    "list",
];
/// Which operations are commands (they append events).
const COMMAND_OPS: [bool; 8] = [true, true, true, true, true, true, false, false];

pub async fn run(
    seconds: u64,
    connections: usize,
    backends: &[String],
    postgres_url: Option<&str>,
) -> anyhow::Result<()> {
    println!(
        "docket bench http: {connections} keep-alive connections for {seconds} s per backend; \
         each ticket: create, assign team, assign agent, public reply, internal note, transition, get, list"
    );
    for backend in backends {
        let db = match backend.as_str() {
            "sqlite" => ScratchDb::sqlite().await,
            "postgres" => {
                let url = postgres_url
                    .context("--postgres-url or DOCKET_TEST_DATABASE_URL is needed for postgres")?;
                ScratchDb::postgres_at(url)
                    .await
                    .context("creating a scratch schema")?
            }
            other => bail!("unknown backend {other:?}: use sqlite or postgres"),
        };
        let result = bench_backend(&db, backend, connections, Duration::from_secs(seconds)).await;
        db.cleanup().await;
        result?;
    }
    Ok(())
}

/// What the load generator needs to know about the workspace.
struct Workspace {
    addr: SocketAddr,
    team: Value,
    /// `(agent id, token)`.
    agents: Vec<(Value, String)>,
    customers: Vec<Value>,
    /// Whether `GET /v1/tickets` is routed on this build.
    list_routed: bool,
}

async fn bench_backend(
    db: &ScratchDb,
    backend: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<()> {
    let store = store::Store::open_with(db.config.clone())
        .await
        .context("opening the scratch store")?;
    let config = api::ApiConfig {
        // The benchmark measures the engine, not the limiter's refusals.
        rate_limit: api::RateLimit {
            burst: 1_000_000_000,
            per_second: 1_000_000_000,
        },
        // The rest as `docket serve` runs when `docket.toml` sets nothing (the read models on
        // their own thread among it).
        ..crate::config::Config::default().api_config()
    };
    let state = api::AppState::start(
        store.clone(),
        domain::BlueprintCatalog::builtin(),
        Arc::new(SystemClock),
        config,
    )
    .await
    .context("starting the API")?;
    // What `docket serve` runs beside the API on its default configuration, so that the figure
    // is the server's: the routing manager and the SLA scheduler with the shipped policies.
    let (stop_background, background) = tokio::sync::watch::channel(false);
    let router = routing::Manager::new(
        store.clone(),
        routing::Engine::new(routing::RoutingConfig::default()),
        domain::BlueprintCatalog::builtin(),
        Arc::new(jiff::Timestamp::now),
        format!("docket-bench-{}", std::process::id()),
    );
    tokio::spawn(router.run(background.clone()));
    let policies = sla_scheduler::Policies::compile(&sla_scheduler::SlaConfig::shipped())
        .map_err(|error| anyhow::anyhow!("the shipped SLA policies: {error}"))?;
    state.start_scheduler(
        Arc::new(policies),
        None,
        sla_scheduler::Leadership::for_store(&store, sla_scheduler::SCHEDULER_LOCK),
        background,
    );
    let admin = state
        .issue_token(api::ApiRole::Admin, None, "bench admin")
        .await
        .map_err(|error| anyhow::anyhow!("issuing the admin token: {error}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on 127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, api::router(state)).await });
    let workspace = setup(addr, &admin)
        .await
        .context("creating the workspace")?;
    let workspace = Arc::new(workspace);
    let (batches_before, appends_before, events_before, _) = store.stats().snapshot();
    let cpu_before = process_cpu_time();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(connections);
    for index in 0..connections {
        let workspace = workspace.clone();
        tasks.push(tokio::spawn(async move {
            drive(&workspace, index, deadline).await
        }));
    }
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); OPS.len()];
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        let run = task.await.context("load task")??;
        for (all, some) in latencies.iter_mut().zip(run.latencies) {
            all.extend(some);
        }
        for (failure, count) in run.failures {
            *failures.entry(failure).or_default() += count;
        }
    }
    let elapsed = started.elapsed();
    let cpu = process_cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    let (batches, appends, events, _) = store.stats().snapshot();
    server.abort();
    let _ = stop_background.send(true);
    let seconds = elapsed.as_secs_f64();
    let requests: usize = latencies.iter().map(Vec::len).sum();
    let commands: usize = latencies
        .iter()
        .zip(COMMAND_OPS)
        .filter(|(_, command)| *command)
        .map(|(latencies, _)| latencies.len())
        .sum();
    let mut overall: Vec<Duration> = latencies.iter().flatten().copied().collect();
    overall.sort_unstable();
    let appends_run = appends - appends_before;
    let batches_run = (batches - batches_before).max(1);
    println!();
    println!(
        "{backend}: {requests} requests in {seconds:.1} s: {:.0} requests/s, {:.0} commands/s, \
         p50 {:.2} ms, p99 {:.2} ms",
        requests as f64 / seconds,
        commands as f64 / seconds,
        ms(percentile(&overall, 0.50)),
        ms(percentile(&overall, 0.99)),
    );
    match cpu {
        Some(cpu) => println!(
            "{backend}: CPU (user + system, the whole process: server and load generator) {:.2} s \
             of {seconds:.1} s: {:.0} µs per request, {:.0} µs per command",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() * 1e6 / requests.max(1) as f64,
            cpu.as_secs_f64() * 1e6 / commands.max(1) as f64,
        ),
        None => println!("{backend}: CPU time unknown (no /proc/self/stat)"),
    }
    println!(
        "{backend}: group commit: {appends_run} appends ({} events) in {batches_run} batches, \
         {:.1} appends per batch",
        events - events_before,
        appends_run as f64 / batches_run as f64
    );
    println!(
        "{:<9} {:<14} {:>9} {:>10} {:>9} {:>9}",
        "backend", "operation", "count", "per s", "p50 ms", "p99 ms"
    );
    for (op, mut op_latencies) in OPS.iter().zip(latencies) {
        if *op == "list" && !workspace.list_routed {
            println!("{backend:<9} {op:<14} skipped: GET /v1/tickets is not routed");
            continue;
        }
        op_latencies.sort_unstable();
        println!(
            "{backend:<9} {op:<14} {:>9} {:>10.0} {:>9.2} {:>9.2}",
            op_latencies.len(),
            op_latencies.len() as f64 / seconds,
            ms(percentile(&op_latencies, 0.50)),
            ms(percentile(&op_latencies, 0.99)),
        );
    }
    if !failures.is_empty() {
        println!("{backend}: unexpected answers (not counted above): {failures:?}");
    }
    Ok(())
}

/// CPU time (user + system) of the whole process so far, from `/proc/self/stat` (Linux; its
/// clock ticks are `USER_HZ`, 100 per second on every Linux ABI). `None` elsewhere.
fn process_cpu_time() -> Option<Duration> {
    const USER_HZ: u64 = 100;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), counted from the state (field 3) at index 0.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((user + system) * 1000 / USER_HZ))
}

/// Creates a team, agents with tokens and customers through the API.
async fn setup(addr: SocketAddr, admin: &str) -> anyhow::Result<Workspace> {
    let mut client = Client::connect(addr).await?;
    let team = client
        .expect(
            "POST",
            "/v1/admin/teams",
            admin,
            Some(&json!({"name": "Bench"})),
            201,
        )
        .await?;
    let mut agents = Vec::with_capacity(AGENTS);
    for index in 0..AGENTS {
        let agent = client
            .expect(
                "POST",
                "/v1/admin/agents",
                admin,
                Some(&json!({"name": format!("Agent {index}"), "teams": [team["team_id"]]})),
                201,
            )
            .await?;
        let token = client
            .expect(
                "POST",
                "/v1/admin/tokens",
                admin,
                Some(&json!({"role": "agent", "subject": agent["agent_id"]})),
                201,
            )
            .await?;
        let secret = token["token"].as_str().context("token secret")?.to_owned();
        agents.push((agent["agent_id"].clone(), secret));
    }
    let mut customers = Vec::with_capacity(CUSTOMERS);
    for index in 0..CUSTOMERS {
        let customer = client
            .expect(
                "POST",
                "/v1/admin/customers",
                admin,
                Some(&json!({"name": format!("Customer {index}")})),
                201,
            )
            .await?;
        customers.push(customer["customer_id"].clone());
    }
    let (status, _) = client
        .call("GET", "/v1/tickets?limit=20", admin, None)
        .await?;
    Ok(Workspace {
        addr,
        team,
        agents,
        customers,
        list_routed: status != 404 && status != 405,
    })
}

struct Driven {
    latencies: Vec<Vec<Duration>>,
    failures: BTreeMap<String, u64>,
}

/// One connection: tickets through the whole mix, one request at a time, until the deadline.
async fn drive(workspace: &Workspace, index: usize, deadline: Instant) -> anyhow::Result<Driven> {
    let mut client = Client::connect(workspace.addr).await?;
    let (agent, token) = &workspace.agents[index % workspace.agents.len()];
    let mut driven = Driven {
        latencies: vec![Vec::new(); OPS.len()],
        failures: BTreeMap::new(),
    };
    // The bodies are the same every round (but for the requester): written once, sent as text.
    let creates: Vec<String> = workspace
        .customers
        .iter()
        .map(|customer| {
            json!({
                "channel": "email",
                "requester": {"id": customer},
                "subject": "Invoice 2026-11 shows the wrong VAT number",
                "description": "The VAT number on my invoice is my old one; please correct it.",
                "ticket_type": "question",
                "tags": ["billing"],
            })
            .to_string()
        })
        .collect();
    let steps = [
        json!({"type": "assign_team", "team": workspace.team["team_id"]}),
        json!({"type": "assign_agent", "agent": agent}),
        json!({"type": "post_public_reply", "body": "Thank you, we are correcting the invoice."}),
        json!({"type": "add_internal_note", "body": "VAT number changed in the billing system."}),
        json!({"type": "transition_ticket", "transition": "resolve"}),
    ]
    .map(|step| step.to_string());
    let mut round = 0usize;
    while Instant::now() < deadline {
        round += 1;
        let create = &creates[(index + round) % creates.len()];
        let begun = Instant::now();
        let (status, body) = client
            .send("POST", "/v1/tickets", token, Some(create))
            .await?;
        if status != 201 {
            *driven
                .failures
                .entry(format!("create {status}"))
                .or_default() += 1;
            continue;
        }
        driven.latencies[0].push(begun.elapsed());
        // Only the ticket id is read from the answer.
        #[derive(serde::Deserialize)]
        struct Created {
            ticket_id: String,
        }
        let created: Created = serde_json::from_slice(&body).context("ticket_id")?;
        let commands = format!("/v1/tickets/{}/commands", created.ticket_id);
        let ticket_id = created.ticket_id;
        for (step, command) in steps.iter().enumerate() {
            let begun = Instant::now();
            let (status, _) = client.send("POST", &commands, token, Some(command)).await?;
            if status == 200 {
                driven.latencies[step + 1].push(begun.elapsed());
            } else {
                *driven
                    .failures
                    .entry(format!("{} {status}", OPS[step + 1]))
                    .or_default() += 1;
            }
        }
        let reads = [
            (6, format!("/v1/tickets/{ticket_id}")),
            (7, "/v1/tickets?limit=20".to_owned()),
        ];
        for (op, path) in reads {
            if op == 7 && !workspace.list_routed {
                continue;
            }
            let begun = Instant::now();
            let (status, _) = client.send("GET", &path, token, None).await?;
            if status == 200 {
                driven.latencies[op].push(begun.elapsed());
            } else {
                *driven
                    .failures
                    .entry(format!("{} {status}", OPS[op]))
                    .or_default() += 1;
            }
        }
    }
    Ok(driven)
}

/// A minimal HTTP/1.1 client over one keep-alive connection.
pub struct Client {
    stream: TcpStream,
    buffer: Vec<u8>,
    /// The request being written, kept to reuse its allocation.
    request: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            stream,
            buffer: Vec::with_capacity(16 * 1024),
            request: Vec::with_capacity(1024),
        })
    }

    /// Sends one request with a JSON body given as text and returns the status and the raw
    /// body, unparsed.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        use std::io::Write as _;
        let body = body.unwrap_or("");
        self.request.clear();
        write!(
            self.request,
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n"
        )?;
        if !body.is_empty() || method == "POST" {
            write!(
                self.request,
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )?;
        }
        self.request.extend_from_slice(b"\r\n");
        self.request.extend_from_slice(body.as_bytes());
        self.stream
            .write_all(&self.request)
            .await
            .context("sending a request")?;
        tokio::time::timeout(RESPONSE_WAIT_MAX, self.read_response())
            .await
            .context("waiting for a response")?
    }

    /// Sends one request and returns the status and the body (JSON, or a JSON string).
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let body = body.map(Value::to_string);
        let (status, bytes) = self.send(method, path, token, body.as_deref()).await?;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, value))
    }

    /// Like `call`, but any other status than `expected` is an error.
    async fn expect(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
        expected: u16,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.call(method, path, token, body).await?;
        if status != expected {
            bail!("{method} {path} answered {status}: {value}");
        }
        Ok(value)
    }

    /// Reads more bytes into the buffer; the peer closing is an error.
    async fn fill(&mut self) -> anyhow::Result<()> {
        if self.buffer.len() > RESPONSE_BYTES_MAX {
            bail!("a response is larger than {RESPONSE_BYTES_MAX} bytes");
        }
        let read = self.stream.read_buf(&mut self.buffer).await?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }

    async fn read_response(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        let head_end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buffer[..head_end]).context("response head")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("status line {status_line:?}"))?;
        let mut content_length = None;
        let mut chunked = false;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                content_length = Some(value.parse::<usize>().context("content-length")?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        self.buffer.drain(..head_end + 4);
        let body = if chunked {
            self.read_chunked().await?
        } else {
            let length = content_length.unwrap_or(0);
            if length > RESPONSE_BYTES_MAX {
                bail!("a response of {length} bytes is larger than {RESPONSE_BYTES_MAX}");
            }
            while self.buffer.len() < length {
                self.fill().await?;
            }
            self.buffer.drain(..length).collect()
        };
        Ok((status, body))
    }

    async fn read_chunked(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(end) = find(&self.buffer, b"\r\n") {
                    break end;
                }
                self.fill().await?;
            };
            let size_text = std::str::from_utf8(&self.buffer[..line_end])?;
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16).context("chunk size")?;
            self.buffer.drain(..line_end + 2);
            if size == 0 {
                // No trailers are sent by the server; the final CRLF ends the body.
                while self.buffer.len() < 2 {
                    self.fill().await?;
                }
                self.buffer.drain(..2);
                return Ok(body);
            }
            if body.len() + size > RESPONSE_BYTES_MAX {
                bail!("a chunked response is larger than {RESPONSE_BYTES_MAX} bytes");
            }
            while self.buffer.len() < size + 2 {
                self.fill().await?;
            }
            body.extend(self.buffer.drain(..size));
            self.buffer.drain(..2);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
