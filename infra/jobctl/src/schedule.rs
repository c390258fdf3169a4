//! Schedules: EventBridge cron expressions evaluated (when they fire next), and schedules in
//! plain English turned into them (`jobctl cron "every day at 3am"`), the way Solid Queue's
//! `recurring.yml` lets a Rails team write them. Every time is UTC, as EventBridge's are.

use std::str::FromStr;

use chrono::{DateTime, Utc};

/// An expression or a text that is not a schedule jobctl can use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    /// Not of the shape `cron(minutes hours day-of-month month day-of-week year)`.
    #[error(
        "{0:?} is not an EventBridge cron expression: expected cron(minutes hours day-of-month month day-of-week year), e.g. cron(0 3 * * ? *)"
    )]
    NotCron(String),
    /// A cron expression with a field jobctl refuses.
    #[error("{expression}: {problem}")]
    Invalid {
        /// The expression.
        expression: String,
        /// What is wrong, in words.
        problem: String,
    },
    /// English jobctl does not read.
    #[error(
        "cannot read {0:?} as a schedule; try \"every 15 minutes\", \"every hour at :30\", \"every day at 3am\", \"every weekday at 9:30\", \"every monday and friday at 18:00\" or \"every month on the 1st at 6am\" (times are UTC)"
    )]
    NotUnderstood(String),
}

/// An EventBridge cron expression, parsed.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    schedule: cron::Schedule,
}

impl CronSchedule {
    /// Parses `cron(minutes hours day-of-month month day-of-week year)`.
    ///
    /// # Errors
    /// [`ScheduleError::NotCron`] for another shape; [`ScheduleError::Invalid`] for a field out
    /// of range, both day fields set (EventBridge wants `?` in one), or `L`, `W` and `#`, which
    /// EventBridge accepts but jobctl cannot evaluate.
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let expression = expression.trim();
        let not_cron = || ScheduleError::NotCron(expression.to_owned());
        let inner =
            expression.strip_prefix("cron(").and_then(|s| s.strip_suffix(')')).ok_or_else(not_cron)?;
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let [minutes, hours, day_of_month, month, day_of_week, year] = fields[..] else {
            return Err(not_cron());
        };
        let invalid = |problem: &str| ScheduleError::Invalid {
            expression: expression.to_owned(),
            problem: problem.to_owned(),
        };
        if (day_of_month == "?") == (day_of_week == "?") {
            return Err(invalid(
                "exactly one of day-of-month and day-of-week must be ? (EventBridge's rule)",
            ));
        }
        let last_or_nth_weekday =
            day_of_week.contains('#') || (day_of_week.ends_with('L') && day_of_week.len() <= 2);
        if day_of_month.contains(['L', 'W']) || last_or_nth_weekday {
            return Err(invalid("L, W and # are valid on EventBridge but jobctl cannot evaluate them"));
        }
        // The `cron` crate reads Quartz's syntax: seconds first, `*` where EventBridge has `?`,
        // and the same day-of-week numbers (1 = SUN).
        let quartz = format!(
            "0 {minutes} {hours} {} {month} {} {year}",
            day_of_month.replace('?', "*"),
            day_of_week.replace('?', "*")
        );
        let schedule = cron::Schedule::from_str(&quartz).map_err(|e| invalid(&e.to_string()))?;
        Ok(Self { expression: expression.to_owned(), schedule })
    }

    /// The expression as written.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The next `n` firings strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.schedule.after(&after).take(n).collect()
    }
}

/// The EventBridge cron expression of a schedule written in English.
///
/// # Errors
/// [`ScheduleError::NotUnderstood`], with examples of what is understood.
pub fn from_english(text: &str) -> Result<String, ScheduleError> {
    english(text).ok_or_else(|| ScheduleError::NotUnderstood(text.trim().to_owned()))
}

fn cron_of(minutes: &str, hours: &str, day_of_month: &str, day_of_week: &str) -> String {
    format!("cron({minutes} {hours} {day_of_month} * {day_of_week} *)")
}

fn english(text: &str) -> Option<String> {
    let lower = text.trim().to_lowercase();
    let (head, at) = match lower.split_once(" at ") {
        Some((head, at)) => (head.trim(), Some(at.trim())),
        None => (lower.as_str(), None),
    };
    let (head, on) = match head.split_once(" on ") {
        Some((head, on)) => (head.trim(), Some(on.trim())),
        None => (head, None),
    };
    let head = head.strip_prefix("every ").or_else(|| head.strip_prefix("each ")).unwrap_or(head);
    let words: Vec<&str> = head.split_whitespace().collect();
    let time = || at.map_or(Some((0, 0)), time_of_day);
    match words[..] {
        ["minute" | "minutely"] if at.is_none() && on.is_none() => Some(cron_of("*", "*", "*", "?")),
        [n, "minutes" | "minute" | "mins" | "min"] if at.is_none() && on.is_none() => {
            let n = number(n, 1..=59)?;
            Some(cron_of(&format!("0/{n}"), "*", "*", "?"))
        }
        ["hour" | "hourly"] if on.is_none() => {
            let minute = at.map_or(Some(0), minute_of_hour)?;
            Some(cron_of(&minute.to_string(), "*", "*", "?"))
        }
        [n, "hours" | "hour"] if on.is_none() => {
            let n = number(n, 1..=23)?;
            let minute = at.map_or(Some(0), minute_of_hour)?;
            Some(cron_of(&minute.to_string(), &format!("0/{n}"), "*", "?"))
        }
        ["day" | "daily" | "night" | "nightly"] if on.is_none() => {
            let (hour, minute) = time()?;
            Some(cron_of(&minute.to_string(), &hour.to_string(), "*", "?"))
        }
        ["month" | "monthly"] => {
            let day = on.map_or(Some(1), day_of_month)?;
            let (hour, minute) = time()?;
            Some(cron_of(&minute.to_string(), &hour.to_string(), &day.to_string(), "?"))
        }
        _ if on.is_none() => {
            let days = days_of_week(&words)?;
            let (hour, minute) = time()?;
            Some(cron_of(&minute.to_string(), &hour.to_string(), "?", &days))
        }
        _ => None,
    }
}

fn number(word: &str, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
    word.parse().ok().filter(|n| range.contains(n))
}

/// `3am`, `3 pm`, `3:15pm`, `15:30`, `noon`, `midnight` as (hour, minute).
fn time_of_day(text: &str) -> Option<(u32, u32)> {
    let compact: String = text.split_whitespace().collect();
    match compact.as_str() {
        "noon" | "midday" => return Some((12, 0)),
        "midnight" => return Some((0, 0)),
        _ => {}
    }
    let (clock, meridiem) = if let Some(clock) = compact.strip_suffix("am") {
        (clock, Some(false))
    } else if let Some(clock) = compact.strip_suffix("pm") {
        (clock, Some(true))
    } else {
        (compact.as_str(), None)
    };
    let (hour, minute) = match clock.split_once(':') {
        Some((h, m)) if m.len() == 2 => (h.parse::<u32>().ok()?, number(m, 0..=59)?),
        Some(_) => return None,
        None if meridiem.is_some() => (clock.parse::<u32>().ok()?, 0),
        None => return None,
    };
    let hour = match meridiem {
        Some(pm) if (1..=12).contains(&hour) => hour % 12 + if pm { 12 } else { 0 },
        Some(_) => return None,
        None if hour <= 23 => hour,
        None => return None,
    };
    Some((hour, minute))
}

/// `:30`, `minute 30` or `30` past the hour.
fn minute_of_hour(text: &str) -> Option<u32> {
    let text = text.trim();
    let minute = text.strip_prefix(':').or_else(|| text.strip_prefix("minute ")).unwrap_or(text);
    number(minute.trim(), 0..=59)
}

/// `the 1st`, `15`, `the 2nd day` as a day of the month: 1 to 28, so that it fires every month.
fn day_of_month(text: &str) -> Option<u32> {
    let text = text.strip_prefix("the ").unwrap_or(text).trim();
    let text = text.strip_suffix(" day").unwrap_or(text);
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    number(digits, 1..=28)
}

/// `monday and friday`, `mon, wed`, `weekday`, `weekends` as EventBridge's day-of-week field.
fn days_of_week(words: &[&str]) -> Option<String> {
    let mut days: Vec<&str> = Vec::new();
    for word in words.iter().flat_map(|w| w.split(',')).filter(|w| !w.is_empty() && *w != "and") {
        let word = word.strip_suffix('s').filter(|w| w.len() >= 3).unwrap_or(word);
        let day = match word {
            "weekday" => "MON-FRI",
            "weekend" => "SAT,SUN",
            "monday" | "mon" => "MON",
            "tuesday" | "tue" | "tues" => "TUE",
            "wednesday" | "wed" => "WED",
            "thursday" | "thu" | "thur" | "thurs" => "THU",
            "friday" | "fri" => "FRI",
            "saturday" | "sat" => "SAT",
            "sunday" | "sun" => "SUN",
            _ => return None,
        };
        if !days.contains(&day) {
            days.push(day);
        }
    }
    (!days.is_empty()).then(|| days.join(","))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().expect("a valid time")
    }

    #[test]
    fn english_schedules_become_eventbridge_cron() {
        let cases = [
            ("every minute", "cron(* * * * ? *)"),
            ("every 15 minutes", "cron(0/15 * * * ? *)"),
            ("every hour", "cron(0 * * * ? *)"),
            ("hourly at :30", "cron(30 * * * ? *)"),
            ("every 6 hours", "cron(0 0/6 * * ? *)"),
            ("every day at 3am", "cron(0 3 * * ? *)"),
            ("Every day at 3 PM", "cron(0 15 * * ? *)"),
            ("daily at 12am", "cron(0 0 * * ? *)"),
            ("every day at 12:30pm", "cron(30 12 * * ? *)"),
            ("every day at 23:45", "cron(45 23 * * ? *)"),
            ("every day at noon", "cron(0 12 * * ? *)"),
            ("every weekday at 9:30", "cron(30 9 ? * MON-FRI *)"),
            ("every monday and friday at 18:00", "cron(0 18 ? * MON,FRI *)"),
            ("every mon, wed at 7am", "cron(0 7 ? * MON,WED *)"),
            ("every weekend", "cron(0 0 ? * SAT,SUN *)"),
            ("every month on the 1st at 6am", "cron(0 6 1 * ? *)"),
            ("monthly", "cron(0 0 1 * ? *)"),
        ];
        for (text, expected) in cases {
            assert_eq!(from_english(text).as_deref(), Ok(expected), "{text}");
            assert!(CronSchedule::parse(expected).is_ok(), "{expected} evaluates");
        }
    }

    #[test]
    fn what_is_not_understood_is_refused_with_examples() {
        for text in [
            "",
            "sometimes",
            "every 0 minutes",
            "every 60 minutes",
            "every day at 25:00",
            "every day at 13pm",
            "every day at 3:7",
            "every blursday",
            "every month on the 31st",
            "every 5 minutes at 3am",
        ] {
            let error = from_english(text).expect_err(text);
            assert!(error.to_string().contains("every day at 3am"), "{error}");
        }
    }

    #[test]
    fn the_next_firings_follow_the_expression_in_utc() {
        let fan_out = CronSchedule::parse("cron(0/15 * * * ? *)").expect("parses");
        assert_eq!(
            fan_out.next_after(at(2026, 11, 22, 10, 7), 3),
            vec![at(2026, 11, 22, 10, 15), at(2026, 11, 22, 10, 30), at(2026, 11, 22, 10, 45)]
        );
        let nightly = CronSchedule::parse("cron(0 3 * * ? *)").expect("parses");
        assert_eq!(
            nightly.next_after(at(2026, 11, 22, 3, 0), 2),
            vec![at(2026, 11, 23, 3, 0), at(2026, 11, 24, 3, 0)]
        );
        // 2026-11-22 is a Sunday; EventBridge counts SUN as 1, as the cron crate does.
        let weekdays = CronSchedule::parse("cron(30 9 ? * MON-FRI *)").expect("parses");
        assert_eq!(weekdays.next_after(at(2026, 11, 21, 12, 0), 1), vec![at(2026, 11, 23, 9, 30)]);
        let mondays = CronSchedule::parse("cron(0 8 ? * 2 *)").expect("parses");
        assert_eq!(mondays.next_after(at(2026, 11, 22, 0, 0), 1), vec![at(2026, 11, 23, 8, 0)]);
    }

    #[test]
    fn expressions_eventbridge_would_refuse_or_jobctl_cannot_evaluate_are_errors() {
        assert!(matches!(CronSchedule::parse("0 3 * * *"), Err(ScheduleError::NotCron(_))));
        assert!(matches!(CronSchedule::parse("cron(0 3 * * *)"), Err(ScheduleError::NotCron(_))));
        assert!(matches!(CronSchedule::parse("rate(5 minutes)"), Err(ScheduleError::NotCron(_))));
        for (expression, problem) in [
            ("cron(0 3 * * * *)", "exactly one"),
            ("cron(0 3 ? * ? *)", "exactly one"),
            ("cron(0 3 L * ? *)", "cannot evaluate"),
            ("cron(0 3 ? * 6#3 *)", "cannot evaluate"),
            ("cron(0 3 ? * 6L *)", "cannot evaluate"),
            ("cron(61 3 * * ? *)", ""),
        ] {
            match CronSchedule::parse(expression) {
                Err(ScheduleError::Invalid { problem: p, .. }) => {
                    assert!(p.contains(problem), "{expression}: {p}")
                }
                other => panic!("{expression}: {other:?}"),
            }
        }
        // Month and day names that contain L or W are fine.
        assert!(CronSchedule::parse("cron(0 3 ? JUL WED *)").is_ok());
    }
}
