//! The agent aggregate: given events / when command / then events or the rejection, and the
//! JSON of every agent event pinned in `tests/golden-agent` (written with `UPDATE_GOLDEN=1`
//! when missing, never rewritten).

use std::path::{Path, PathBuf};

use domain::{
    decide_agent, evolve_agent, Actor, ActorId, Agent, AgentCommand, AgentEvent, CommandContext,
    Role, AGENT_EVENT_TYPES,
};
use expect_test::expect;
use jiff::Timestamp;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::*;

fn actor(role: Role) -> Actor {
    let id = match role {
        Role::Agent => ANN.0,
        _ => Uuid::from_u128(0x5001),
    };
    Actor {
        id: ActorId(id),
        role,
    }
}

/// Runs `given` commands (as an admin), then `when` as `role`; renders the events or the
/// rejection.
fn run(given: &[Value], when: Value, role: Role) -> (Agent, String) {
    let at = Timestamp::from_second(1_714_953_600).unwrap();
    let mut agent = Agent::initial();
    for command in given {
        let command: AgentCommand = serde_json::from_value(command.clone()).unwrap();
        let context = CommandContext::new(at, Uuid::nil(), actor(Role::Admin), catalog());
        for event in decide_agent(&command, &agent, &context).unwrap() {
            agent = evolve_agent(agent, &event);
        }
    }
    let command: AgentCommand = match serde_json::from_value(when) {
        Ok(command) => command,
        Err(error) => return (agent, format!("bad json: {error}")),
    };
    let context = CommandContext::new(at, Uuid::nil(), actor(role), catalog());
    let text = match decide_agent(&command, &agent, &context) {
        Ok(events) if events.is_empty() => "no change".to_owned(),
        Ok(events) => events
            .iter()
            .map(|event| format!("{} {}", event.event_type(), event.to_payload()))
            .collect::<Vec<_>>()
            .join("\n"),
        Err(rejection) => format!("rejected: {rejection}"),
    };
    (agent, text)
}

fn register() -> Value {
    json!({"type": "register_agent", "agent_id": ANN, "name": "Ann", "teams": [BILLING]})
}

#[test]
fn agent_commands() {
    let cases: Vec<(&str, Vec<Value>, Value, Role)> = vec![
        ("register plain", vec![], register(), Role::Admin),
        (
            "register with a profile",
            vec![],
            json!({"type": "register_agent", "agent_id": ANN, "name": "Ann", "skills": ["billing", "api"], "languages": ["zh", "en"], "capacity": 8, "weighted": true}),
            Role::Supervisor,
        ),
        ("register twice", vec![register()], register(), Role::Admin),
        ("agents do not register", vec![], register(), Role::Agent),
        (
            "bad skill",
            vec![],
            json!({"type": "register_agent", "agent_id": ANN, "name": "Ann", "skills": ["Billing"]}),
            Role::Admin,
        ),
        (
            "capacity over the max",
            vec![register()],
            json!({"type": "update_agent", "capacity": 1001}),
            Role::Admin,
        ),
        (
            "duplicate team",
            vec![register()],
            json!({"type": "update_agent", "teams": [TECH, TECH]}),
            Role::Admin,
        ),
        (
            "update keeps what is left out",
            vec![register()],
            json!({"type": "update_agent", "skills": ["billing"]}),
            Role::Supervisor,
        ),
        (
            "update that changes nothing",
            vec![register()],
            json!({"type": "update_agent", "teams": [BILLING]}),
            Role::Admin,
        ),
        (
            "update an unknown agent",
            vec![],
            json!({"type": "update_agent", "capacity": 3}),
            Role::Admin,
        ),
        (
            "own presence",
            vec![register()],
            json!({"type": "change_presence", "presence": "online", "reason": "start of shift"}),
            Role::Agent,
        ),
        (
            "same presence",
            vec![register()],
            json!({"type": "change_presence", "presence": "offline"}),
            Role::Agent,
        ),
        (
            "someone else's presence",
            vec![json!({"type": "register_agent", "agent_id": BOB, "name": "Bob"})],
            json!({"type": "change_presence", "presence": "vacation"}),
            Role::Agent,
        ),
        (
            "supervisor sends someone on vacation",
            vec![json!({"type": "register_agent", "agent_id": BOB, "name": "Bob"})],
            json!({"type": "change_presence", "presence": "vacation", "reason": "annual leave"}),
            Role::Supervisor,
        ),
        (
            "unknown presence",
            vec![register()],
            json!({"type": "change_presence", "presence": "asleep"}),
            Role::Agent,
        ),
    ];
    let actual: Vec<String> = cases
        .into_iter()
        .map(|(name, given, when, role)| format!("{name}: {}", run(&given, when, role).1))
        .collect();
    expect![[r#"
        register plain: AgentRegistered {"agent_id":"00000000-0000-0000-0000-00000000a001","pii":{"email":null,"name":"Ann"},"teams":["00000000-0000-0000-0000-00000000b001"]}
        register with a profile: AgentRegistered {"agent_id":"00000000-0000-0000-0000-00000000a001","pii":{"email":null,"name":"Ann"},"teams":[]}
        AgentProfileUpdated {"capacity":8,"languages":["en","zh"],"skills":["api","billing"],"teams":[],"weighted":true}
        register twice: rejected: the agent is already registered
        agents do not register: rejected: role agent may not register_agent
        bad skill: rejected: invalid skills: expected lowercase ascii letters, digits, `_` and `-`
        capacity over the max: rejected: invalid capacity: must be from 0 to 1000
        duplicate team: rejected: invalid teams: `00000000-0000-0000-0000-00000000b002` appears twice
        update keeps what is left out: AgentProfileUpdated {"capacity":20,"languages":[],"skills":["billing"],"teams":["00000000-0000-0000-0000-00000000b001"],"weighted":false}
        update that changes nothing: no change
        update an unknown agent: rejected: the agent does not exist
        own presence: AgentPresenceChanged {"from":"offline","reason":"start of shift","to":"online"}
        same presence: no change
        someone else's presence: rejected: agents change only their own presence
        supervisor sends someone on vacation: AgentPresenceChanged {"from":"offline","reason":"annual leave","to":"vacation"}
        unknown presence: bad json: unknown variant `asleep`, expected one of `online`, `away`, `offline`, `vacation`"#]].assert_eq(&actual.join("\n"));
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden-agent")
}

#[test]
fn agent_events_match_golden_files_and_read_back() {
    let (_, _) = run(&[], register(), Role::Admin);
    let at = Timestamp::from_second(1_714_953_600).unwrap();
    let mut agent = Agent::initial();
    let mut samples: Vec<AgentEvent> = vec![];
    for (command, role) in [
        (
            json!({"type": "register_agent", "agent_id": ANN, "name": "Ann", "email": "ann@example.com", "teams": [BILLING], "skills": ["billing"], "languages": ["zh", "en"], "capacity": 12}),
            Role::Admin,
        ),
        (
            json!({"type": "change_presence", "presence": "vacation", "reason": "annual leave"}),
            Role::Agent,
        ),
    ] {
        let command: AgentCommand = serde_json::from_value(command).unwrap();
        let context = CommandContext::new(at, Uuid::nil(), actor(role), catalog());
        for event in decide_agent(&command, &agent, &context).unwrap() {
            agent = evolve_agent(agent, &event);
            samples.push(event);
        }
    }
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (event_type, version) in AGENT_EVENT_TYPES {
        let sample = samples
            .iter()
            .find(|event| event.event_type() == *event_type)
            .unwrap_or_else(|| panic!("no sample for {event_type}"));
        let path = golden_dir().join(format!("{event_type}.v{version}.json"));
        let actual = serde_json::to_string_pretty(&sample.to_payload()).unwrap() + "\n";
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected.is_empty() && update {
            std::fs::create_dir_all(golden_dir()).unwrap();
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        assert_eq!(actual, expected, "{} changed shape", path.display());
        let decoded = AgentEvent::from_stored(event_type, *version, &expected)
            .unwrap()
            .unwrap();
        assert_eq!(&decoded, sample);
    }
    // The directory's registrations written before agents moved into the domain still read.
    let legacy = r#"{"agent_id":"0190b2c4-7e2a-7cc0-8000-000000000001","teams":[],"pii":{"name":"Ann","email":null}}"#;
    assert!(matches!(
        AgentEvent::from_stored("AgentRegistered", 1, legacy),
        Some(Ok(AgentEvent::AgentRegistered(_)))
    ));
}

#[test]
fn agent_bounds_hold_at_the_bound() {
    let register = |name: String, skills: Vec<String>, capacity: u32| {
        json!({"type": "register_agent", "agent_id": ANN, "name": name,
            "skills": skills, "capacity": capacity})
    };
    let name_max = "张".repeat(domain::AGENT_NAME_BYTES_MAX / 3)
        + &"a".repeat(domain::AGENT_NAME_BYTES_MAX % 3);
    let skills = |count: usize| (0..count).map(|n| format!("skill{n}")).collect::<Vec<_>>();
    let cases = [
        register(
            name_max.clone(),
            skills(domain::AGENT_SKILLS_MAX),
            domain::CAPACITY_MAX,
        ),
        register(name_max.clone() + "a", vec![], 1),
        register("Ann".to_owned(), skills(domain::AGENT_SKILLS_MAX + 1), 1),
        register("Ann".to_owned(), vec![], domain::CAPACITY_MAX + 1),
    ];
    let actual: Vec<String> = cases
        .into_iter()
        .map(|command| {
            let text = run(&[], command, Role::Admin).1;
            if text.starts_with("rejected") {
                text
            } else {
                "accepted".to_owned()
            }
        })
        .collect();
    expect![[r#"
        accepted
        rejected: invalid name: longer than 800 bytes
        rejected: invalid skills: more than 32 entries
        rejected: invalid capacity: must be from 0 to 1000"#]]
    .assert_eq(&actual.join("\n"));
}
