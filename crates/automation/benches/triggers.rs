//! Trigger evaluation cost per event with 500 active triggers, beside the raw limit measured in
//! the same run: one trivially true condition per trigger (the bare loop over 500 triggers that
//! reads one ticket field each, nothing else). All 500 triggers listen to the benchmark's event
//! type, so none is skipped by the event-type index; they mix field, tag, tier, business-hours,
//! `text_contains` (100) and `text_matches` (50) conditions, and a few fire. Wall clock and CPU
//! time per event are both printed, because the machine may be shared.
//!
//! `cargo bench -p automation --bench triggers` (`-- --quick` for a smaller run).

use std::fmt::Write as _;
use std::time::Instant;

use automation::{AutomationSection, Facts};
use domain::{
    Actor, ActorId, BlueprintCatalog, BodyPii, Command, CommandContext, CustomerMessageReceived,
    Event, Priority, Role, Ticket,
};
use serde_json::json;
use uuid::Uuid;

const TRIGGERS: usize = 500;

/// CPU time of this thread so far, in nanoseconds (Linux), for figures on a shared machine.
fn cpu_nanos() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn config() -> String {
    let mut text = String::from(
        "[automation.business_hours]\nzone = \"Asia/Shanghai\"\nmonday = [\"09:00-18:00\"]\ntuesday = [\"09:00-18:00\"]\n",
    );
    let on = r#"on = ["TicketCreated", "CustomerMessageReceived"]"#;
    for i in 0..TRIGGERS {
        let conditions = match i % 10 {
            0 | 5 => format!(
                r#"all = [{{ channel = "email" }}], any = [{{ text_contains = "keyword{i}" }}, {{ text_contains = "退款{i}" }}]"#
            ),
            1 => format!(
                r#"all = [{{ priority_at_least = "high" }}, {{ customer_tier = "tier{i}" }}]"#
            ),
            2 | 7 => format!(r#"all = [{{ has_tag = "tag{i}" }}, {{ lacks_tag = "done" }}]"#),
            3 => format!(r#"all = [{{ text_matches = "(?i)order\\s+#{i}\\d+" }}]"#),
            4 | 9 => format!(
                r#"all = [{{ business_hours = true }}, {{ ticket_type = "type{i}" }}, {{ assigned = false }}]"#
            ),
            6 => format!(r#"all = [{{ field = {{ name = "order_id", equals = "{i}" }} }}]"#),
            _ => r#"all = [{ category = "new" }, { priority = "urgent" }]"#.to_owned(),
        };
        // The curly braces of inline tables need the `all`/`any` keys on their own lines.
        let conditions = conditions.replace("], any", "]\nany");
        let _ = writeln!(
            text,
            "[[automation.triggers]]\nid = \"t{i}\"\n{on}\n{conditions}\nactions = [{{ add_tags = [\"t{i}\"] }}]\n"
        );
    }
    text
}

#[allow(clippy::print_stdout, reason = "a benchmark prints its figures")]
fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let events_per_run: u64 = if quick { 2_000 } else { 20_000 };

    #[derive(serde::Deserialize)]
    struct File {
        automation: AutomationSection,
    }
    let file: File = toml::from_str(&config()).expect("the benchmark configuration parses");
    let automation = file
        .automation
        .compile()
        .expect("the benchmark configuration compiles");
    assert_eq!(automation.triggers.len(), TRIGGERS);

    let catalog = BlueprintCatalog::builtin();
    let actor = Actor {
        id: ActorId(Uuid::from_u128(0xc001)),
        role: Role::Customer,
    };
    let at: jiff::Timestamp = "2026-11-23T03:00:00Z".parse().unwrap(); // 11:00 in Shanghai
    let create: Command = serde_json::from_value(json!({
        "type": "create_ticket",
        "ticket_id": Uuid::from_u128(0x7000),
        "number": 10042,
        "channel": "email",
        "requester": {"id": Uuid::from_u128(0xc001), "name": "李雷"},
        "subject": "订单问题 order problem",
        "description": "My order has not arrived.",
        "ticket_type": "question",
        "priority": "high",
        "tags": ["tag2", "tag17"],
    }))
    .unwrap();
    let context = CommandContext::new(at, Uuid::from_u128(1), actor, &catalog);
    let events = domain::decide(&create, &Ticket::initial(), &context).unwrap();
    let ticket = Ticket::replay(&events);
    let details = ticket.details.as_ref().unwrap();

    // 64 different messages of ~300 bytes, some mentioning a keyword or an order number.
    let messages: Vec<Event> = (0..64)
        .map(|n| {
            let body = format!(
                "您好，我的订单还没有到，已经等了很久了。Hello, my order #{n}{n}42 has not arrived \
                 yet and I have been waiting for two weeks now. Could you please check the \
                 shipping status {} and tell me when it will arrive? 谢谢！",
                if n % 8 == 0 { format!("keyword{}", n * 10) } else { "soon".to_owned() }
            );
            Event::CustomerMessageReceived(CustomerMessageReceived {
                attachments: vec![],
                pii: BodyPii { body },
            })
        })
        .collect();

    let mut fired = 0usize;
    let started = Instant::now();
    let cpu_started = cpu_nanos();
    for n in 0..events_per_run {
        let facts = Facts {
            event: &messages[(n % 64) as usize],
            ticket: details,
            customer_tier: Some(if n % 2 == 0 { "tier1" } else { "standard" }),
            at,
        };
        fired += std::hint::black_box(automation.triggers.evaluate(&facts)).len();
    }
    let wall = started.elapsed().as_secs_f64() * 1e6 / events_per_run as f64;
    let cpu = cpu_started
        .zip(cpu_nanos())
        .map(|(a, b)| (b - a) as f64 / 1e3 / events_per_run as f64);

    // The raw limit: per event, 500 trivially true conditions, one ticket field read each.
    let priorities: Vec<Priority> = vec![Priority::Low; TRIGGERS];
    let mut held = 0usize;
    let raw_events = events_per_run * 100;
    let raw_started = Instant::now();
    let raw_cpu_started = cpu_nanos();
    for _ in 0..raw_events {
        let ticket = std::hint::black_box(details);
        for priority in &priorities {
            if std::hint::black_box(ticket.priority >= *priority) {
                held += 1;
            }
        }
    }
    let raw_wall = raw_started.elapsed().as_secs_f64() * 1e6 / raw_events as f64;
    let raw_cpu = raw_cpu_started
        .zip(cpu_nanos())
        .map(|(a, b)| (b - a) as f64 / 1e3 / raw_events as f64);
    assert_eq!(held, TRIGGERS * raw_events as usize);

    let show = |cpu: Option<f64>| cpu.map_or_else(|| "n/a".to_owned(), |cpu| format!("{cpu:.2}"));
    println!(
        "trigger evaluation, {TRIGGERS} triggers on the event type, {events_per_run} events ({:.1} firings per event):",
        fired as f64 / events_per_run as f64
    );
    println!(
        "  evaluate()                         {wall:8.2} µs wall  {:>8} µs cpu  per event",
        show(cpu)
    );
    println!(
        "  raw: 1 trivial condition/trigger   {raw_wall:8.2} µs wall  {:>8} µs cpu  per event",
        show(raw_cpu)
    );
}
