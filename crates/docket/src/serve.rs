//! `docket serve`: opens the store, starts the API and serves it until SIGINT or SIGTERM, then
//! stops accepting, lets in-flight requests finish and flushes the group commit queue, so
//! nothing acknowledged is lost. `--demo` loads a small workspace through the API itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Body;
use axum::http::{header, Method, Request};
use clap::Args;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::config::{Config, DEFAULT_CONFIG};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Configuration file (blueprints, rate limits); shipped defaults when the default is absent.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Also load a small demo workspace (teams, agents, customers, tickets) and print its tokens.
    #[arg(long)]
    demo: bool,
}

/// The wall clock: the only place Docket reads it for commands.
#[derive(Debug)]
struct SystemClock;

impl api::Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

impl automation::Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

pub async fn run(database_url: &str, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config_path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let (config, blueprints) = Config::load(&config_path, args.config.is_some())?;
    let store = store::Store::open(database_url)
        .await
        .with_context(|| format!("opening the event store at {database_url}"))?;
    let (stop_routing, routing_shutdown) = tokio::sync::watch::channel(false);
    let automation = config.compiled_automation.clone();
    let mut api_config = config.api_config();
    if config.routing.enabled {
        let stats = Arc::new(routing::RoutingStats::default());
        api_config.routing_stats = Some(stats.clone());
        let manager = routing::Manager::new(
            store.clone(),
            routing::Engine::new(config.routing.clone()),
            blueprints.clone(),
            Arc::new(jiff::Timestamp::now),
            format!("docket-{}", std::process::id()),
        )
        .with_stats(stats);
        tokio::spawn(manager.run(routing_shutdown));
    }
    let (stop_triggers, mut triggers_stop) = tokio::sync::watch::channel(false);
    let mut triggers_thread = None;
    if !automation.triggers.is_empty() {
        // One set of counters for every manager started below, shown in `/metrics`.
        let stats = Arc::new(automation::ManagerStats::default());
        api_config.trigger_stats = Some(stats.clone());
        let store = store.clone();
        let automation = automation.clone();
        let blueprints = Arc::new(blueprints.clone());
        // The manager's future cannot be proven `Send` (sqlx's higher-ranked executor bounds,
        // rust-lang/rust#102211), so it runs on a blocking thread of this runtime: same
        // runtime, same I/O driver, no `Send` needed. It only returns on an error it cannot
        // carry on from (the database unreachable at start): restarted from its checkpoint
        // with backoff, 1 s doubling to a minute, back to 1 s after a minute of running.
        let runtime = tokio::runtime::Handle::current();
        triggers_thread = Some(tokio::task::spawn_blocking(move || {
            const RESTART_DELAY_MAX: std::time::Duration = std::time::Duration::from_secs(60);
            let mut delay = std::time::Duration::from_secs(1);
            loop {
                let manager = automation::TriggerManager::new(
                    store.clone(),
                    automation.clone(),
                    blueprints.clone(),
                    Some(automation::webhook::WebhookRequests::new(store.clone())),
                )
                .with_stats(stats.clone());
                let started = std::time::Instant::now();
                // Until shutdown: the manager saves its checkpoint and returns, and this thread
                // ends before the runtime shuts down (serve waits for it; once the runtime
                // shuts down, the manager's timers may not be polled any more: they panic).
                let result = runtime.block_on(manager.run_until(triggers_stop.clone()));
                if *triggers_stop.borrow() || triggers_stop.has_changed().is_err() {
                    return;
                }
                if started.elapsed() >= RESTART_DELAY_MAX {
                    delay = std::time::Duration::from_secs(1);
                }
                match result {
                    Ok(()) => {
                        tracing::error!(retry_in = ?delay, "the trigger manager stopped; restarting")
                    }
                    Err(error) => {
                        tracing::error!(%error, retry_in = ?delay, "the trigger manager stopped; restarting")
                    }
                }
                let stopping = runtime.block_on(async {
                    tokio::select! {
                        biased;
                        _ = triggers_stop.wait_for(|stop| *stop) => true,
                        () = tokio::time::sleep(delay) => false,
                    }
                });
                if stopping {
                    return;
                }
                delay = (delay * 2).min(RESTART_DELAY_MAX);
            }
        }));
    }
    let (stop_webhooks, webhooks_stop) = tokio::sync::watch::channel(false);
    match std::env::var("DOCKET_WEBHOOK_SIGNING_KEY") {
        Ok(key) if !key.is_empty() => {
            let key: Arc<[u8]> = Arc::from(key.as_bytes());
            let client = webhook_client()?;
            // Every node may run this; the one that leads the dispatcher lock delivers.
            let setup = automation::DispatcherSetup {
                store: store.clone(),
                migrated: automation::webhook::migrate(&store)
                    .await
                    .context("opening the webhook dispatcher")?,
                signing_key: key.clone(),
                client,
                clock: Arc::new(SystemClock),
                leadership: sla_scheduler::Leadership::for_store(
                    &store,
                    automation::webhook::DISPATCHER_LOCK,
                ),
                stats: Arc::default(),
            };
            api_config.webhook_stats = Some(setup.stats.clone());
            tokio::spawn(automation::run_elected(setup, webhooks_stop));
            api_config.webhook_signing_key = Some(key);
        }
        _ => tracing::info!("DOCKET_WEBHOOK_SIGNING_KEY is not set: webhooks are off"),
    }
    let state = api::AppState::start(store.clone(), blueprints, Arc::new(SystemClock), api_config)
        .await
        .context("reading the directory from the log")?;
    let admin_token = std::env::var("DOCKET_ADMIN_TOKEN")
        .ok()
        .filter(|token| !token.is_empty());
    match state.ensure_admin_token(admin_token.as_deref()).await {
        Ok(Some(token)) => {
            println!("created the first admin token (shown once; keep it safe):\n  {token}");
        }
        Ok(None) => {}
        Err(error) => anyhow::bail!("setting up the admin token: {error}"),
    }
    let (stop_scheduler, stop) = tokio::sync::watch::channel(false);
    let timed_rules = automation.timed.clone();
    let timed: Option<api::scheduler::SourceFactory> = (!timed_rules.is_empty()).then(|| {
        Arc::new(move || {
            vec![
                Box::new(automation::timed::TimedSource::new(timed_rules.clone()))
                    as Box<dyn sla_scheduler::TimerSource>,
            ]
        }) as api::scheduler::SourceFactory
    });
    state.start_scheduler(
        Arc::new(config.sla_policies()),
        timed,
        sla_scheduler::Leadership::for_store(&store, sla_scheduler::SCHEDULER_LOCK),
        stop,
    );
    let router = api::router(state.clone());
    if args.demo {
        load_demo(&router, &state)
            .await
            .context("loading the demo workspace")?;
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!(
        "docket serving on http://{} (store: {database_url})",
        listener.local_addr()?
    );
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    stop_routing.send_replace(true);
    stop_triggers.send_replace(true);
    let _ = stop_scheduler.send(true);
    stop_webhooks.send_replace(true);
    // The trigger manager's thread polls this runtime's timers: it must be gone before the
    // runtime shuts down. It stops at its next poll; a few seconds at most.
    if let Some(thread) = triggers_thread {
        if tokio::time::timeout(std::time::Duration::from_secs(5), thread)
            .await
            .is_err()
        {
            eprintln!("warning: the trigger manager did not stop within 5 s");
        }
    }
    store.flush().await.context("flushing the last appends")?;
    // The next start then catches up from here instead of from the last periodic snapshot.
    if let Err(error) = state.projections().snapshot().await {
        eprintln!("warning: storing the read models' snapshots: {error}");
    }
    println!("docket stopped");
    Ok(ExitCode::SUCCESS)
}

/// The webhook client: Mozilla's roots, plus the CA certificates in the PEM file named by
/// `DOCKET_WEBHOOK_CA_FILE` (an internal CA's receivers) when it is set.
fn webhook_client() -> anyhow::Result<automation::WebhookClient> {
    let extra_ca = match std::env::var_os("DOCKET_WEBHOOK_CA_FILE") {
        Some(path) if !path.is_empty() => {
            let pem = std::fs::read(&path).with_context(|| {
                format!("reading DOCKET_WEBHOOK_CA_FILE {}", path.to_string_lossy())
            })?;
            Some(pem)
        }
        _ => None,
    };
    automation::WebhookClient::new(extra_ca.as_deref()).context("setting up the webhook client")
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
}

/// Calls the API in-process, as a client would.
async fn call(
    router: &axum::Router,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))?;
    let response = router.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    anyhow::ensure!(
        status.is_success(),
        "{method_path} answered {status}: {value}",
        method_path = path
    );
    Ok(value)
}

/// A demo workspace: two teams, three agents, two customers (one VIP), a token for every role,
/// and a few tickets in different states. Loaded once: a second `--demo` reuses it.
async fn load_demo(router: &axum::Router, state: &api::AppState) -> anyhow::Result<()> {
    if state.team_count() > 0 {
        println!("a workspace is already loaded; the demo adds nothing (its tokens were printed when it was made)");
        return Ok(());
    }
    let admin = state
        .issue_token(api::ApiRole::Admin, None, "demo admin")
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let support = call(
        router,
        &admin,
        Method::POST,
        "/v1/admin/teams",
        json!({"name": "Support 客服一组"}),
    )
    .await?;
    let billing = call(
        router,
        &admin,
        Method::POST,
        "/v1/admin/teams",
        json!({"name": "Billing 财务组"}),
    )
    .await?;
    let mut agents = Vec::new();
    for (name, team) in [
        ("Zhang San 张三", &support),
        ("Li Si 李四", &support),
        ("Wang Wu 王五", &billing),
    ] {
        let agent = call(
            router,
            &admin,
            Method::POST,
            "/v1/admin/agents",
            json!({"name": name, "teams": [team["team_id"]]}),
        )
        .await?;
        agents.push(agent);
    }
    let vip = call(
        router,
        &admin,
        Method::POST,
        "/v1/admin/customers",
        json!({"name": "Acme Corp", "email": "ops@acme.example", "tier": "vip"}),
    )
    .await?;
    let normal = call(
        router,
        &admin,
        Method::POST,
        "/v1/admin/customers",
        json!({"name": "Chen Jing 陈静", "email": "chen@example.com"}),
    )
    .await?;
    let mut tokens = vec![("admin", admin.clone())];
    for (role, subject) in [
        ("supervisor", Some(&agents[0]["agent_id"])),
        ("agent", Some(&agents[1]["agent_id"])),
        ("customer", Some(&normal["customer_id"])),
        ("auditor", None),
        ("analyst", None),
        ("integration", None),
    ] {
        let token = call(
            router,
            &admin,
            Method::POST,
            "/v1/admin/tokens",
            json!({"role": role, "subject": subject, "label": format!("demo {role}")}),
        )
        .await?;
        tokens.push((role, token["token"].as_str().unwrap_or_default().to_owned()));
    }
    let integration = tokens
        .iter()
        .find(|(role, _)| *role == "integration")
        .map(|(_, token)| token.clone())
        .unwrap_or_default();
    let tickets = [
        (
            &vip,
            "email",
            "系统崩溃，无法登录后台",
            "Since this morning the admin console shows a blank page.",
            "question",
        ),
        (
            &normal,
            "web",
            "Invoice shows the wrong VAT number",
            "Invoice 2026-11 lists our old VAT number.",
            "question",
        ),
        (
            &normal,
            "chat",
            "退款申请：商品破损",
            "The vase arrived broken; I attach a photo.",
            "refund",
        ),
    ];
    for (customer, channel, subject, description, ticket_type) in tickets {
        let ticket = call(
            router,
            &integration,
            Method::POST,
            "/v1/tickets",
            json!({
                "channel": channel,
                "requester": {"id": customer["customer_id"], "name": customer["name"], "email": customer["email"]},
                "subject": subject, "description": description, "ticket_type": ticket_type,
            }),
        )
        .await?;
        let path = format!(
            "/v1/tickets/{}/commands",
            ticket["ticket_id"].as_str().unwrap_or_default()
        );
        call(
            router,
            &admin,
            Method::POST,
            &path,
            json!({"type": "assign_team", "team": support["team_id"]}),
        )
        .await?;
    }
    println!("demo workspace loaded; its tokens (shown once):");
    for (role, token) in &tokens {
        println!("  {role:<12} {token}");
    }
    Ok(())
}
