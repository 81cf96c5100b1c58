//! Money: a [`Decimal`] amount in an ISO 4217 [`Currency`], never a float.
//!
//! Currencies come from the `iso_currency` crate (the ISO 4217 table with each currency's minor
//! units, kept up to date upstream) rather than a hand-written table. Only currencies with minor
//! units are accepted: the "special" codes without any (gold `XAU`, `XXX` no currency, `XTS`
//! testing...) are not money one spends.
//!
//! An amount may have at most the currency's minor units as decimals once trailing zeros are
//! dropped (`10.50` and `10.5` USD are the same amount; `10.505` USD is invalid; JPY has none,
//! BHD three), and is stored rescaled to exactly that many decimals (`10.50`). Amounts are
//! written as plain decimal strings (`-12.30`): an optional sign, digits, an optional point and
//! digits — no exponent, no separators — and their magnitude stays below [`MAX_ABS_AMOUNT`], so
//! sums of a whole account never overflow a `Decimal`.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DomainError;

/// The largest magnitude an amount may have (exclusive): one quadrillion.
pub const MAX_ABS_AMOUNT: i64 = 1_000_000_000_000_000;

/// An ISO 4217 currency that has minor units, serialized as its code (`USD`).
///
/// ```
/// use aggregates::finance::money::Currency;
/// let usd: Currency = "USD".parse().unwrap();
/// assert_eq!((usd.code(), usd.minor_units()), ("USD", 2));
/// assert_eq!("JPY".parse::<Currency>().unwrap().minor_units(), 0);
/// assert!("usd".parse::<Currency>().is_err());
/// assert!("XAU".parse::<Currency>().is_err(), "gold has no minor units");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// The three-letter code, e.g. `EUR`.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// How many decimals an amount may have (USD 2, JPY 0, BHD 3).
    pub fn minor_units(self) -> u32 {
        // only currencies with an exponent are ever constructed (see FromStr)
        self.0.exponent().map_or(0, u32::from)
    }

    /// Parses the currency of request field `field`: an upper-case ISO 4217 code with minor
    /// units; anything else is INVALID_ARGUMENT on `field`.
    pub fn parse_field(field: &'static str, code: &str) -> Result<Self, DomainError> {
        let known = iso_currency::Currency::from_code(code)
            .filter(|_| code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()));
        match known {
            Some(c) if c.exponent().is_some() => Ok(Self(c)),
            Some(_) => Err(DomainError::invalid(
                field,
                format!("{code} has no minor units and is not accepted as money"),
            )),
            None if code.is_empty() => Err(DomainError::invalid(
                field,
                "is required (an ISO 4217 code such as USD)",
            )),
            None => Err(DomainError::invalid(
                field,
                format!("{code:?} is not an ISO 4217 currency code (e.g. USD, EUR, JPY)"),
            )),
        }
    }
}

impl FromStr for Currency {
    type Err = DomainError;

    /// [`Currency::parse_field`] for the field `currency`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_field("currency", s)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses a plain decimal string (`-12.30`, `5`, `+0.5`) of request field `field`: no
/// exponent, no thousands separators, magnitude below [`MAX_ABS_AMOUNT`].
///
/// ```
/// use aggregates::finance::money::parse_decimal;
/// assert_eq!(parse_decimal("amount", "-12.30").unwrap().to_string(), "-12.30");
/// assert!(parse_decimal("amount", "1e3").is_err());
/// assert!(parse_decimal("amount", "1,000").is_err());
/// ```
pub fn parse_decimal(field: &'static str, text: &str) -> Result<Decimal, DomainError> {
    let bad = || {
        DomainError::invalid(
            field,
            format!("must be a decimal number such as -12.30, got {text:?}"),
        )
    };
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) || digits.ends_with('.') {
        return Err(bad());
    }
    if int.trim_start_matches('0').len() > 15 {
        return Err(too_large(field));
    }
    let value =
        Decimal::from_str_exact(text.strip_prefix('+').unwrap_or(text)).map_err(|_| bad())?;
    if value.abs() >= Decimal::from(MAX_ABS_AMOUNT) {
        return Err(too_large(field));
    }
    Ok(value)
}

fn too_large(field: &'static str) -> DomainError {
    DomainError::invalid(
        field,
        format!("must be smaller in magnitude than {MAX_ABS_AMOUNT}"),
    )
}

/// An amount in a currency, with at most the currency's minor units (stored with exactly that
/// many decimals). Serialized as `{"amount": "-12.30", "currency": "USD"}`: the amount is a
/// string, never a float.
///
/// ```
/// use aggregates::finance::money::{Currency, Money};
/// use rust_decimal::Decimal;
/// let usd: Currency = "USD".parse().unwrap();
/// let m = Money::new("amount", Decimal::new(105, 1), usd).unwrap();
/// assert_eq!(m.amount().to_string(), "10.50");
/// let err = Money::new("amount", Decimal::new(10505, 3), usd).unwrap_err();
/// assert!(err.to_string().contains("USD has 2 decimals, got 3"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// `amount` in `currency`, checked against its minor units (errors name `field`).
    pub fn new(
        field: &'static str,
        amount: Decimal,
        currency: Currency,
    ) -> Result<Self, DomainError> {
        Ok(Self {
            amount: in_minor_units(field, amount, currency)?,
            currency,
        })
    }

    /// Parses `amount` (see [`parse_decimal`]) in `currency`; errors name `field`.
    pub fn parse(
        field: &'static str,
        amount: &str,
        currency: Currency,
    ) -> Result<Self, DomainError> {
        Self::new(field, parse_decimal(field, amount)?, currency)
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        let mut amount = Decimal::ZERO;
        amount.rescale(currency.minor_units());
        Self { amount, currency }
    }

    /// The amount (negative = money out).
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// `amount` rescaled to exactly `currency`'s minor units; INVALID_ARGUMENT on `field` when it
/// has more significant decimals ("USD has 2 decimals, got 3") or is too large.
pub fn in_minor_units(
    field: &'static str,
    amount: Decimal,
    currency: Currency,
) -> Result<Decimal, DomainError> {
    let units = currency.minor_units();
    let significant = amount.normalize().scale();
    if significant > units {
        return Err(DomainError::invalid(
            field,
            format!("{currency} has {units} decimals, got {significant}"),
        ));
    }
    if amount.abs() >= Decimal::from(MAX_ABS_AMOUNT) {
        return Err(too_large(field));
    }
    let mut exact = amount.normalize();
    exact.rescale(units);
    Ok(exact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        code.parse().unwrap()
    }

    fn field_of(err: DomainError) -> &'static str {
        match err {
            DomainError::Invalid { field, .. } => field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn currencies_know_their_minor_units() {
        assert_eq!(cur("USD").minor_units(), 2);
        assert_eq!(cur("EUR").minor_units(), 2);
        assert_eq!(cur("JPY").minor_units(), 0);
        assert_eq!(cur("BHD").minor_units(), 3);
        for bad in ["", "US", "usd", "ABC", "USDX", "XAU", "XXX", " USD"] {
            let err = Currency::parse_field("currency", bad).unwrap_err();
            assert_eq!(field_of(err), "currency", "{bad:?}");
        }
        let err = "ABC".parse::<Currency>().unwrap_err();
        assert!(err.to_string().contains("ISO 4217"), "{err}");
    }

    #[test]
    fn amounts_are_checked_against_minor_units() {
        let m = Money::parse("amount", "12.3", cur("USD")).unwrap();
        assert_eq!(m.amount().to_string(), "12.30");
        assert_eq!(
            Money::parse("amount", "12.300", cur("USD"))
                .unwrap()
                .amount()
                .to_string(),
            "12.30",
            "trailing zeros are not decimals"
        );
        let err = Money::parse("amount", "12.345", cur("USD")).unwrap_err();
        assert!(
            err.to_string().contains("USD has 2 decimals, got 3"),
            "{err}"
        );
        assert_eq!(field_of(err), "amount");
        assert!(Money::parse("amount", "100", cur("JPY")).is_ok());
        let err = Money::parse("amount", "100.5", cur("JPY")).unwrap_err();
        assert!(
            err.to_string().contains("JPY has 0 decimals, got 1"),
            "{err}"
        );
        assert_eq!(
            Money::parse("amount", "-1.005", cur("BHD"))
                .unwrap()
                .amount()
                .to_string(),
            "-1.005"
        );
        assert!(Money::parse("amount", "1.0005", cur("BHD")).is_err());
    }

    #[test]
    fn only_plain_decimals_parse() {
        for good in ["0", "-0.01", "+5", "123456789012345.5"] {
            assert!(parse_decimal("amount", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-",
            ".5",
            "5.",
            "1e3",
            "1,000",
            "1_000",
            " 5",
            "NaN",
            "--1",
            "0x10",
            "1000000000000000",
            "99999999999999999999999",
        ] {
            assert_eq!(
                field_of(parse_decimal("amount", bad).unwrap_err()),
                "amount",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn money_serializes_the_amount_as_a_string() {
        let m = Money::parse("amount", "-4.5", cur("EUR")).unwrap();
        let json = serde_json::to_value(m).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"amount": "-4.50", "currency": "EUR"})
        );
        let back: Money = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
        assert_eq!(Money::zero(cur("USD")).amount().to_string(), "0.00");
    }
}
