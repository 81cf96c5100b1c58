//! Duplicate detection of imported bank rows: the payee similarity and the date window.
//!
//! A CSV row is a duplicate of a transaction already in the account when (checked in this
//! order, see `account`'s ImportCsv):
//! 1. it has the same external id from the same source (exact; also against earlier rows of the
//!    same file), or
//! 2. it has exactly the same amount, its date is within [`DATE_WINDOW_DAYS`] local days of the
//!    transaction's, and the payees are similar ([`similar_payees`]): only against transactions
//!    that were already in the account before the import, so two identical coffees in one file
//!    are both kept, and each existing transaction absorbs at most one row of a file.
//!
//! Payee similarity: both payees are normalised ([`normalize_payee`]: lower case, punctuation to
//! spaces, tokens made only of digits dropped — store numbers, card references — whitespace
//! collapsed), then compared with Jaro-Winkler (`strsim`); similar means equal after
//! normalisation, or a score of at least [`PAYEE_SIMILARITY`] (0.85: `STARBUCKS #1234` and
//! `Starbucks Seattle` match, `Shell` and `Starbucks` do not).

use chrono::NaiveDate;

/// Jaro-Winkler score from which two normalised payees count as the same.
pub const PAYEE_SIMILARITY: f64 = 0.85;
/// Local days between two dates that still count as the same transaction.
pub const DATE_WINDOW_DAYS: i64 = 2;

/// `payee` as compared: lower case, punctuation as spaces, digit-only tokens dropped, single
/// spaces.
///
/// ```
/// use aggregates::finance::dedupe::normalize_payee;
/// assert_eq!(normalize_payee("  STARBUCKS #1234, Seattle "), "starbucks seattle");
/// ```
pub fn normalize_payee(payee: &str) -> String {
    payee
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty() && !t.chars().all(|c| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether two payees name the same counterparty (see the module docs).
///
/// ```
/// use aggregates::finance::dedupe::similar_payees;
/// assert!(similar_payees("STARBUCKS #1234", "Starbucks Seattle"));
/// assert!(!similar_payees("Shell", "Starbucks"));
/// ```
pub fn similar_payees(a: &str, b: &str) -> bool {
    let (a, b) = (normalize_payee(a), normalize_payee(b));
    a == b || strsim::jaro_winkler(&a, &b) >= PAYEE_SIMILARITY
}

/// Whether two local dates are at most [`DATE_WINDOW_DAYS`] apart.
pub fn within_window(a: NaiveDate, b: NaiveDate) -> bool {
    (a - b).num_days().abs() <= DATE_WINDOW_DAYS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payees_are_normalised_before_comparison() {
        assert_eq!(
            normalize_payee("AMAZON.COM*2K4 Mktp"),
            "amazon com 2k4 mktp"
        );
        assert_eq!(normalize_payee("1234 5678"), "");
        assert!(similar_payees("Café Central", "CAFÉ CENTRAL 0042"));
        assert!(similar_payees("Amazon", "Amazon Prime"));
        assert!(similar_payees("", "  #12 "), "both empty after normalising");
    }

    #[test]
    fn different_payees_are_not_similar() {
        for (a, b) in [
            ("Shell", "Starbucks"),
            ("Rent", "Netflix"),
            ("Uber", "Lidl"),
            ("Starbucks", ""),
        ] {
            assert!(!similar_payees(a, b), "{a} vs {b}");
        }
    }

    #[test]
    fn the_window_is_two_days_each_way() {
        let d = |day| NaiveDate::from_ymd_opt(2026, 3, day).unwrap();
        assert!(within_window(d(10), d(10)));
        assert!(within_window(d(10), d(12)));
        assert!(within_window(d(12), d(10)));
        assert!(!within_window(d(10), d(13)));
        assert!(!within_window(d(13), d(10)));
    }
}
