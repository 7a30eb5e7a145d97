//! The engine, driven through the real decider with a manual clock in minutes: each scenario
//! prints what the scheduler appended, minute by minute (minute 0 is Monday 2 November 2026,
//! 00:00 UTC, 08:00 in Shanghai).

use expect_test::expect;
use sla_scheduler::policy::DEFAULT_POLICIES;

use crate::support::*;

/// Shanghai office hours with a lunch break, a holiday on Wednesday 4 November, and a policy
/// for email with every metric and an escalation on a late first response.
fn office() -> String {
    format!(
        r#"
version = 3
[calendars.office]
time_zone = "Asia/Shanghai"
monday = ["09:00-12:00", "13:00-18:00"]
tuesday = ["09:00-12:00", "13:00-18:00"]
wednesday = ["09:00-12:00", "13:00-18:00"]
thursday = ["09:00-12:00", "13:00-18:00"]
friday = ["09:00-12:00", "13:00-18:00"]
holidays = ["2026-11-04"]

[[policies]]
id = "office"
calendar = "office"
when = {{ channel = ["email"] }}
warning = "30m"
targets.first_response = "4h"
targets.next_reply = "2h"
targets.periodic_update = "8h"
targets.resolution = {{ normal = "16h", urgent = "4h" }}

[[policies.escalations]]
rule = "page_boss"
on = "breach"
metrics = ["first_response"]
reassign_team = "{ESCALATION}"
add_collaborator = "{BOSS}"
notify = ["{BOSS}"]
"#,
        ESCALATION = ESCALATION.0,
        BOSS = BOSS.0
    )
}

#[test]
fn seed_002_vip_within_two_hours_everyone_else_within_a_day() {
    let mut world = World::new(policies(DEFAULT_POLICIES));
    world.source.register_customer(customer_id(1), "vip");
    world.create(1, 1, "normal").create(2, 2, "normal").at(30);
    world.reply(2).at(24 * 60 + 60);
    expect![[r#"
        m00000 t1 SlaApplied vip [first_response@120 periodic_update@1440 resolution@1440] (policy vip matched tier vip; calendar 24x7; priority normal)
        m00000 t2 SlaApplied standard [first_response@1440 periodic_update@4320 resolution@7200] (policy standard (fallback); calendar 24x7; priority normal)
        m00030 t2 SlaRecomputed standard periodic_update NewCycle 4320->4350 elapsed=0m (new cycle: periodic_update target 72h00m for priority normal under policy standard (fallback); 0h00m of business time already counted; due 2026-11-05T00:00:00Z -> 2026-11-05T00:30:00Z)
        m00096 t1 SlaWarningRaised vip first_response due=120
        m00096 t1 PriorityChangedByRule normal->high rule=sla:vip:warn_high_priority
        m00120 t1 SlaBreached vip first_response due=120 observed=120
        m00120 t1 PriorityChangedByRule high->urgent rule=sla:vip:breach_urgent
        m00120 t1 Escalated 0->1 rule=sla:vip:breach_urgent notify=0
        m00120 t1 SlaRecomputed vip resolution PriorityChanged 1440->480 elapsed=120m (priority changed: resolution target 8h00m for priority urgent under policy vip matched tier vip; 2h00m of business time already counted; due 2026-11-03T00:00:00Z -> 2026-11-02T08:00:00Z)
        m00384 t1 SlaWarningRaised vip resolution due=480
        m00480 t1 SlaBreached vip resolution due=480 observed=480
        m00480 t1 Escalated 1->2 rule=sla:vip:breach_urgent notify=0
        m01152 t1 SlaWarningRaised vip periodic_update due=1440
        m01440 t1 SlaBreached vip periodic_update due=1440 observed=1440
        m01440 t1 Escalated 2->3 rule=sla:vip:breach_urgent notify=0"#]]
    .assert_eq(&world.take());
}

#[test]
fn business_hours_holidays_and_escalation_actions() {
    let mut world = World::new(policies(&office()));
    // Created at 08:00 Shanghai, before opening: the clock starts at 09:00.
    world.create(1, 1, "normal").at(24 * 60);
    expect![[r#"
        m00000 t1 SlaApplied office [first_response@360 periodic_update@600 resolution@2040] (policy office matched channel email; calendar office; priority normal)
        m00330 t1 SlaWarningRaised office first_response due=360
        m00360 t1 SlaBreached office first_response due=360 observed=360
        m00360 t1 TeamAssigned 00000000-0000-0000-0000-000000000e5c (sla policy office rule page_boss: first_response breach)
        m00360 t1 CollaboratorAdded 00000000-0000-0000-0000-00000000b055 (sla policy office rule page_boss: first_response breach)
        m00360 t1 Escalated 0->1 rule=sla:office:page_boss notify=1
        m00570 t1 SlaWarningRaised office periodic_update due=600
        m00600 t1 SlaBreached office periodic_update due=600 observed=600"#]]
    .assert_eq(&world.take());
    // Created Tuesday 17:00 Shanghai: one hour that day, Wednesday is a holiday, three more
    // hours on Thursday.
    world
        .at(24 * 60 + 9 * 60)
        .create(2, 2, "normal")
        .at(4 * 24 * 60);
    expect![[r#"
        m01980 t2 SlaApplied office [first_response@4560 periodic_update@4860 resolution@6300] (policy office matched channel email; calendar office; priority normal)
        m02010 t1 SlaWarningRaised office resolution due=2040
        m02040 t1 SlaBreached office resolution due=2040 observed=2040
        m04530 t2 SlaWarningRaised office first_response due=4560
        m04560 t2 SlaBreached office first_response due=4560 observed=4560
        m04560 t2 TeamAssigned 00000000-0000-0000-0000-000000000e5c (sla policy office rule page_boss: first_response breach)
        m04560 t2 CollaboratorAdded 00000000-0000-0000-0000-00000000b055 (sla policy office rule page_boss: first_response breach)
        m04560 t2 Escalated 0->1 rule=sla:office:page_boss notify=1
        m04830 t2 SlaWarningRaised office periodic_update due=4860
        m04860 t2 SlaBreached office periodic_update due=4860 observed=4860"#]]
    .assert_eq(&world.take());
}

#[test]
fn a_pause_moves_the_due_time_out_by_the_paused_business_time() {
    let mut world = World::new(policies(&office()));
    world.create(1, 1, "normal").at(120);
    world.reply(1).transition(1, "start").at(180);
    // Pending from 11:00 to 14:00 Shanghai: two business hours (the lunch hour never counted).
    world.transition(1, "ask_customer").at(360);
    world.transition(1, "resume").at(3 * 24 * 60);
    expect![[r#"
        m00000 t1 SlaApplied office [first_response@360 periodic_update@600 resolution@2040] (policy office matched channel email; calendar office; priority normal)
        m00120 t1 SlaRecomputed office periodic_update NewCycle 600->1560 elapsed=0m (new cycle: periodic_update target 8h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due 2026-11-02T10:00:00Z -> 2026-11-03T02:00:00Z)
        m00360 t1 SlaRecomputed office periodic_update Resumed 1560->1680 elapsed=60m (resumed after a pause: periodic_update target 8h00m for priority normal under policy office matched channel email; 1h00m of business time already counted; due 2026-11-03T02:00:00Z -> 2026-11-03T04:00:00Z)
        m00360 t1 SlaRecomputed office resolution Resumed 2040->4500 elapsed=120m (resumed after a pause: resolution target 16h00m for priority normal under policy office matched channel email; 2h00m of business time already counted; due 2026-11-03T10:00:00Z -> 2026-11-05T03:00:00Z)
        m01650 t1 SlaWarningRaised office periodic_update due=1680
        m01680 t1 SlaBreached office periodic_update due=1680 observed=1680"#]]
    .assert_eq(&world.take());
}

#[test]
fn a_priority_change_recomputes_from_the_original_start() {
    let mut world = World::new(policies(&office()));
    world.create(1, 1, "normal").at(120);
    world.reply(1).at(180);
    // Urgent: resolution 4h from the original start, two hours already counted: due in two.
    world.priority(1, "urgent").at(24 * 60);
    expect![[r#"
        m00000 t1 SlaApplied office [first_response@360 periodic_update@600 resolution@2040] (policy office matched channel email; calendar office; priority normal)
        m00120 t1 SlaRecomputed office periodic_update NewCycle 600->1560 elapsed=0m (new cycle: periodic_update target 8h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due 2026-11-02T10:00:00Z -> 2026-11-03T02:00:00Z)
        m00180 t1 SlaRecomputed office resolution PriorityChanged 2040->360 elapsed=120m (priority changed: resolution target 4h00m for priority urgent under policy office matched channel email; 2h00m of business time already counted; due 2026-11-03T10:00:00Z -> 2026-11-02T06:00:00Z)
        m00330 t1 SlaWarningRaised office resolution due=360
        m00360 t1 SlaBreached office resolution due=360 observed=360"#]]
    .assert_eq(&world.take());
}

#[test]
fn next_reply_and_periodic_update_run_in_cycles() {
    let mut world = World::new(policies(&office()));
    world.create(1, 1, "normal").at(90);
    world.reply(1).at(120);
    world.message(1, 1).at(150);
    world.message(1, 1).at(300);
    world.reply(1).at(360);
    world.message(1, 1).at(2 * 24 * 60);
    expect![[r#"
        m00000 t1 SlaApplied office [first_response@360 periodic_update@600 resolution@2040] (policy office matched channel email; calendar office; priority normal)
        m00090 t1 SlaRecomputed office periodic_update NewCycle 600->1530 elapsed=0m (new cycle: periodic_update target 8h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due 2026-11-02T10:00:00Z -> 2026-11-03T01:30:00Z)
        m00120 t1 SlaRecomputed office next_reply NewCycle -->240 elapsed=0m (new cycle: next_reply target 2h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due none -> 2026-11-02T04:00:00Z)
        m00210 t1 SlaWarningRaised office next_reply due=240
        m00240 t1 SlaBreached office next_reply due=240 observed=240
        m00300 t1 SlaRecomputed office periodic_update NewCycle 1530->1680 elapsed=0m (new cycle: periodic_update target 8h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due 2026-11-03T01:30:00Z -> 2026-11-03T04:00:00Z)
        m00360 t1 SlaRecomputed office next_reply NewCycle 240->480 elapsed=0m (new cycle: next_reply target 2h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due 2026-11-02T04:00:00Z -> 2026-11-02T08:00:00Z)
        m00450 t1 SlaWarningRaised office next_reply due=480
        m00480 t1 SlaBreached office next_reply due=480 observed=480
        m01650 t1 SlaWarningRaised office periodic_update due=1680
        m01680 t1 SlaBreached office periodic_update due=1680 observed=1680
        m02010 t1 SlaWarningRaised office resolution due=2040
        m02040 t1 SlaBreached office resolution due=2040 observed=2040"#]]
    .assert_eq(&world.take());
}

#[test]
fn solved_stops_resolution_and_a_reopen_resumes_it() {
    let mut world = World::new(policies(&office()));
    world.create(1, 1, "normal").at(61);
    world
        .act(
            1,
            agent(),
            serde_json::json!({"type": "assign_agent", "agent": ANN}),
        )
        .reply(1)
        .transition(1, "resolve")
        .at(24 * 60);
    world.message(1, 1).at(2 * 24 * 60);
    expect![[r#"
        m00000 t1 SlaApplied office [first_response@360 periodic_update@600 resolution@2040] (policy office matched channel email; calendar office; priority normal)
        m00061 t1 SlaRecomputed office periodic_update NewCycle 600->1501 elapsed=0m (new cycle: periodic_update target 8h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due 2026-11-02T10:00:00Z -> 2026-11-03T01:01:00Z)
        m01440 t1 SlaRecomputed office next_reply NewCycle -->1620 elapsed=0m (new cycle: next_reply target 2h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due none -> 2026-11-03T03:00:00Z)
        m01440 t1 SlaRecomputed office periodic_update Resumed 1501->2040 elapsed=0m (resumed after a pause: periodic_update target 8h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due 2026-11-03T01:01:00Z -> 2026-11-03T10:00:00Z)
        m01440 t1 SlaRecomputed office resolution Resumed 2040->4919 elapsed=1m (resumed after a pause: resolution target 16h00m for priority normal under policy office matched channel email; 0h01m of business time already counted; due 2026-11-03T10:00:00Z -> 2026-11-05T09:59:00Z)
        m01590 t1 SlaWarningRaised office next_reply due=1620
        m01620 t1 SlaBreached office next_reply due=1620 observed=1620
        m02010 t1 SlaWarningRaised office periodic_update due=2040
        m02040 t1 SlaBreached office periodic_update due=2040 observed=2040"#]]
    .assert_eq(&world.take());
}

/// Regression (found by the simulation): a periodic update answered before opening time starts
/// a cycle that falls due when the last one did; it must still be recorded, or the domain would
/// keep the last cycle's warning and breach and refuse the new cycle's.
#[test]
fn a_new_cycle_due_when_the_last_one_was_is_recorded() {
    let mut world = World::new(policies(&office()));
    world.create(1, 1, "normal").at(30);
    world.reply(1).at(31);
    expect![[r#"
        m00000 t1 SlaApplied office [first_response@360 periodic_update@600 resolution@2040] (policy office matched channel email; calendar office; priority normal)
        m00030 t1 SlaRecomputed office periodic_update NewCycle 600->600 elapsed=0m (new cycle: periodic_update target 8h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due 2026-11-02T10:00:00Z -> 2026-11-02T10:00:00Z)"#]]
    .assert_eq(&world.take());
}

/// Regression (found by the simulation, seed 13673442650964680909): a priority change while the
/// resolution clock is paused moved nothing; the recompute (when the policy changed) recorded the
/// old due time. The due time moves to `add(now, new_target - elapsed)` as for a running clock,
/// and out again by the business time paused when the clock resumes. A target used up during a
/// pause falls due when the clock counts again, not at the change (a paused clock is never due).
#[test]
fn a_priority_change_while_paused_recomputes_the_due_time() {
    let mut world = World::new(policies(&office()));
    // t1: two business hours counted (09:00–11:00 Shanghai), then pending; urgent at 12:00:
    // 4h − 2h left from 12:00 is 15:00 (minute 420); resumed on Tuesday at 08:00, due 11:00
    // (minute 1620).
    // t2: five business hours counted (09:00–15:00 less lunch), then pending; urgent at 16:00
    // uses the 4h target up: no warning or breach while paused; both when it resumes.
    world.create(1, 1, "normal").create(2, 2, "normal").at(60);
    world
        .reply(1)
        .transition(1, "start")
        .reply(2)
        .transition(2, "start")
        .at(180);
    world.transition(1, "ask_customer").at(240);
    world.priority(1, "urgent").at(420);
    world.transition(2, "ask_customer").at(480);
    world.priority(2, "urgent").at(24 * 60);
    world
        .transition(1, "resume")
        .transition(2, "resume")
        .at(2 * 24 * 60);
    expect![[r#"
        m00000 t1 SlaApplied office [first_response@360 periodic_update@600 resolution@2040] (policy office matched channel email; calendar office; priority normal)
        m00000 t2 SlaApplied office [first_response@360 periodic_update@600 resolution@2040] (policy office matched channel email; calendar office; priority normal)
        m00060 t1 SlaRecomputed office periodic_update NewCycle 600->600 elapsed=0m (new cycle: periodic_update target 8h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due 2026-11-02T10:00:00Z -> 2026-11-02T10:00:00Z)
        m00060 t2 SlaRecomputed office periodic_update NewCycle 600->600 elapsed=0m (new cycle: periodic_update target 8h00m for priority normal under policy office matched channel email; 0h00m of business time already counted; due 2026-11-02T10:00:00Z -> 2026-11-02T10:00:00Z)
        m00240 t1 SlaRecomputed office resolution PriorityChanged 2040->420 elapsed=120m (priority changed: resolution target 4h00m for priority urgent under policy office matched channel email; 2h00m of business time already counted; due 2026-11-03T10:00:00Z -> 2026-11-02T07:00:00Z)
        m00480 t2 SlaRecomputed office resolution PriorityChanged 2040->480 elapsed=300m (priority changed: resolution target 4h00m for priority urgent under policy office matched channel email; 5h00m of business time already counted; due 2026-11-03T10:00:00Z -> 2026-11-02T08:00:00Z)
        m01440 t1 SlaRecomputed office periodic_update Resumed 600->1920 elapsed=120m (resumed after a pause: periodic_update target 8h00m for priority urgent under policy office matched channel email; 2h00m of business time already counted; due 2026-11-02T10:00:00Z -> 2026-11-03T08:00:00Z)
        m01440 t1 SlaRecomputed office resolution Resumed 420->1620 elapsed=120m (resumed after a pause: resolution target 4h00m for priority urgent under policy office matched channel email; 2h00m of business time already counted; due 2026-11-02T07:00:00Z -> 2026-11-03T03:00:00Z)
        m01440 t2 SlaRecomputed office periodic_update Resumed 600->1680 elapsed=300m (resumed after a pause: periodic_update target 8h00m for priority urgent under policy office matched channel email; 5h00m of business time already counted; due 2026-11-02T10:00:00Z -> 2026-11-03T04:00:00Z)
        m01440 t2 SlaRecomputed office resolution Resumed 480->1440 elapsed=300m (resumed after a pause: resolution target 4h00m for priority urgent under policy office matched channel email; 5h00m of business time already counted; due 2026-11-02T08:00:00Z -> 2026-11-03T00:00:00Z)
        m01440 t2 SlaWarningRaised office resolution due=1440
        m01440 t2 SlaBreached office resolution due=1440 observed=1440
        m01590 t1 SlaWarningRaised office resolution due=1620
        m01620 t1 SlaBreached office resolution due=1620 observed=1620
        m01650 t2 SlaWarningRaised office periodic_update due=1680
        m01680 t2 SlaBreached office periodic_update due=1680 observed=1680
        m01890 t1 SlaWarningRaised office periodic_update due=1920
        m01920 t1 SlaBreached office periodic_update due=1920 observed=1920"#]]
    .assert_eq(&world.take());
}
