//! `[sla]` configuration: the shipped defaults compile, and every mistake is an error that names
//! the key.

use expect_test::expect;
use sla_scheduler::{Policies, SlaConfig};

fn check(text: &str) -> String {
    match toml::from_str::<SlaConfig>(text) {
        Err(error) => format!("parse: {}", error.message()),
        Ok(config) => match Policies::compile(&config) {
            Ok(policies) => format!(
                "ok v{}: {}",
                policies.version,
                policies
                    .policies
                    .iter()
                    .map(|policy| policy.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(error) => format!("compile: {error}"),
        },
    }
}

#[test]
fn the_shipped_policies_compile() {
    let policies = Policies::compile(&SlaConfig::shipped()).unwrap();
    assert_eq!(policies.policies.len(), 2);
}

#[test]
fn mistakes_name_the_key() {
    let good = "version = 1\n[[policies]]\nid = \"p\"\ntargets.first_response = \"2h\"\n";
    let cases = [
        good.to_owned(),
        good.replace("\"2h\"", "\"two hours\""),
        good.replace("\"2h\"", "\"0s\""),
        good.replace("\"2h\"", "{ urgent = \"1h\", normal = \"3h\" }"),
        good.replace("\"2h\"", "{ critical = \"1h\" }"),
        good.replace("id = \"p\"", "id = \"P Q\""),
        good.replace("id = \"p\"", "id = \"p\"\ncalendar = \"office\""),
        good.replace("id = \"p\"", "id = \"p\"\nwarning = \"120%\""),
        good.replace("id = \"p\"", "id = \"p\"\nwarning = \"soon\""),
        good.replace("targets.first_response = \"2h\"", ""),
        format!("{good}[[policies]]\nid = \"q\"\ntargets.resolution = \"2h\"\n"),
        format!("{good}[[policies.escalations]]\nrule = \"r\"\non = \"breach\"\n"),
        format!("{good}[[policies.escalations]]\nrule = \"r\"\non = \"later\"\nnotify = []\n"),
        format!("{good}[calendars.office]\ntime_zone = \"Mars/Olympus\"\nmonday = [\"09:00-18:00\"]\n"),
        format!("{good}[calendars.office]\ntime_zone = \"Asia/Shanghai\"\nmonday = [\"18:00-09:00\"]\n"),
        format!("{good}[calendars.office]\ntime_zone = \"Asia/Shanghai\"\nmonday = [\"9-18\"]\n"),
        format!("{good}[calendars.office]\ntime_zone = \"Asia/Shanghai\"\nmonday = [\"09:00-18:00\"]\nholidays = [\"2026-10-07..2026-10-01\"]\n"),
        format!("{good}[calendars.office]\ntime_zone = \"Asia/Shanghai\"\nmonday = [\"09:00-18:00\"]\nholidays = [\"02-30\"]\n"),
        "version = 2\n[calendars.office]\ntime_zone = \"Asia/Shanghai\"\nmonday = [\"09:00-12:00\", \"13:00-18:00\"]\nholidays = [\"2026-10-01..2026-10-07\", \"01-01\"]\n[[policies]]\nid = \"vip\"\ncalendar = \"office\"\nwhen = { tier = [\"vip\"], priority = [\"high\", \"urgent\"], channel = [\"email\"], type = [\"question\"] }\ntargets.first_response = \"2h\"\n[[policies]]\nid = \"rest\"\ntargets.first_response = \"24h\"\n".to_owned(),
    ];
    let actual: Vec<String> = cases.iter().map(|text| check(text)).collect();
    expect![[r#"
        ok v1: p
        parse: "two hours" is not a duration such as "2h", "90m" or "1h30m"
        parse: "0s" must be more than zero and at most 8784h
        ok v1: p
        parse: unknown field `critical`, expected one of `low`, `normal`, `high`, `urgent`
        compile: sla.policies[0].id: "P Q": lowercase letters, digits, `_` and `-`
        compile: sla.policies[0].calendar: unknown calendar "office" (define it under [sla.calendars.office] or use "24x7")
        parse: "120%": a warning percentage is 1% to 99%
        parse: "soon" is neither a percentage ("80%") nor a duration ("30m")
        compile: sla.policies[0].targets: a policy needs at least one target
        compile: sla.policies[1]: unreachable: policy "p" before it has no conditions and matches every ticket
        compile: sla.policies[0].escalations[0]: an escalation needs an action: raise_priority, reassign_team, add_collaborator or notify
        parse: unknown variant `later`, expected `warning` or `breach`
        compile: sla.calendars.office: unknown time zone "Mars/Olympus" (use an IANA name such as Asia/Shanghai)
        compile: sla.calendars.office: monday: interval 18:00:00-09:00:00 must end after it starts
        parse: "9-18" is not an interval such as "09:00-18:00"
        parse: "2026-10-07..2026-10-01": a holiday range runs forwards, for at most a year
        parse: "02-30" is not a holiday such as "2026-12-25", "2026-10-01..2026-10-07" or "01-01"
        ok v2: vip, rest"#]]
    .assert_eq(&actual.join("\n"));
}
