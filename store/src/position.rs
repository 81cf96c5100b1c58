//! A place in the global log, and its string form (the consistency token).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A position in the global read order: `(transaction id, global position)`.
///
/// On PostgreSQL `tx` is the writing transaction's `xid8`; on SQLite (one writer, commit order =
/// position order) it is always 0. Positions compare lexicographically, which is the log order.
///
/// ```
/// use store::Position;
/// let p = Position { tx: 7, pos: 42 };
/// assert_eq!(p.to_string(), "7.42");
/// assert_eq!("7.42".parse::<Position>().unwrap(), p);
/// assert!(Position::START < p);
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Position {
    /// The writing transaction (0 on SQLite).
    pub tx: i64,
    /// The global position of the event.
    pub pos: i64,
}

impl Position {
    /// Before the first event.
    pub const START: Position = Position { tx: 0, pos: 0 };
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.tx, self.pos)
    }
}

/// A string that is not `<tx>.<pos>` with two non-negative integers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed log position {0:?}: expected <tx>.<pos>")]
pub struct BadPosition(pub String);

impl FromStr for Position {
    type Err = BadPosition;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadPosition(s.chars().take(64).collect());
        let (tx, pos) = s.split_once('.').ok_or_else(bad)?;
        let tx: i64 = tx.parse().map_err(|_| bad())?;
        let pos: i64 = pos.parse().map_err(|_| bad())?;
        if tx < 0 || pos < 0 {
            return Err(bad());
        }
        Ok(Position { tx, pos })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_transaction_then_position() {
        let a = Position { tx: 5, pos: 100 };
        let b = Position { tx: 6, pos: 3 };
        assert!(
            a < b,
            "a later transaction comes later even with a lower position"
        );
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "12", "a.b", "1.", ".1", "-1.2", "1.2.3"] {
            assert!(
                bad.parse::<Position>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }
}
