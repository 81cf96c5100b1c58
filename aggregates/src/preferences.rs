//! The user's preferences (one aggregate per user): time zone and day start for daily rollups,
//! theme, pomodoro timings, and the opt-ins that gate the cortex.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{DomainError, Issued};

/// Limits of the pomodoro timings, in minutes.
pub const MINUTES_RANGE: std::ops::RangeInclusive<u32> = 1..=240;
/// Limits of the cycles before a long break.
pub const CYCLES_RANGE: std::ops::RangeInclusive<u32> = 1..=12;
/// The themes a client may choose.
pub const THEMES: &[&str] = &["system", "light", "dark"];

/// A user's preferences, defaults included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preferences {
    /// IANA time zone name (e.g. `Europe/Paris`): where the user's days begin and end.
    pub timezone: String,
    /// The local hour (0–23) a "day" begins, for streaks and daily rollups.
    pub day_start_hour: u32,
    /// `system`, `light` or `dark`.
    pub theme: String,
    /// Pomodoro work, short break and long break lengths, in minutes.
    pub pomodoro_work_minutes: u32,
    /// Short break length, in minutes.
    pub short_break_minutes: u32,
    /// Long break length, in minutes.
    pub long_break_minutes: u32,
    /// Pomodoros before a long break.
    pub cycles_before_long_break: u32,
    /// Whether AI features may read the user's data.
    pub ai_features_enabled: bool,
    /// Whether the cortex may correlate the user's pillars.
    pub correlation_enabled: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            timezone: "UTC".into(),
            day_start_hour: 0,
            theme: "system".into(),
            pomodoro_work_minutes: 25,
            short_break_minutes: 5,
            long_break_minutes: 15,
            cycles_before_long_break: 4,
            ai_features_enabled: false,
            correlation_enabled: false,
        }
    }
}

/// A partial update: only the fields given change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferencesPatch {
    /// New time zone (IANA name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// New day start hour (0–23).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_start_hour: Option<u32>,
    /// New theme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    /// New pomodoro length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pomodoro_work_minutes: Option<u32>,
    /// New short break length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub short_break_minutes: Option<u32>,
    /// New long break length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub long_break_minutes: Option<u32>,
    /// New cycles before a long break.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycles_before_long_break: Option<u32>,
    /// AI features opt-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai_features_enabled: Option<bool>,
    /// Correlation opt-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_enabled: Option<bool>,
}

impl PreferencesPatch {
    /// Checks every given field (the first bad one is named).
    pub fn validate(&self) -> Result<(), DomainError> {
        if let Some(tz) = &self.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            return Err(DomainError::invalid(
                "timezone",
                format!("{tz:?} is not an IANA time zone name (e.g. Europe/Paris)"),
            ));
        }
        if let Some(h) = self.day_start_hour
            && h > 23
        {
            return Err(DomainError::invalid(
                "day_start_hour",
                format!("must be 0 to 23, got {h}"),
            ));
        }
        if let Some(theme) = &self.theme
            && !THEMES.contains(&theme.as_str())
        {
            return Err(DomainError::invalid(
                "theme",
                format!("must be one of {}, got {theme:?}", THEMES.join(", ")),
            ));
        }
        for (field, value) in [
            ("pomodoro_work_minutes", self.pomodoro_work_minutes),
            ("short_break_minutes", self.short_break_minutes),
            ("long_break_minutes", self.long_break_minutes),
        ] {
            if let Some(m) = value
                && !MINUTES_RANGE.contains(&m)
            {
                return Err(DomainError::invalid(
                    field,
                    format!(
                        "must be {} to {} minutes, got {m}",
                        MINUTES_RANGE.start(),
                        MINUTES_RANGE.end()
                    ),
                ));
            }
        }
        if let Some(c) = self.cycles_before_long_break
            && !CYCLES_RANGE.contains(&c)
        {
            return Err(DomainError::invalid(
                "cycles_before_long_break",
                format!(
                    "must be {} to {}, got {c}",
                    CYCLES_RANGE.start(),
                    CYCLES_RANGE.end()
                ),
            ));
        }
        Ok(())
    }

    /// The patch without the fields that would not change `current`.
    fn changes_to(&self, current: &Preferences) -> PreferencesPatch {
        fn keep<T: PartialEq + Clone>(new: &Option<T>, old: &T) -> Option<T> {
            new.as_ref().filter(|n| *n != old).cloned()
        }
        PreferencesPatch {
            timezone: keep(&self.timezone, &current.timezone),
            day_start_hour: keep(&self.day_start_hour, &current.day_start_hour),
            theme: keep(&self.theme, &current.theme),
            pomodoro_work_minutes: keep(
                &self.pomodoro_work_minutes,
                &current.pomodoro_work_minutes,
            ),
            short_break_minutes: keep(&self.short_break_minutes, &current.short_break_minutes),
            long_break_minutes: keep(&self.long_break_minutes, &current.long_break_minutes),
            cycles_before_long_break: keep(
                &self.cycles_before_long_break,
                &current.cycles_before_long_break,
            ),
            ai_features_enabled: keep(&self.ai_features_enabled, &current.ai_features_enabled),
            correlation_enabled: keep(&self.correlation_enabled, &current.correlation_enabled),
        }
    }

    /// Applies the given fields to `prefs`.
    fn apply_to(self, prefs: &mut Preferences) {
        let Self {
            timezone,
            day_start_hour,
            theme,
            pomodoro_work_minutes,
            short_break_minutes,
            long_break_minutes,
            cycles_before_long_break,
            ai_features_enabled,
            correlation_enabled,
        } = self;
        prefs.timezone = timezone.unwrap_or(std::mem::take(&mut prefs.timezone));
        prefs.day_start_hour = day_start_hour.unwrap_or(prefs.day_start_hour);
        prefs.theme = theme.unwrap_or(std::mem::take(&mut prefs.theme));
        prefs.pomodoro_work_minutes = pomodoro_work_minutes.unwrap_or(prefs.pomodoro_work_minutes);
        prefs.short_break_minutes = short_break_minutes.unwrap_or(prefs.short_break_minutes);
        prefs.long_break_minutes = long_break_minutes.unwrap_or(prefs.long_break_minutes);
        prefs.cycles_before_long_break =
            cycles_before_long_break.unwrap_or(prefs.cycles_before_long_break);
        prefs.ai_features_enabled = ai_features_enabled.unwrap_or(prefs.ai_features_enabled);
        prefs.correlation_enabled = correlation_enabled.unwrap_or(prefs.correlation_enabled);
    }

    fn is_empty(&self) -> bool {
        *self == PreferencesPatch::default()
    }
}

/// The aggregate: one per user, its id the user's id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserPreferences {
    owner: Option<Uuid>,
    preferences: Preferences,
    updated_at: Option<DateTime<Utc>>,
}

impl UserPreferences {
    /// The current preferences (defaults when never set).
    pub fn preferences(&self) -> &Preferences {
        &self.preferences
    }

    /// When they last changed (None: never set).
    pub fn updated_at(&self) -> Option<DateTime<Utc>> {
        self.updated_at
    }
}

/// Commands on a user's preferences.
#[derive(Debug, Clone, PartialEq)]
pub enum PreferencesCommand {
    /// Changes the given fields.
    Set(PreferencesPatch),
}

/// Events of a user's preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PreferencesEvent {
    /// Some preferences changed (only the changed fields are present).
    PreferencesSet {
        /// The user.
        user_id: Uuid,
        /// The changed fields.
        changes: PreferencesPatch,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for PreferencesEvent {
    fn event_type(&self) -> String {
        match self {
            PreferencesEvent::PreferencesSet { .. } => "PreferencesSet".into(),
        }
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

crate::pillar_aggregate!(
    UserPreferences,
    "preferences",
    PreferencesCommand,
    PreferencesEvent
);

impl UserPreferences {
    /// The events `command` produces: only the fields that change.
    fn decide(
        &self,
        command: Issued<PreferencesCommand>,
    ) -> Result<Vec<PreferencesEvent>, DomainError> {
        let Issued { actor, at, command } = command;
        let PreferencesCommand::Set(patch) = command;
        patch.validate()?;
        if self.owner.is_some_and(|owner| owner != actor) {
            return Err(DomainError::NotFound {
                entity: "preferences",
                id: String::new(),
            });
        }
        let changes = patch.changes_to(&self.preferences);
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![PreferencesEvent::PreferencesSet {
            user_id: actor,
            changes,
            at,
        }])
    }

    /// Folds `event` into the preferences.
    fn evolve(&mut self, event: PreferencesEvent) {
        let PreferencesEvent::PreferencesSet {
            user_id,
            changes,
            at,
        } = event;
        self.owner.get_or_insert(user_id);
        changes.apply_to(&mut self.preferences);
        self.updated_at = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::Aggregate as _;
    use cqrs_es::test::TestFramework;

    fn user() -> Uuid {
        Uuid::from_u128(7)
    }

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn set(patch: PreferencesPatch) -> Issued<PreferencesCommand> {
        Issued::new(user(), at(), PreferencesCommand::Set(patch))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let p = UserPreferences::default();
        let p = p.preferences();
        assert_eq!(
            (
                p.pomodoro_work_minutes,
                p.short_break_minutes,
                p.long_break_minutes
            ),
            (25, 5, 15)
        );
        assert_eq!(p.cycles_before_long_break, 4);
        assert!(
            !p.ai_features_enabled && !p.correlation_enabled,
            "the cortex needs an opt-in"
        );
        assert_eq!(p.timezone, "UTC");
    }

    #[test]
    fn only_changed_fields_are_recorded() {
        let patch = PreferencesPatch {
            timezone: Some("Europe/Paris".into()),
            pomodoro_work_minutes: Some(25), // the default: no change
            ..Default::default()
        };
        TestFramework::<UserPreferences>::with(())
            .given_no_previous_events()
            .when(set(patch))
            .then_expect_events(vec![PreferencesEvent::PreferencesSet {
                user_id: user(),
                changes: PreferencesPatch {
                    timezone: Some("Europe/Paris".into()),
                    ..Default::default()
                },
                at: at(),
            }]);
    }

    #[test]
    fn setting_the_same_values_writes_nothing() {
        TestFramework::<UserPreferences>::with(())
            .given_no_previous_events()
            .when(set(PreferencesPatch {
                theme: Some("system".into()),
                ..Default::default()
            }))
            .then_expect_events(vec![]);
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (
                PreferencesPatch {
                    timezone: Some("Mars/Olympus".into()),
                    ..Default::default()
                },
                "timezone",
            ),
            (
                PreferencesPatch {
                    day_start_hour: Some(24),
                    ..Default::default()
                },
                "day_start_hour",
            ),
            (
                PreferencesPatch {
                    theme: Some("neon".into()),
                    ..Default::default()
                },
                "theme",
            ),
            (
                PreferencesPatch {
                    pomodoro_work_minutes: Some(0),
                    ..Default::default()
                },
                "pomodoro_work_minutes",
            ),
            (
                PreferencesPatch {
                    long_break_minutes: Some(241),
                    ..Default::default()
                },
                "long_break_minutes",
            ),
            (
                PreferencesPatch {
                    cycles_before_long_break: Some(13),
                    ..Default::default()
                },
                "cycles_before_long_break",
            ),
        ];
        for (patch, field) in cases {
            let err = TestFramework::<UserPreferences>::with(())
                .given_no_previous_events()
                .when(set(patch))
                .inspect_result()
                .unwrap_err();
            assert!(
                matches!(err, DomainError::Invalid { field: f, .. } if f == field),
                "{field}: {err:?}"
            );
        }
    }

    #[test]
    fn another_user_cannot_change_them() {
        let given = vec![PreferencesEvent::PreferencesSet {
            user_id: user(),
            changes: PreferencesPatch {
                theme: Some("dark".into()),
                ..Default::default()
            },
            at: at(),
        }];
        let intruder = Issued::new(
            Uuid::from_u128(8),
            at(),
            PreferencesCommand::Set(PreferencesPatch {
                theme: Some("light".into()),
                ..Default::default()
            }),
        );
        TestFramework::<UserPreferences>::with(())
            .given(given)
            .when(intruder)
            .then_expect_error(DomainError::NotFound {
                entity: "preferences",
                id: String::new(),
            });
    }

    #[test]
    fn apply_folds_patches_over_defaults() {
        let mut p = UserPreferences::default();
        p.apply(PreferencesEvent::PreferencesSet {
            user_id: user(),
            changes: PreferencesPatch {
                day_start_hour: Some(4),
                ..Default::default()
            },
            at: at(),
        });
        p.apply(PreferencesEvent::PreferencesSet {
            user_id: user(),
            changes: PreferencesPatch {
                correlation_enabled: Some(true),
                ..Default::default()
            },
            at: at(),
        });
        assert_eq!(p.preferences().day_start_hour, 4);
        assert!(p.preferences().correlation_enabled);
        assert_eq!(
            p.preferences().theme,
            "system",
            "untouched fields keep their value"
        );
        assert_eq!(p.updated_at(), Some(at()));
    }
}
