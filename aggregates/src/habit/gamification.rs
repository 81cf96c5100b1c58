//! XP, levels and badges.
//!
//! - **XP**: a check-in earns XP only when its entry is successful (YES, or an amount meeting
//!   the target) and only the first time that day of that habit earns XP (a correction never
//!   pays twice): `10 × (1 + min(streak, 30) / 10)` = `10 + min(streak, 30)`, where `streak` is
//!   the streak ending on the checked day, that day included.
//! - **Levels** from a user's cumulative XP: level 1 at 0 XP, and level `n + 1` is reached at
//!   `50·n·(n + 1)` XP (level 2 at 100, level 3 at 300, level 4 at 600, …).
//! - **Badges**, each earned at most once per habit: `first_check_in` (the first successful
//!   check-in), `streak_7` / `streak_30` / `streak_100` (a streak through the checked day reaches
//!   that length; also announced as `HabitStreakReached`), `perfect_week` (every day of an ISO
//!   week, Monday to Sunday, done).

use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// XP of a check-in whose entry is not successful, or of a day already credited.
pub const NO_XP: u32 = 0;
/// XP of a successful check-in before the streak bonus.
pub const BASE_XP: u32 = 10;
/// The streak length beyond which the bonus stops growing.
pub const MAX_STREAK_BONUS: u32 = 30;
/// Streak lengths announced by `HabitStreakReached` (each with its badge).
pub const STREAK_MILESTONES: [u32; 3] = [7, 30, 100];

/// XP for a successful check-in on a day whose streak (that day included) is `streak`.
///
/// ```
/// use aggregates::habit::gamification::xp_for;
/// assert_eq!(xp_for(1), 11);
/// assert_eq!(xp_for(30), 40);
/// assert_eq!(xp_for(365), 40);
/// ```
pub fn xp_for(streak: u32) -> u32 {
    BASE_XP * (10 + streak.min(MAX_STREAK_BONUS)) / 10
}

/// The cumulative XP at which `level` (≥ 1) is reached: `50·(level − 1)·level`.
pub fn xp_of_level(level: u32) -> u64 {
    let n = u64::from(level.saturating_sub(1));
    50 * n * (n + 1)
}

/// The level of a user with `xp` cumulative XP.
///
/// ```
/// use aggregates::habit::gamification::level_of;
/// assert_eq!(level_of(0), 1);
/// assert_eq!(level_of(99), 1);
/// assert_eq!(level_of(100), 2);
/// assert_eq!(level_of(300), 3);
/// ```
pub fn level_of(xp: u64) -> u32 {
    let mut level = 1;
    while xp_of_level(level + 1) <= xp {
        level += 1;
    }
    level
}

/// A badge a habit can earn (once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Badge {
    /// The first successful check-in.
    FirstCheckIn,
    /// A 7-day streak.
    #[serde(rename = "streak_7")]
    Streak7,
    /// A 30-day streak.
    #[serde(rename = "streak_30")]
    Streak30,
    /// A 100-day streak.
    #[serde(rename = "streak_100")]
    Streak100,
    /// Every day of an ISO week done.
    PerfectWeek,
}

impl Badge {
    /// Every badge, in wire order.
    pub const ALL: [Badge; 5] = [
        Badge::FirstCheckIn,
        Badge::Streak7,
        Badge::Streak30,
        Badge::Streak100,
        Badge::PerfectWeek,
    ];

    /// The name in events and on the wire, e.g. `streak_7`.
    pub fn as_str(self) -> &'static str {
        match self {
            Badge::FirstCheckIn => "first_check_in",
            Badge::Streak7 => "streak_7",
            Badge::Streak30 => "streak_30",
            Badge::Streak100 => "streak_100",
            Badge::PerfectWeek => "perfect_week",
        }
    }

    /// The badge of a streak milestone (7, 30 or 100).
    pub fn of_streak(length: u32) -> Option<Badge> {
        match length {
            7 => Some(Badge::Streak7),
            30 => Some(Badge::Streak30),
            100 => Some(Badge::Streak100),
            _ => None,
        }
    }
}

impl FromStr for Badge {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Badge::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| format!("unknown badge {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xp_grows_with_the_streak_up_to_30() {
        assert_eq!(xp_for(0), 10);
        assert_eq!(xp_for(7), 17);
        assert_eq!(xp_for(29), 39);
        assert_eq!(xp_for(31), 40);
    }

    #[test]
    fn levels_follow_the_curve() {
        assert_eq!(xp_of_level(1), 0);
        assert_eq!(xp_of_level(2), 100);
        assert_eq!(xp_of_level(4), 600);
        for level in 1..50 {
            assert_eq!(level_of(xp_of_level(level)), level);
            assert_eq!(level_of(xp_of_level(level + 1) - 1), level);
        }
    }

    #[test]
    fn badges_round_trip_by_name() {
        for badge in Badge::ALL {
            assert_eq!(badge.as_str().parse::<Badge>(), Ok(badge));
            assert_eq!(
                serde_json::to_value(badge).unwrap(),
                serde_json::json!(badge.as_str())
            );
        }
        assert!("gold".parse::<Badge>().is_err());
        assert_eq!(Badge::of_streak(30), Some(Badge::Streak30));
        assert_eq!(Badge::of_streak(8), None);
    }
}
