//! Benchmark of business-hours calendars: `add` (an SLA due time) and `between` (elapsed
//! business time) for typical targets, on one core. Run with `cargo bench -p domain --bench
//! calendar`. It measures and prints; it never asserts a time.
#![allow(
    clippy::print_stdout,
    reason = "a benchmark reports its figures on stdout"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use domain::calendar::BusinessCalendar;
use jiff::civil::{date, time};
use jiff::{SignedDuration, Timestamp};

const RUN: Duration = Duration::from_secs(2);

fn main() {
    let day = vec![
        (time(9, 0, 0, 0), time(12, 0, 0, 0)),
        (time(13, 0, 0, 0), time(18, 0, 0, 0)),
    ];
    let week = [
        day.clone(),
        day.clone(),
        day.clone(),
        day.clone(),
        day,
        vec![],
        vec![],
    ];
    let holidays = [date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 5)];
    let calendar =
        BusinessCalendar::new("Asia/Shanghai", week, holidays, [(1, 1)]).expect("a valid calendar");
    // Typical SLA targets: 1 h, 2 h, 4 h, 8 h, 24 h of business time, from starts spread over a
    // month (day and night, weekdays and weekends).
    let targets: Vec<SignedDuration> = [1, 2, 4, 8, 24].map(SignedDuration::from_hours).to_vec();
    let start: Timestamp = "2026-11-02T00:00:00Z".parse().expect("a timestamp");
    let starts: Vec<Timestamp> = (0..720)
        .map(|hour| start + SignedDuration::from_mins(hour * 60 + 17))
        .collect();
    for (name, between) in [("add", false), ("add+between", true)] {
        let began = Instant::now();
        let mut computations = 0u64;
        while began.elapsed() < RUN {
            for (index, start) in starts.iter().enumerate() {
                let target = targets[index % targets.len()];
                let due = calendar
                    .add(black_box(*start), black_box(target))
                    .expect("working time exists");
                if between {
                    black_box(calendar.between(*start, due));
                    computations += 1;
                }
                computations += 1;
            }
        }
        let rate = computations as f64 / began.elapsed().as_secs_f64();
        println!("calendar {name:<12} {rate:>12.0} computations/s (Asia/Shanghai, split shift, holidays, targets 1-24 h)");
    }
}
