//! Business-hours calendars, for SLA targets: a time zone (IANA), weekly working intervals
//! (split shifts allowed) and holidays (single dates, ranges, or yearly recurring days), or 24×7.
//! Two pure functions: add a business duration to an instant, and measure the business time
//! between two instants. Working intervals are civil times in the calendar's zone, so a shift
//! that starts at 09:00 starts at 09:00 on both sides of a DST change. A civil boundary inside a
//! DST gap maps with the offset in force before the gap (jiff's "compatible" rule), and where a
//! DST change makes intervals overlap they are clipped, so no business time counts twice.

use std::collections::BTreeSet;
use std::fmt;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// Most working intervals in one day.
pub const DAY_INTERVALS_MAX: usize = 8;
/// Most holidays (dates and yearly days together).
pub const HOLIDAYS_MAX: usize = 10_000;
/// How far a computation walks before it gives up: a calendar with working time every week
/// never gets near it, even through long holiday ranges.
pub const SCAN_DAYS_MAX: i64 = 3_700;

/// Why a calendar cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("unknown time zone {0:?} (use an IANA name such as Asia/Shanghai)")]
    UnknownTimeZone(String),
    #[error("{weekday}: interval {start}-{end} must end after it starts")]
    EmptyInterval {
        weekday: String,
        start: Time,
        end: Time,
    },
    #[error("{weekday}: intervals {first} and {second} overlap")]
    Overlap {
        weekday: String,
        first: String,
        second: String,
    },
    #[error("{weekday}: at most {max} intervals a day")]
    TooManyIntervals { weekday: String, max: usize },
    #[error("at most {max} holidays")]
    TooManyHolidays { max: usize },
    #[error("the calendar has no working time in its week")]
    NoWorkingTime,
}

/// Why a computation failed: the calendar has no working time within `SCAN_DAYS_MAX` days (every
/// day for ten years is a holiday) or the instant is out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no business time within {days} days of {from}")]
pub struct NoBusinessTime {
    pub from: Timestamp,
    pub days: i64,
}

/// When work happens.
#[derive(Clone, PartialEq)]
pub struct BusinessCalendar {
    time_zone: TimeZone,
    zone_name: String,
    /// Monday first; each day's intervals sorted and disjoint, as civil times.
    week: [Vec<(Time, Time)>; 7],
    holidays: BTreeSet<Date>,
    /// Yearly holidays as (month, day).
    yearly: BTreeSet<(i8, i8)>,
    always: bool,
}

impl fmt::Debug for BusinessCalendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusinessCalendar")
            .field("zone", &self.zone_name)
            .field("always", &self.always)
            .field("week", &self.week)
            .field("holidays", &self.holidays.len())
            .field("yearly", &self.yearly.len())
            .finish()
    }
}

const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl BusinessCalendar {
    /// Always open: business time is wall time.
    pub fn always_open() -> BusinessCalendar {
        BusinessCalendar {
            time_zone: TimeZone::UTC,
            zone_name: "UTC".to_owned(),
            week: Default::default(),
            holidays: BTreeSet::new(),
            yearly: BTreeSet::new(),
            always: true,
        }
    }

    /// `week[0]` is Monday. An interval ending at 00:00 means midnight at the end of the day.
    pub fn new(
        zone: &str,
        week: [Vec<(Time, Time)>; 7],
        holidays: impl IntoIterator<Item = Date>,
        yearly: impl IntoIterator<Item = (i8, i8)>,
    ) -> Result<BusinessCalendar, CalendarError> {
        let time_zone =
            TimeZone::get(zone).map_err(|_| CalendarError::UnknownTimeZone(zone.to_owned()))?;
        let mut week = week;
        for (day, intervals) in week.iter_mut().enumerate() {
            let weekday = WEEKDAYS[day].to_owned();
            if intervals.len() > DAY_INTERVALS_MAX {
                return Err(CalendarError::TooManyIntervals {
                    weekday,
                    max: DAY_INTERVALS_MAX,
                });
            }
            intervals.sort();
            for &(start, end) in intervals.iter() {
                if end != Time::midnight() && end <= start {
                    return Err(CalendarError::EmptyInterval {
                        weekday,
                        start,
                        end,
                    });
                }
            }
            for pair in intervals.windows(2) {
                let (first, second) = (pair[0], pair[1]);
                if first.1 == Time::midnight() || second.0 < first.1 {
                    return Err(CalendarError::Overlap {
                        weekday,
                        first: format!("{}-{}", first.0, first.1),
                        second: format!("{}-{}", second.0, second.1),
                    });
                }
            }
        }
        if week.iter().all(Vec::is_empty) {
            return Err(CalendarError::NoWorkingTime);
        }
        let holidays: BTreeSet<Date> = holidays.into_iter().collect();
        let yearly: BTreeSet<(i8, i8)> = yearly.into_iter().collect();
        if holidays.len() + yearly.len() > HOLIDAYS_MAX {
            return Err(CalendarError::TooManyHolidays { max: HOLIDAYS_MAX });
        }
        Ok(BusinessCalendar {
            time_zone,
            zone_name: zone.to_owned(),
            week,
            holidays,
            yearly,
            always: false,
        })
    }

    pub fn is_holiday(&self, date: Date) -> bool {
        self.holidays.contains(&date) || self.yearly.contains(&(date.month(), date.day()))
    }

    /// The working intervals of `date` as instants, in order.
    fn intervals(&self, date: Date) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        let intervals: &[(Time, Time)] = if self.is_holiday(date) {
            &[]
        } else {
            &self.week[date.weekday().to_monday_zero_offset() as usize]
        };
        intervals.iter().filter_map(move |&(start, end)| {
            let start = self.instant(date, start)?;
            let end = if end == Time::midnight() {
                self.instant(date.tomorrow().ok()?, end)?
            } else {
                self.instant(date, end)?
            };
            (end > start).then_some((start, end))
        })
    }

    /// Working intervals from `first` on, in order, clipped so that none overlaps the one before
    /// (a DST change can make civil intervals overlap), for at most `SCAN_DAYS_MAX` days.
    fn working(&self, first: Date) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        let days = std::iter::successors(Some(first), |date| date.tomorrow().ok())
            .take(SCAN_DAYS_MAX as usize);
        let mut last_close: Option<Timestamp> = None;
        days.flat_map(move |date| self.intervals(date))
            .filter_map(move |(open, close)| {
                let open = last_close.map_or(open, |last| open.max(last));
                if close <= open {
                    return None;
                }
                last_close = Some(close);
                Some((open, close))
            })
    }

    fn instant(&self, date: Date, time: Time) -> Option<Timestamp> {
        self.time_zone
            .to_ambiguous_timestamp(date.to_datetime(time))
            .compatible()
            .ok()
    }

    /// The instant `duration` of business time after `start`: the end of an SLA target. A zero
    /// duration gives `start` during working time, else the next opening.
    pub fn add(
        &self,
        start: Timestamp,
        duration: SignedDuration,
    ) -> Result<Timestamp, NoBusinessTime> {
        let duration = duration.max(SignedDuration::ZERO);
        let fail = NoBusinessTime {
            from: start,
            days: SCAN_DAYS_MAX,
        };
        if self.always {
            return start.checked_add(duration).map_err(|_| fail);
        }
        let mut remaining = duration;
        // Start the day before, so an interval that began yesterday (ending at midnight, or
        // crossing into today through a DST change) is seen.
        let first = self
            .time_zone
            .to_datetime(start)
            .date()
            .yesterday()
            .map_err(|_| fail.clone())?;
        for (open, close) in self.working(first) {
            if close <= start {
                continue;
            }
            let from = open.max(start);
            let available = close.duration_since(from);
            if remaining <= available {
                return from.checked_add(remaining).map_err(|_| fail);
            }
            remaining -= available;
        }
        Err(fail)
    }

    /// Business time in `[from, to)`; zero when `to` is not after `from`.
    pub fn between(&self, from: Timestamp, to: Timestamp) -> SignedDuration {
        if to <= from {
            return SignedDuration::ZERO;
        }
        if self.always {
            return to.duration_since(from);
        }
        let mut total = SignedDuration::ZERO;
        let Ok(first) = self.time_zone.to_datetime(from).date().yesterday() else {
            return total;
        };
        for (open, close) in self.working(first) {
            if open >= to {
                break;
            }
            let (start, end) = (open.max(from), close.min(to));
            if end > start {
                total += end.duration_since(start);
            }
        }
        total
    }

    /// Whether `at` falls in working time.
    pub fn is_open(&self, at: Timestamp) -> bool {
        if self.always {
            return true;
        }
        let Ok(yesterday) = self.time_zone.to_datetime(at).date().yesterday() else {
            return false;
        };
        let today = yesterday.tomorrow().unwrap_or(yesterday);
        [yesterday, today].into_iter().any(|date| {
            self.intervals(date)
                .any(|(open, close)| open <= at && at < close)
        })
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::{date, time};

    use super::*;

    fn office(zone: &str) -> BusinessCalendar {
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
        BusinessCalendar::new(
            zone,
            week,
            [date(2026, 10, 1), date(2026, 10, 2)],
            [(1, 1), (12, 25)],
        )
        .unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn hours(h: i64) -> SignedDuration {
        SignedDuration::from_hours(h)
    }

    /// Hand-checked cases: (zone, start, business duration) → due, in several zones, across a
    /// weekend, a lunch break, holidays, a year end and both DST changes.
    #[test]
    fn adding_business_time_by_hand() {
        let cases = [
            // Shanghai, Friday 17:00 local + 2h: 1h Friday, weekend, 1h Monday → Mon 10:00.
            (
                "Asia/Shanghai",
                "2026-11-20T09:00:00Z",
                hours(2),
                "2026-11-23T02:00:00Z",
            ),
            // Across lunch: Tue 11:00 + 2h → 14:00 local.
            (
                "Asia/Shanghai",
                "2026-11-24T03:00:00Z",
                hours(2),
                "2026-11-24T06:00:00Z",
            ),
            // Started at night (Tue 22:00 local): the clock starts at Wed 09:00 → 10:00.
            (
                "Asia/Shanghai",
                "2026-11-24T14:00:00Z",
                hours(1),
                "2026-11-25T02:00:00Z",
            ),
            // National Day holidays on Thu Oct 1 and Fri Oct 2: Wed 17:00 + 2h → Mon Oct 5 10:00.
            (
                "Asia/Shanghai",
                "2026-09-30T09:00:00Z",
                hours(2),
                "2026-10-05T02:00:00Z",
            ),
            // Year end: Thu Dec 31 17:00 + 2h; Jan 1 is a yearly holiday → Mon Jan 4 10:00.
            (
                "Asia/Shanghai",
                "2026-12-31T09:00:00Z",
                hours(2),
                "2027-01-04T02:00:00Z",
            ),
            // New York, Friday Mar 6 2026 17:00 EST + 2h → Monday Mar 9 10:00 EDT (DST began Sunday).
            (
                "America/New_York",
                "2026-03-06T22:00:00Z",
                hours(2),
                "2026-03-09T14:00:00Z",
            ),
            // Berlin, Friday Oct 23 2026 17:00 CEST + 2h → Monday Oct 26 10:00 CET (DST ended Sunday).
            (
                "Europe/Berlin",
                "2026-10-23T15:00:00Z",
                hours(2),
                "2026-10-26T09:00:00Z",
            ),
            // Zero duration during hours is the start; outside hours the next opening.
            (
                "UTC",
                "2026-11-24T10:30:00Z",
                hours(0),
                "2026-11-24T10:30:00Z",
            ),
            (
                "UTC",
                "2026-11-24T12:30:00Z",
                hours(0),
                "2026-11-24T13:00:00Z",
            ),
            // A full working day is 8 hours: Mon 09:00 + 16h → Tue 18:00.
            (
                "UTC",
                "2026-11-23T09:00:00Z",
                hours(16),
                "2026-11-24T18:00:00Z",
            ),
        ];
        for (zone, start, duration, due) in cases {
            let calendar = office(zone);
            assert_eq!(
                calendar.add(at(start), duration).unwrap(),
                at(due),
                "{zone} {start} + {duration}"
            );
            assert_eq!(
                calendar.between(at(start), at(due)),
                duration,
                "{zone} {start} .. {due}"
            );
        }
    }

    #[test]
    fn always_open_is_wall_time_and_bad_calendars_are_refused() {
        let always = BusinessCalendar::always_open();
        assert_eq!(
            always.add(at("2026-11-24T23:00:00Z"), hours(2)).unwrap(),
            at("2026-11-25T01:00:00Z")
        );
        assert_eq!(
            always.between(at("2026-11-24T23:00:00Z"), at("2026-11-25T01:00:00Z")),
            hours(2)
        );
        let none: [Vec<(Time, Time)>; 7] = Default::default();
        assert_eq!(
            BusinessCalendar::new("UTC", none.clone(), [], []).unwrap_err(),
            CalendarError::NoWorkingTime
        );
        assert!(matches!(
            BusinessCalendar::new("Mars/Olympus", none.clone(), [], []),
            Err(CalendarError::UnknownTimeZone(_))
        ));
        let mut backwards = none.clone();
        backwards[0] = vec![(time(18, 0, 0, 0), time(9, 0, 0, 0))];
        assert!(matches!(
            BusinessCalendar::new("UTC", backwards, [], []),
            Err(CalendarError::EmptyInterval { .. })
        ));
        let mut overlapping = none.clone();
        overlapping[2] = vec![
            (time(9, 0, 0, 0), time(13, 0, 0, 0)),
            (time(12, 0, 0, 0), time(18, 0, 0, 0)),
        ];
        assert!(matches!(
            BusinessCalendar::new("UTC", overlapping, [], []),
            Err(CalendarError::Overlap { .. })
        ));
        let mut crowded = none.clone();
        crowded[3] = (0..=DAY_INTERVALS_MAX as i8)
            .map(|h| (time(h, 0, 0, 0), time(h, 30, 0, 0)))
            .collect();
        assert!(matches!(
            BusinessCalendar::new("UTC", crowded, [], []),
            Err(CalendarError::TooManyIntervals { .. })
        ));
        let mut exact = none;
        exact[3] = (0..DAY_INTERVALS_MAX as i8)
            .map(|h| (time(h, 0, 0, 0), time(h, 30, 0, 0)))
            .collect();
        assert!(
            BusinessCalendar::new("UTC", exact, [], []).is_ok(),
            "DAY_INTERVALS_MAX intervals are allowed"
        );
    }

    #[test]
    fn a_night_shift_ending_at_midnight_and_split_shifts() {
        let shift = vec![
            (time(6, 0, 0, 0), time(10, 0, 0, 0)),
            (time(20, 0, 0, 0), Time::midnight()),
        ];
        let week = [
            shift.clone(),
            shift.clone(),
            shift.clone(),
            shift.clone(),
            shift.clone(),
            shift.clone(),
            shift,
        ];
        let calendar = BusinessCalendar::new("Asia/Shanghai", week, [], []).unwrap();
        // 23:00 local + 2h: 1h to midnight, then 06:00-07:00 → 07:00 local.
        assert_eq!(
            calendar.add(at("2026-11-24T15:00:00Z"), hours(2)).unwrap(),
            at("2026-11-24T23:00:00Z")
        );
        assert!(calendar.is_open(at("2026-11-24T15:30:00Z")));
        assert!(!calendar.is_open(at("2026-11-24T05:00:00Z")));
    }

    /// A boundary inside the spring-forward gap (02:30 on 2026-03-08 in New York) once made two
    /// intervals overlap: more business time gave an earlier due time (found in review).
    #[test]
    fn intervals_that_a_dst_gap_makes_overlap_are_not_counted_twice() {
        let day = vec![
            (time(0, 0, 0, 0), time(2, 30, 0, 0)),
            (time(3, 0, 0, 0), Time::midnight()),
        ];
        let week = [
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day,
        ];
        let calendar = BusinessCalendar::new("America/New_York", week, [], []).unwrap();
        let start = at("2026-03-08T07:15:00Z");
        let mut previous = start;
        for minutes in 0..120 {
            let duration = SignedDuration::from_mins(minutes);
            let due = calendar.add(start, duration).unwrap();
            assert!(due >= previous, "{minutes} min: {due} before {previous}");
            assert_eq!(calendar.between(start, due), duration, "{minutes} min");
            previous = due;
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn zones() -> impl Strategy<Value = &'static str> {
            prop_oneof![
                Just("UTC"),
                Just("Asia/Shanghai"),
                Just("America/New_York"),
                Just("Europe/Berlin"),
                Just("Australia/Lord_Howe"),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            /// Adding then measuring returns the duration; the due time is in working time (or
            /// the end of an interval) and never on a holiday; more time is never earlier.
            #[test]
            fn add_then_measure(zone in zones(), start in 1_767_225_600i64..1_830_297_600, minutes in 0i64..20_000, more in 0i64..600) {
                let calendar = office(zone);
                let start = Timestamp::from_second(start).unwrap();
                let duration = SignedDuration::from_mins(minutes);
                let due = calendar.add(start, duration).unwrap();
                prop_assert_eq!(calendar.between(start, due), duration);
                if minutes > 0 {
                    // The last second of the target is working time, on a working day.
                    let just_before = due.checked_sub(SignedDuration::from_secs(1)).unwrap();
                    prop_assert!(calendar.is_open(just_before), "due {} follows working time", due);
                    let day = calendar.time_zone.to_datetime(just_before).date();
                    prop_assert!(!calendar.is_holiday(day), "due {} lands on a holiday", due);
                } else {
                    prop_assert!(calendar.is_open(due) || due == start);
                }
                let later = calendar.add(start, duration + SignedDuration::from_mins(more)).unwrap();
                prop_assert!(later >= due);
            }
        }
    }
}
