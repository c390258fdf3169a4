//! Schedules: schedules written as people write them ("every day at 3am Europe/Berlin", "on
//! the 1st of every month at 6am", the way Solid Queue's `recurring.yml` lets a Rails team write
//! them) turned into EventBridge cron expressions, and those expressions evaluated (when they
//! fire next) in a time zone, as EventBridge Scheduler evaluates them.
//!
//! Invariant: a schedule fires at local times of its zone. On the day the clocks go forward, a
//! local time that does not exist is skipped; on the day they go back, a local time that happens
//! twice fires once, at its first occurrence. That is EventBridge Scheduler's documented rule
//! (it "runs only once"; AWS does not say which of the two, the first is what a person reads).

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The forms [`parse`] reads, for error messages.
const FORMS: &str = "\"every 15 minutes\", \"every hour\", \"every hour at :30\", \"every day at 3am\", \
                     \"at 3am every day\", \"every weekday at 6pm\", \"every monday at 9:30\", \
                     \"every monday and friday at 18:00\", \"on the 1st of every month at 6am\" or cron(0 3 * * ? *), \
                     each optionally followed by a time zone (\"every day at 3am Europe/Berlin\"; UTC otherwise)";

/// An expression or a text that is not a schedule jobctl can use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
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
    #[error("cannot read {0:?} as a schedule; jobctl reads {FORMS}")]
    NotUnderstood(String),
    /// A word in a time zone's place that is no IANA time zone.
    #[error("{0:?} is not a time zone: use an IANA name such as Europe/Berlin, America/New_York or UTC")]
    UnknownZone(String),
}

/// What [`parse`] read: the EventBridge cron expression, and the time zone if the text named one.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The expression, evaluable.
    pub cron: CronSchedule,
    /// The zone written after it, if any.
    pub zone: Option<Tz>,
}

/// Reads a schedule as a person writes it, or as `cron(...)`, either followed by a time zone.
///
/// # Errors
/// [`ScheduleError::NotUnderstood`] (saying which forms are read), [`ScheduleError::UnknownZone`]
/// for a zone that is not an IANA name, or the errors of [`CronSchedule::parse`].
pub fn parse(text: &str) -> Result<Parsed, ScheduleError> {
    let (rest, zone) = split_zone(text.trim())?;
    let expression = if rest.starts_with("cron(") {
        rest.to_owned()
    } else {
        english(rest).ok_or_else(|| ScheduleError::NotUnderstood(text.trim().to_owned()))?
    };
    Ok(Parsed { cron: CronSchedule::parse(&expression)?, zone })
}

/// Parses an IANA time zone name (`Europe/Berlin`; `UTC` in any case).
///
/// # Errors
/// [`ScheduleError::UnknownZone`].
pub fn zone(name: &str) -> Result<Tz, ScheduleError> {
    let name = name.trim();
    if name.eq_ignore_ascii_case("utc") {
        return Ok(Tz::UTC);
    }
    Tz::from_str(name).map_err(|_| ScheduleError::UnknownZone(name.to_owned()))
}

/// Takes a trailing time zone off `text` ("... Europe/Berlin", "... in Europe/Berlin", "... UTC").
/// A last word with a `/` is meant as a zone, so a misspelt one is an error, not English.
fn split_zone(text: &str) -> Result<(&str, Option<Tz>), ScheduleError> {
    let Some((head, last)) = text.rsplit_once(char::is_whitespace) else { return Ok((text, None)) };
    let meant_as_zone = last.contains('/') || last.eq_ignore_ascii_case("utc");
    if !meant_as_zone || last.ends_with(')') {
        return Ok((text, None));
    }
    let zone = zone(last)?;
    let head = head.trim_end();
    let head = head.strip_suffix(" in").or_else(|| head.strip_suffix(" IN")).unwrap_or(head);
    Ok((head.trim_end(), Some(zone)))
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

    /// The next `n` firings strictly after `after`, the expression read in UTC.
    pub fn next_after(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.schedule.after(&after).take(n).collect()
    }

    /// The next `n` firings strictly after `after`, the expression read in `zone`'s local time
    /// (see the module's invariant for the days the clocks change).
    pub fn next_in(&self, zone: Tz, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Tz>> {
        let mut firings: Vec<DateTime<Tz>> = Vec::with_capacity(n);
        // The cron crate skips local times that do not exist and yields both instants of one
        // that happens twice (the second also when `after` lies between them): each local time
        // is taken at its first instant, once, and only if it is still ahead.
        let candidates = self
            .schedule
            .after(&after.with_timezone(&zone))
            .filter_map(|candidate| zone.from_local_datetime(&candidate.naive_local()).earliest());
        for firing in candidates {
            if firings.len() == n {
                break;
            }
            if firing > after && firings.last().is_none_or(|last| *last < firing) {
                firings.push(firing);
            }
        }
        firings
    }
}

fn cron_of(minutes: &str, hours: &str, day_of_month: &str, day_of_week: &str) -> String {
    format!("cron({minutes} {hours} {day_of_month} * {day_of_week} *)")
}

/// The words that start the "every ..." part of a schedule whose time came first
/// ("at 3am every day").
const RECURRENCE_WORDS: [&str; 7] = ["every", "each", "daily", "nightly", "hourly", "monthly", "on"];

/// Puts the forms people also write into the one [`english`] reads ("every X [on Y] [at T]"):
/// "at 3am every day" -> "every day at 3am", "on the 1st of every month at 6am" -> "every
/// month on the 1st at 6am".
fn canonical(lower: &str) -> String {
    let mut text = lower.trim().to_owned();
    if let Some(rest) = text.strip_prefix("at ") {
        let words: Vec<&str> = rest.split_whitespace().collect();
        if let Some(split) = words.iter().position(|w| RECURRENCE_WORDS.contains(w)) {
            text = format!("{} at {}", words[split..].join(" "), words[..split].join(" "));
        }
    }
    if let Some(rest) = text.strip_prefix("on ") {
        for of in [" of every month", " of each month", " of the month"] {
            if let Some((day, after)) = rest.split_once(of) {
                text = format!("every month on {day}{after}");
                break;
            }
        }
    }
    text
}

fn english(text: &str) -> Option<String> {
    let lower = canonical(&text.to_lowercase());
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

    fn expression(text: &str) -> Result<String, ScheduleError> {
        parse(text).map(|p| p.cron.expression().to_owned())
    }

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    /// The next `n` firings of `text` (which names its zone) after `after`, in UTC.
    fn firings(text: &str, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let parsed = parse(text).expect(text);
        let zone = parsed.zone.expect("a zone");
        parsed.cron.next_in(zone, after, n).iter().map(|t| t.with_timezone(&Utc)).collect()
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
            assert_eq!(expression(text).as_deref(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn the_forms_people_also_write_read_the_same() {
        let cases = [
            ("at 3am every day", "cron(0 3 * * ? *)"),
            ("at 9:30 every weekday", "cron(30 9 ? * MON-FRI *)"),
            ("at 6 pm daily", "cron(0 18 * * ? *)"),
            ("every monday at 9:30", "cron(30 9 ? * MON *)"),
            ("every weekday at 6pm", "cron(0 18 ? * MON-FRI *)"),
            ("on the 1st of every month at 6am", "cron(0 6 1 * ? *)"),
            ("on the 15th of each month", "cron(0 0 15 * ? *)"),
            ("at 6am on the 1st of every month", "cron(0 6 1 * ? *)"),
        ];
        for (text, expected) in cases {
            assert_eq!(expression(text).as_deref(), Ok(expected), "{text}");
        }
    }

    #[test]
    fn a_time_zone_may_follow_the_schedule() {
        let parsed = parse("every day at 3am Europe/Berlin").expect("parses");
        assert_eq!(parsed.cron.expression(), "cron(0 3 * * ? *)");
        assert_eq!(parsed.zone, Some(BERLIN));
        let parsed = parse("every monday at 9:30 in America/New_York").expect("parses");
        assert_eq!(parsed.cron.expression(), "cron(30 9 ? * MON *)");
        assert_eq!(parsed.zone, Some(chrono_tz::America::New_York));
        assert_eq!(parse("cron(0 3 * * ? *) Asia/Tokyo").expect("parses").zone, Some(chrono_tz::Asia::Tokyo));
        assert_eq!(parse("every hour UTC").expect("parses").zone, Some(Tz::UTC));
        assert_eq!(parse("every 15 minutes").expect("parses").zone, None);
        assert_eq!(
            parse("every day at 3am Europe/Berln").map(|p| p.zone),
            Err(ScheduleError::UnknownZone("Europe/Berln".into()))
        );
        let error = parse("every day at 3am Europe/Berln").expect_err("misspelt").to_string();
        assert!(error.contains("IANA"), "{error}");
    }

    #[test]
    fn three_am_in_berlin_is_one_utc_in_summer_and_two_in_winter() {
        // Germany's clocks go forward on 2026-03-29 (02:00 CET -> 03:00 CEST) and back on
        // 2026-10-25 (03:00 CEST -> 02:00 CET).
        let text = "every day at 3am Europe/Berlin";
        assert_eq!(
            firings(text, at(2026, 3, 27, 12, 0), 3),
            vec![at(2026, 3, 28, 2, 0), at(2026, 3, 29, 1, 0), at(2026, 3, 30, 1, 0)],
            "winter, then summer from the night the clocks go forward"
        );
        assert_eq!(
            firings(text, at(2026, 10, 23, 12, 0), 3),
            vec![at(2026, 10, 24, 1, 0), at(2026, 10, 25, 2, 0), at(2026, 10, 26, 2, 0)],
            "summer, then winter from the night the clocks go back"
        );
        // In local time it is 03:00 every day.
        let parsed = parse(text).expect("parses");
        for firing in parsed.cron.next_in(BERLIN, at(2026, 3, 27, 12, 0), 40) {
            assert_eq!(firing.format("%H:%M").to_string(), "03:00", "{firing}");
        }
    }

    #[test]
    fn a_local_time_the_clocks_skip_does_not_fire_and_one_they_repeat_fires_once() {
        let text = "every day at 2:30 Europe/Berlin";
        // 2026-03-29 02:30 does not exist in Berlin.
        assert_eq!(
            firings(text, at(2026, 3, 28, 12, 0), 2),
            vec![at(2026, 3, 30, 0, 30), at(2026, 3, 31, 0, 30)]
        );
        // 2026-10-25 02:30 happens twice (00:30 and 01:30 UTC): once, at the first.
        assert_eq!(
            firings(text, at(2026, 10, 24, 12, 0), 2),
            vec![at(2026, 10, 25, 0, 30), at(2026, 10, 26, 1, 30)]
        );
        // Asked between the two, the repeated one has fired already.
        assert_eq!(firings(text, at(2026, 10, 25, 1, 0), 1), vec![at(2026, 10, 26, 1, 30)]);
        // Every 15 minutes through the repeated hour: its local times fire once each.
        let quarter = firings("every 15 minutes Europe/Berlin", at(2026, 10, 24, 23, 50), 6);
        assert_eq!(
            quarter,
            vec![
                at(2026, 10, 25, 0, 0),
                at(2026, 10, 25, 0, 15),
                at(2026, 10, 25, 0, 30),
                at(2026, 10, 25, 0, 45),
                at(2026, 10, 25, 2, 0),
                at(2026, 10, 25, 2, 15)
            ]
        );
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
            let error = parse(text).expect_err(text);
            assert!(matches!(error, ScheduleError::NotUnderstood(_)), "{text}: {error}");
            for form in ["every day at 3am", "on the 1st of every month at 6am", "Europe/Berlin"] {
                assert!(error.to_string().contains(form), "{error}");
            }
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
