//! Given/when/then tests of the habit aggregate.

use super::*;
use chrono::TimeZone;
use cqrs_es::Aggregate as _;
use cqrs_es::test::TestFramework;

type Fw = TestFramework<Habit>;

const ALICE: Uuid = Uuid::from_u128(0xa11ce);
const BOB: Uuid = Uuid::from_u128(0xb0b);
const H1: Uuid = Uuid::from_u128(0x4ab1_0001);

/// 2026-03-02 (a Monday) plus `n − 1` days, 12:00 UTC.
fn at(n: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap() + Duration::days(n - 1)
}

fn day(n: i64) -> NaiveDate {
    at(n).date_naive()
}

fn fw() -> Fw {
    TestFramework::<Habit>::with(())
}

fn create_cmd(kind: HabitKind, frequency: Frequency) -> HabitCommand {
    HabitCommand::Create(CreateHabit {
        habit_id: H1,
        name: " Read ".into(),
        kind,
        frequency,
        reminder: NaiveTime::from_hms_opt(21, 0, 0),
    })
}

fn created(kind: HabitKind, frequency: Frequency) -> HabitEvent {
    HabitEvent::HabitCreated {
        habit_id: H1,
        user_id: ALICE,
        name: "Read".into(),
        kind,
        frequency,
        reminder: NaiveTime::from_hms_opt(21, 0, 0),
        created_at: at(1),
    }
}

fn daily() -> Vec<HabitEvent> {
    vec![created(HabitKind::YesNo, Frequency::DAILY)]
}

fn pages(target: i64, goal: Goal) -> HabitKind {
    HabitKind::Numeric {
        unit: "pages".into(),
        target: Decimal::from(target),
        goal,
    }
}

fn check_cmd(n: i64, value: EntryValue) -> HabitCommand {
    HabitCommand::Check { day: day(n), value }
}

/// The events `command` produces after `given`, as Alice at day `n`.
fn decide(given: &[HabitEvent], n: i64, command: HabitCommand) -> Vec<HabitEvent> {
    fw().given(given.to_vec())
        .when(Issued::new(ALICE, at(n), command))
        .inspect_result()
        .expect("command accepted")
}

fn refused(given: &[HabitEvent], actor: Uuid, command: HabitCommand) -> DomainError {
    fw().given(given.to_vec())
        .when(Issued::new(actor, at(1), command))
        .inspect_result()
        .expect_err("command refused")
}

fn assert_invalid(err: DomainError, field: &str) {
    match &err {
        DomainError::Invalid { field: f, .. } => assert_eq!(*f, field, "{err:?}"),
        other => panic!("expected Invalid({field}), got {other:?}"),
    }
}

/// `given` plus checks of days `days` with `value`, each on its own day; returns every event.
fn checked(given: &[HabitEvent], days: impl IntoIterator<Item = i64>) -> Vec<HabitEvent> {
    let mut events = given.to_vec();
    for n in days {
        let new = decide(&events, n, check_cmd(n, EntryValue::Yes));
        events.extend(new);
    }
    events
}

fn badges(events: &[HabitEvent]) -> Vec<Badge> {
    events
        .iter()
        .filter_map(|e| match e {
            HabitEvent::HabitBadgeEarned { badge, .. } => Some(*badge),
            _ => None,
        })
        .collect()
}

fn xp(events: &[HabitEvent]) -> u32 {
    events
        .iter()
        .map(|e| match e {
            HabitEvent::HabitChecked { xp, .. } => *xp,
            _ => 0,
        })
        .sum()
}

fn fold(events: &[HabitEvent]) -> Habit {
    let mut habit = Habit::default();
    for e in events {
        habit.apply(e.clone());
    }
    habit
}

#[test]
fn create_records_the_trimmed_definition() {
    fw().given_no_previous_events()
        .when(Issued::new(
            ALICE,
            at(1),
            create_cmd(HabitKind::YesNo, Frequency::DAILY),
        ))
        .then_expect_events(daily());
    let err = refused(
        &daily(),
        ALICE,
        create_cmd(HabitKind::YesNo, Frequency::DAILY),
    );
    assert!(matches!(err, DomainError::AlreadyExists { .. }), "{err:?}");
}

#[test]
fn bad_definitions_name_their_field() {
    let f = |times, days| Frequency { times, days };
    for (frequency, field) in [
        (f(4, 3), "frequency_times"),
        (f(0, 7), "frequency_times"),
        (f(1, 0), "frequency_days"),
        (f(1, 366), "frequency_days"),
    ] {
        assert_invalid(
            refused(&[], ALICE, create_cmd(HabitKind::YesNo, frequency)),
            field,
        );
    }
    assert!(f(365, 365).validate().is_ok());
    let mut empty = CreateHabit {
        habit_id: H1,
        name: "   ".into(),
        kind: HabitKind::YesNo,
        frequency: Frequency::DAILY,
        reminder: None,
    };
    assert_invalid(
        refused(&[], ALICE, HabitCommand::Create(empty.clone())),
        "name",
    );
    empty.name = "x".repeat(NAME_MAX_CHARS + 1);
    assert_invalid(refused(&[], ALICE, HabitCommand::Create(empty)), "name");
    let no_unit = HabitKind::Numeric {
        unit: " ".into(),
        target: Decimal::ONE,
        goal: Goal::AtLeast,
    };
    assert_invalid(
        refused(&[], ALICE, create_cmd(no_unit, Frequency::DAILY)),
        "unit",
    );
    for target in [Decimal::ZERO, Decimal::from(-1), MAX_AMOUNT + Decimal::ONE] {
        let kind = HabitKind::Numeric {
            unit: "km".into(),
            target,
            goal: Goal::AtLeast,
        };
        assert_invalid(
            refused(&[], ALICE, create_cmd(kind, Frequency::DAILY)),
            "target",
        );
    }
    let nil = HabitCommand::Create(CreateHabit {
        habit_id: Uuid::nil(),
        name: "x".into(),
        kind: HabitKind::YesNo,
        frequency: Frequency::DAILY,
        reminder: None,
    });
    assert_invalid(refused(&[], ALICE, nil), "habit_id");
}

#[test]
fn a_first_check_in_earns_xp_and_the_first_badge() {
    let events = decide(&daily(), 1, check_cmd(1, EntryValue::Yes));
    assert_eq!(
        events,
        vec![
            HabitEvent::HabitChecked {
                habit_id: H1,
                day: day(1),
                value: EntryValue::Yes,
                previous: None,
                success: true,
                streak: 1,
                xp: 11,
                checked_at: at(1),
            },
            HabitEvent::HabitBadgeEarned {
                habit_id: H1,
                badge: Badge::FirstCheckIn,
                day: day(1),
                earned_at: at(1),
            },
        ]
    );
}

#[test]
fn a_correction_replaces_the_entry_and_never_pays_twice() {
    let given = checked(&daily(), 1..=2);
    let no = decide(&given, 2, check_cmd(2, EntryValue::No));
    assert!(
        matches!(
            &no[..],
            [HabitEvent::HabitChecked {
                value: EntryValue::No,
                previous: Some(EntryValue::Yes),
                success: false,
                streak: 0,
                xp: 0,
                ..
            }]
        ),
        "{no:?}"
    );
    let given = [given, no].concat();
    let again = decide(&given, 3, check_cmd(2, EntryValue::Yes));
    assert!(
        matches!(
            &again[..],
            [HabitEvent::HabitChecked {
                previous: Some(EntryValue::No),
                success: true,
                streak: 2,
                xp: 0,
                ..
            }]
        ),
        "the day was credited already: {again:?}"
    );
    let habit = fold(&[given, again].concat());
    let s = habit.state().unwrap();
    assert_eq!(s.entries.get(&day(2)), Some(&EntryValue::Yes));
    assert_eq!(s.entries.len(), 2);
}

#[test]
fn xp_grows_with_the_streak() {
    let events = checked(&daily(), 1..=3);
    assert_eq!(xp(&events), 11 + 12 + 13);
    // a NO in between restarts the bonus
    let mut events = checked(&daily(), 1..=2);
    events.extend(decide(&events, 3, check_cmd(3, EntryValue::No)));
    let events = checked(&events, 4..=4);
    assert_eq!(xp(&events), 11 + 12 + 11);
}

#[test]
fn streaks_of_7_30_and_100_are_announced_once() {
    let six = checked(&daily(), 1..=6);
    let seventh = decide(&six, 7, check_cmd(7, EntryValue::Yes));
    assert!(
        matches!(
            &seventh[..],
            [
                HabitEvent::HabitChecked {
                    streak: 7,
                    xp: 17,
                    ..
                },
                HabitEvent::HabitStreakReached { length: 7, .. },
                HabitEvent::HabitBadgeEarned {
                    badge: Badge::Streak7,
                    ..
                },
                HabitEvent::HabitBadgeEarned {
                    badge: Badge::PerfectWeek,
                    ..
                },
            ]
        ),
        "{seventh:?}"
    );
    let events = [six, seventh].concat();
    let reached: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            HabitEvent::HabitStreakReached { length, .. } => Some(*length),
            _ => None,
        })
        .collect();
    assert_eq!(reached, [7]);
    // Monday 2 March to Sunday 8 March: a perfect week too
    assert_eq!(
        badges(&events),
        [Badge::FirstCheckIn, Badge::Streak7, Badge::PerfectWeek]
    );
    // break it, then another 7 days: no second announcement
    let mut events = events;
    events.extend(decide(&events, 8, check_cmd(8, EntryValue::No)));
    let events = checked(&events, 9..=15);
    assert_eq!(
        badges(&events),
        [Badge::FirstCheckIn, Badge::Streak7, Badge::PerfectWeek]
    );
    // 100 days: 30 and 100 announced on their day
    let events = checked(&daily(), 1..=100);
    let reached: Vec<(NaiveDate, u32)> = events
        .iter()
        .filter_map(|e| match e {
            HabitEvent::HabitStreakReached { day, length, .. } => Some((*day, *length)),
            _ => None,
        })
        .collect();
    assert_eq!(reached, [(day(7), 7), (day(30), 30), (day(100), 100)]);
}

#[test]
fn a_backfilled_day_that_joins_two_runs_reaches_the_milestone() {
    let mut events = checked(&daily(), (1..=3).chain(5..=8));
    assert!(!badges(&events).contains(&Badge::Streak7));
    events.extend(decide(&events, 9, check_cmd(4, EntryValue::Yes)));
    assert!(badges(&events).contains(&Badge::Streak7), "{events:?}");
}

#[test]
fn skips_freeze_the_streak() {
    let mut events = checked(&daily(), 1..=3);
    let skip = decide(&events, 4, check_cmd(4, EntryValue::Skip));
    assert!(
        matches!(
            &skip[..],
            [HabitEvent::HabitChecked {
                success: false,
                streak: 3,
                xp: 0,
                ..
            }]
        ),
        "{skip:?}"
    );
    events.extend(skip);
    let next = decide(&events, 5, check_cmd(5, EntryValue::Yes));
    assert!(matches!(
        &next[0],
        HabitEvent::HabitChecked {
            streak: 4,
            xp: 14,
            ..
        }
    ));
}

#[test]
fn numeric_habits_take_amounts() {
    let given = vec![created(pages(10, Goal::AtLeast), Frequency::DAILY)];
    let events = decide(
        &given,
        1,
        check_cmd(1, EntryValue::Amount(Decimal::new(1250, 2))),
    );
    assert!(
        matches!(
            &events[0],
            HabitEvent::HabitChecked { value: EntryValue::Amount(a), success: true, xp: 11, .. }
                if a.to_string() == "12.5"
        ),
        "normalized: {events:?}"
    );
    let short = decide(
        &given,
        1,
        check_cmd(1, EntryValue::Amount(Decimal::from(9))),
    );
    assert!(matches!(
        &short[..],
        [HabitEvent::HabitChecked {
            success: false,
            xp: 0,
            ..
        }]
    ));
    let at_most = vec![created(pages(2, Goal::AtMost), Frequency::DAILY)];
    let events = decide(&at_most, 1, check_cmd(1, EntryValue::Amount(Decimal::ONE)));
    assert!(matches!(
        &events[0],
        HabitEvent::HabitChecked { success: true, .. }
    ));
    for value in [EntryValue::Yes, EntryValue::No] {
        assert_invalid(refused(&given, ALICE, check_cmd(1, value)), "value");
    }
    for amount in [Decimal::from(-1), MAX_AMOUNT + Decimal::ONE] {
        let value = EntryValue::Amount(amount);
        assert_invalid(refused(&given, ALICE, check_cmd(1, value)), "amount");
    }
    assert_invalid(
        refused(
            &daily(),
            ALICE,
            check_cmd(1, EntryValue::Amount(Decimal::ONE)),
        ),
        "value",
    );
}

#[test]
fn days_far_in_the_future_or_past_are_invalid() {
    // command at day 1 12:00 UTC: day 2 may already be someone's local today
    decide(&daily(), 1, check_cmd(2, EntryValue::Yes));
    let err = refused(&daily(), ALICE, check_cmd(3, EntryValue::Yes));
    assert_invalid(err, "day");
    let long_ago = HabitCommand::Check {
        day: day(1) - Duration::days(MAX_BACKFILL_DAYS + 1),
        value: EntryValue::Yes,
    };
    assert_invalid(refused(&daily(), ALICE, long_ago), "day");
}

#[test]
fn n_in_d_habits_fill_their_window() {
    let given = vec![created(HabitKind::YesNo, Frequency { times: 3, days: 7 })];
    let events = checked(&given, 1..=2);
    let third = decide(&events, 3, check_cmd(3, EntryValue::Yes));
    assert!(
        matches!(&third[0], HabitEvent::HabitChecked { streak: 3, .. }),
        "{third:?}"
    );
    // the window Mon–Sun is done: a perfect week on the third check-in
    assert!(badges(&third).contains(&Badge::PerfectWeek), "{third:?}");
    let habit = fold(&[events, third].concat());
    let marks = habit.state().unwrap().marks(day(7));
    assert_eq!(marks.current(day(7)), 7);
}

#[test]
fn updates_change_the_definition_but_not_the_kind() {
    let given = vec![created(pages(10, Goal::AtLeast), Frequency::DAILY)];
    let events = decide(
        &given,
        2,
        HabitCommand::Update(HabitChanges {
            name: Some("Read more".into()),
            frequency_times: Some(5),
            frequency_days: Some(7),
            target: Some(Decimal::from(20)),
            reminder: Some(None),
        }),
    );
    assert_eq!(
        events,
        vec![HabitEvent::HabitUpdated {
            habit_id: H1,
            name: "Read more".into(),
            kind: pages(20, Goal::AtLeast),
            frequency: Frequency { times: 5, days: 7 },
            reminder: None,
            updated_at: at(2),
        }]
    );
    assert!(decide(&given, 2, HabitCommand::Update(HabitChanges::default())).is_empty());
    let bad = HabitCommand::Update(HabitChanges {
        frequency_times: Some(2),
        ..Default::default()
    });
    assert_invalid(refused(&given, ALICE, bad), "frequency_times");
    let target = HabitCommand::Update(HabitChanges {
        target: Some(Decimal::ONE),
        ..Default::default()
    });
    assert_invalid(refused(&daily(), ALICE, target), "target");
}

#[test]
fn archived_habits_take_no_check_ins() {
    let archived = [daily(), decide(&daily(), 2, HabitCommand::Archive)].concat();
    assert!(fold(&archived).state().unwrap().archived);
    let err = refused(&archived, ALICE, check_cmd(1, EntryValue::Yes));
    assert!(
        matches!(&err, DomainError::Rejected(m) if m.contains("archived")),
        "{err:?}"
    );
    assert!(matches!(
        refused(&archived, ALICE, HabitCommand::Archive),
        DomainError::Rejected(_)
    ));
    let back = decide(&archived, 3, HabitCommand::Unarchive);
    assert!(matches!(&back[..], [HabitEvent::HabitUnarchived { .. }]));
    assert!(matches!(
        refused(&daily(), ALICE, HabitCommand::Unarchive),
        DomainError::Rejected(_)
    ));
}

#[test]
fn another_users_habit_is_not_found() {
    for command in [
        check_cmd(1, EntryValue::Yes),
        HabitCommand::Archive,
        HabitCommand::Unarchive,
        HabitCommand::Update(HabitChanges::default()),
    ] {
        let err = refused(&daily(), BOB, command.clone());
        assert_eq!(
            err,
            DomainError::NotFound {
                entity: ENTITY,
                id: String::new()
            }
        );
        assert!(matches!(
            refused(&[], ALICE, command),
            DomainError::NotFound { .. }
        ));
    }
}

#[test]
fn events_have_their_types_and_round_trip() {
    let events = checked(&daily(), 1..=7);
    let types: BTreeSet<String> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(
        types,
        [
            "HabitBadgeEarned",
            "HabitChecked",
            "HabitCreated",
            "HabitStreakReached"
        ]
        .map(String::from)
        .into()
    );
    for e in &events {
        assert_eq!(e.event_version(), "1");
        assert_eq!(e.habit_id(), H1);
        let back: HabitEvent = serde_json::from_value(serde_json::to_value(e).unwrap()).unwrap();
        assert_eq!(&back, e);
    }
    let amount = HabitEvent::HabitChecked {
        habit_id: H1,
        day: day(1),
        value: EntryValue::Amount(Decimal::new(125, 1)),
        previous: Some(EntryValue::Skip),
        success: true,
        streak: 1,
        xp: 11,
        checked_at: at(1),
    };
    let json = serde_json::to_value(&amount).unwrap();
    assert_eq!(json["HabitChecked"]["value"]["amount"], "12.5", "{json}");
    assert_eq!(json["HabitChecked"]["previous"], "skip");
    let habit = fold(&events);
    let snapshot: Habit = serde_json::from_value(serde_json::to_value(&habit).unwrap()).unwrap();
    assert_eq!(snapshot, habit);
}
