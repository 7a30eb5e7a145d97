//! `RoutingConfig::check` at its boundary: each case a `docket.toml` text and the verdict.

use expect_test::expect;
use routing::RoutingConfig;

fn check(text: &str) -> String {
    let table: toml::Table = toml::from_str(text).unwrap();
    let routing: RoutingConfig = table["routing"].clone().try_into().unwrap();
    match routing.check() {
        Ok(()) => "ok".to_owned(),
        Err((key, problem)) => format!("{key}: {problem}"),
    }
}

/// A keyword rule whose `rule_id` is the TOML basic string `quoted` (without its quotes).
fn keyword_rule(quoted: &str) -> String {
    format!(
        "[[routing.priority.keywords]]\nrule_id = \"{quoted}\"\npriority = \"urgent\"\nphrases = [\"system down\"]\n"
    )
}

/// Review #7 finding 12: a rule id over `domain::IDENTIFIER_BYTES_MAX` bytes (or with a control
/// character) passed the config check, and then every match was refused by the decider and
/// retried every round.
#[test]
fn keyword_rule_ids_are_identifiers_the_decider_accepts() {
    let at_bound = "k".repeat(domain::limits::IDENTIFIER_BYTES_MAX);
    let over_bound = "k".repeat(domain::limits::IDENTIFIER_BYTES_MAX + 1);
    let cases = [
        keyword_rule("outage"),
        keyword_rule(&at_bound),
        keyword_rule(&over_bound),
        keyword_rule("out\\u0007age"),
        keyword_rule("out age"),
        keyword_rule(""),
    ];
    let actual: Vec<String> = cases
        .iter()
        .map(|text| check(text).replace(&over_bound, "k×129"))
        .collect();
    expect![[r#"
        ok
        ok
        routing.priority.keywords[0].rule_id: "k×129" is longer than 128 bytes
        routing.priority.keywords[0].rule_id: "out\u{7}age" must be a word without spaces or control characters
        routing.priority.keywords[0].rule_id: "out age" must be a word without spaces or control characters
        routing.priority.keywords[0].rule_id: "" must be a word without spaces or control characters"#]].assert_eq(&actual.join("\n"));
}
