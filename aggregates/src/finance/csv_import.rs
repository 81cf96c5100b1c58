//! Bank CSV parsing with a column mapping: pure, the CSV text arrives in the request.
//!
//! [`parse`] reads the whole text with the `csv` crate and turns every data record into either
//! a [`CsvRow`] or a [`RejectedRow`] naming its line (the 1-based line the record starts on) and
//! the field at fault. Problems of the file as a whole (too large, a mapped header that is
//! missing, a bad delimiter) are one INVALID_ARGUMENT and nothing is imported.
//!
//! The mapping ([`CsvMapping`]):
//! - columns by header name (needs `has_header`) or by 0-based index;
//! - the amount either in one signed column, or in an inflow and an outflow column (the outflow
//!   is money out whatever its sign; exactly one of them holds a non-zero value per row);
//! - `flip_sign` for banks that list spending as positive numbers;
//! - amounts may use `,` as thousands separators, or with `decimal_comma` `.` as thousands
//!   separators and `,` as the decimal point; a leading currency symbol is not accepted;
//! - the date with a chrono strftime format (`%Y-%m-%d`, `%d/%m/%Y`...). A format with a time
//!   gives that local time; a date alone means 12:00 local time (noon lands on that local day for
//!   any day start up to 11:00 and is never inside a DST gap). Local means the time zone passed
//!   in (the user's preferences zone unless the request names one).
//!
//! The amount's decimals are checked against the account's currency by the account aggregate,
//! which also rejects such rows with their line.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::money::parse_decimal;
use crate::DomainError;

/// The largest CSV text accepted, in bytes (below gRPC's default 4 MiB message limit).
pub const MAX_CSV_BYTES: usize = 4_000_000;
/// The most data rows one import may have.
pub const MAX_CSV_ROWS: usize = 50_000;

/// Where a field is in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// The column with this header (requires a header line).
    Name(String),
    /// The column at this 0-based position.
    Index(usize),
}

/// Where the amount is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountColumns {
    /// One signed column (negative = money out, unless `flip_sign`).
    Signed(Column),
    /// Money in and money out in two columns.
    InOut {
        /// Money in.
        inflow: Column,
        /// Money out (its sign is ignored).
        outflow: Column,
    },
}

/// How to read a bank's CSV export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvMapping {
    /// The booking date (or date and time).
    pub date: Column,
    /// chrono strftime format of the date column.
    pub date_format: String,
    /// The amount column(s).
    pub amount: AmountColumns,
    /// The counterparty.
    pub payee: Column,
    /// Optional category column.
    pub category: Option<Column>,
    /// Optional note column.
    pub note: Option<Column>,
    /// Optional column with the bank's own transaction id (exact dedupe).
    pub external_id: Option<Column>,
    /// Field delimiter (one ASCII character; `,` by default).
    pub delimiter: u8,
    /// Whether the first line is a header.
    pub has_header: bool,
    /// Negate every amount (banks that list spending as positive).
    pub flip_sign: bool,
    /// `,` is the decimal point and `.` the thousands separator.
    pub decimal_comma: bool,
}

/// One data record read with the mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvRow {
    /// The line the record starts on (1-based, header included).
    pub line: u64,
    /// When (see the module docs for dates without a time).
    pub occurred_at: DateTime<Utc>,
    /// Signed amount (negative = money out), decimals not yet checked against the currency.
    pub amount: Decimal,
    /// Counterparty (trimmed).
    pub payee: String,
    /// Category (trimmed; empty when unmapped or blank).
    pub category: String,
    /// Note (trimmed; empty when unmapped or blank).
    pub note: String,
    /// The bank's transaction id (trimmed; none when unmapped or blank).
    pub external_id: Option<String>,
}

/// A record that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRow {
    /// The line the record starts on.
    pub line: u64,
    /// The field at fault (`date`, `amount`, `payee`, `category`, `note`, `external_id`,
    /// `record`).
    pub field: String,
    /// What is wrong, for a person to read.
    pub reason: String,
}

/// The records of a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedCsv {
    /// Records that parsed.
    pub rows: Vec<CsvRow>,
    /// Records that did not.
    pub rejected: Vec<RejectedRow>,
}

/// The mapping with every column resolved to an index.
struct Resolved {
    date: usize,
    amount: (usize, Option<usize>),
    payee: usize,
    category: Option<usize>,
    note: Option<usize>,
    external_id: Option<usize>,
}

fn resolve(
    field: &'static str,
    column: &Column,
    headers: Option<&csv::StringRecord>,
) -> Result<usize, DomainError> {
    match column {
        Column::Index(i) => Ok(*i),
        Column::Name(name) => {
            let headers = headers.ok_or_else(|| {
                DomainError::invalid(field, "a column name needs has_header; give an index")
            })?;
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| {
                    let known: Vec<&str> = headers.iter().collect();
                    DomainError::invalid(
                        field,
                        format!(
                            "no column {name:?} in the header (columns: {})",
                            known.join(", ")
                        ),
                    )
                })
        }
    }
}

/// Reads `text` with `mapping`; dates without a time are 12:00 in `tz`.
pub fn parse(text: &str, mapping: &CsvMapping, tz: Tz) -> Result<ParsedCsv, DomainError> {
    if text.len() > MAX_CSV_BYTES {
        return Err(DomainError::invalid(
            "csv",
            format!("at most {MAX_CSV_BYTES} bytes, got {}", text.len()),
        ));
    }
    if text.trim().is_empty() {
        return Err(DomainError::invalid("csv", "is empty"));
    }
    if !mapping.delimiter.is_ascii() || mapping.delimiter == b'"' || mapping.delimiter == b'\n' {
        return Err(DomainError::invalid(
            "mapping.delimiter",
            "must be one ASCII character other than a quote or a newline",
        ));
    }
    if mapping.date_format.trim().is_empty() {
        return Err(DomainError::invalid(
            "mapping.date_format",
            "is required (a chrono strftime format such as %Y-%m-%d)",
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(mapping.delimiter)
        .has_headers(mapping.has_header)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = if mapping.has_header {
        Some(
            reader
                .headers()
                .map_err(|e| DomainError::invalid("csv", format!("unreadable header: {e}")))?
                .clone(),
        )
    } else {
        None
    };
    let h = headers.as_ref();
    let optional = |field, c: &Option<Column>| c.as_ref().map(|c| resolve(field, c, h)).transpose();
    let columns = Resolved {
        date: resolve("mapping.date", &mapping.date, h)?,
        amount: match &mapping.amount {
            AmountColumns::Signed(c) => (resolve("mapping.amount", c, h)?, None),
            AmountColumns::InOut { inflow, outflow } => (
                resolve("mapping.inflow", inflow, h)?,
                Some(resolve("mapping.outflow", outflow, h)?),
            ),
        },
        payee: resolve("mapping.payee", &mapping.payee, h)?,
        category: optional("mapping.category", &mapping.category)?,
        note: optional("mapping.note", &mapping.note)?,
        external_id: optional("mapping.external_id", &mapping.external_id)?,
    };
    let mut parsed = ParsedCsv::default();
    let mut lines = LineCounter::new(text);
    for (n, record) in reader.records().enumerate() {
        if n >= MAX_CSV_ROWS {
            return Err(DomainError::invalid(
                "csv",
                format!("at most {MAX_CSV_ROWS} rows per import"),
            ));
        }
        let (line, result) = match record {
            Ok(r) => {
                let line = r.position().map_or(0, |p| lines.line_at(p.byte()));
                if r.iter().all(|f| f.trim().is_empty()) {
                    continue; // blank lines are not records
                }
                (line, read_row(&r, line, &columns, mapping, tz))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
                (line, Err(("record", format!("unreadable record: {e}"))))
            }
        };
        match result {
            Ok(row) => parsed.rows.push(row),
            Err((field, reason)) => parsed.rejected.push(RejectedRow {
                line,
                field: field.to_string(),
                reason,
            }),
        }
    }
    Ok(parsed)
}

/// 1-based line numbers of record offsets (the `csv` crate's own count misses blank lines).
/// Offsets must be asked in increasing order; counting is incremental.
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, byte: u64) -> u64 {
        let end = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        if end > self.offset {
            let newlines = self.text[self.offset..end]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.line += newlines as u64;
            self.offset = end;
        }
        // a record's position may be the blank lines before it
        while let Some(b @ (b'\r' | b'\n')) = self.text.get(self.offset) {
            if *b == b'\n' {
                self.line += 1;
            }
            self.offset += 1;
        }
        self.line
    }
}

type RowError = (&'static str, String);

fn read_row(
    record: &csv::StringRecord,
    line: u64,
    columns: &Resolved,
    mapping: &CsvMapping,
    tz: Tz,
) -> Result<CsvRow, RowError> {
    let get = |field: &'static str, i: usize| -> Result<&str, RowError> {
        record.get(i).map(str::trim).ok_or_else(|| {
            (
                field,
                format!("the record has {} columns, no column {i}", record.len()),
            )
        })
    };
    let optional = |field, i: Option<usize>| i.map(|i| get(field, i)).transpose();
    let date = get("date", columns.date)?;
    let occurred_at = parse_time(date, &mapping.date_format, tz).ok_or_else(|| {
        (
            "date",
            format!(
                "{date:?} does not match the date format {:?}",
                mapping.date_format
            ),
        )
    })?;
    let mut amount = match columns.amount {
        (signed, None) => parse_amount(get("amount", signed)?, mapping.decimal_comma)?
            .ok_or_else(|| ("amount", "is empty".to_string()))?,
        (inflow, Some(outflow)) => {
            let inflow = parse_amount(get("amount", inflow)?, mapping.decimal_comma)?
                .filter(|v| !v.is_zero());
            let outflow = parse_amount(get("amount", outflow)?, mapping.decimal_comma)?
                .filter(|v| !v.is_zero());
            match (inflow, outflow) {
                (Some(i), None) => i,
                (None, Some(o)) => -o.abs(),
                (None, None) => return Err(("amount", "inflow and outflow are both empty".into())),
                (Some(_), Some(_)) => {
                    return Err(("amount", "both inflow and outflow hold an amount".into()));
                }
            }
        }
    };
    if mapping.flip_sign {
        amount = -amount;
    }
    Ok(CsvRow {
        line,
        occurred_at,
        amount,
        payee: get("payee", columns.payee)?.to_string(),
        category: optional("category", columns.category)?
            .unwrap_or_default()
            .to_string(),
        note: optional("note", columns.note)?
            .unwrap_or_default()
            .to_string(),
        external_id: optional("external_id", columns.external_id)?
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    })
}

/// A cell's amount (None when blank): `,` thousands separators (or `.` with a decimal comma),
/// a `+` or `-` sign, and parentheses for negatives (`(12.30)`).
fn parse_amount(cell: &str, decimal_comma: bool) -> Result<Option<Decimal>, RowError> {
    if cell.is_empty() {
        return Ok(None);
    }
    let (negated, inner) = match cell.strip_prefix('(').and_then(|c| c.strip_suffix(')')) {
        Some(inner) => (true, inner.trim()),
        None => (false, cell),
    };
    let plain: String = if decimal_comma {
        inner.replace('.', "").replace(',', ".")
    } else {
        inner.replace(',', "")
    };
    let value = parse_decimal("amount", &plain).map_err(|e| match e {
        DomainError::Invalid { reason, .. } => ("amount", format!("{cell:?}: {reason}")),
        other => ("amount", other.to_string()),
    })?;
    Ok(Some(if negated { -value } else { value }))
}

/// `text` read with `format` as a local date-time in `tz` (a date alone: 12:00).
fn parse_time(text: &str, format: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let local = match NaiveDateTime::parse_from_str(text, format) {
        Ok(t) => t,
        Err(_) => NaiveDate::parse_from_str(text, format)
            .ok()?
            .and_time(NaiveTime::from_hms_opt(12, 0, 0)?),
    };
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
        // a wall time inside a DST gap: read it as the same wall time an hour later
        LocalResult::None => tz
            .from_local_datetime(&(local + chrono::Duration::hours(1)))
            .earliest()
            .map(|t| t.with_timezone(&Utc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping() -> CsvMapping {
        CsvMapping {
            date: Column::Name("Date".into()),
            date_format: "%Y-%m-%d".into(),
            amount: AmountColumns::Signed(Column::Name("Amount".into())),
            payee: Column::Name("Payee".into()),
            category: None,
            note: None,
            external_id: Some(Column::Name("Id".into())),
            delimiter: b',',
            has_header: true,
            flip_sign: false,
            decimal_comma: false,
        }
    }

    fn noon(y: i32, m: u32, d: u32, tz: Tz) -> DateTime<Utc> {
        tz.with_ymd_and_hms(y, m, d, 12, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_signed_amount_column_with_header_names() {
        let text = "Date,Payee,Amount,Id\n2026-03-02,Coffee Bar,-3.50,a1\n2026-03-03,Salary,\"2,500.00\",\n";
        let parsed = parse(text, &mapping(), Tz::UTC).unwrap();
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        assert_eq!(parsed.rows.len(), 2);
        let r = &parsed.rows[0];
        assert_eq!(r.line, 2);
        assert_eq!(r.amount.to_string(), "-3.50");
        assert_eq!(r.payee, "Coffee Bar");
        assert_eq!(r.external_id.as_deref(), Some("a1"));
        assert_eq!(r.occurred_at, noon(2026, 3, 2, Tz::UTC));
        assert_eq!(parsed.rows[1].amount.to_string(), "2500.00");
        assert_eq!(parsed.rows[1].external_id, None, "a blank id is none");
    }

    #[test]
    fn inflow_and_outflow_columns_by_index_without_header() {
        let m = CsvMapping {
            date: Column::Index(0),
            date_format: "%d/%m/%Y".into(),
            amount: AmountColumns::InOut {
                inflow: Column::Index(2),
                outflow: Column::Index(3),
            },
            payee: Column::Index(1),
            category: Some(Column::Index(4)),
            external_id: None,
            has_header: false,
            delimiter: b';',
            ..mapping()
        };
        let text = "02/03/2026;Rent;;950,00;housing\n05/03/2026;Refund;12,5;;shopping\n06/03/2026;Odd;1;2;x\n07/03/2026;Nothing;;;x\n";
        let m = CsvMapping {
            decimal_comma: false,
            ..m
        };
        let parsed = parse(text, &m, Tz::Europe__Paris).unwrap();
        // "950,00" without decimal_comma reads as 95000: the mapping says how to read it
        assert_eq!(parsed.rows[0].amount.to_string(), "-95000");
        let parsed = parse(
            text,
            &CsvMapping {
                decimal_comma: true,
                ..m
            },
            Tz::Europe__Paris,
        )
        .unwrap();
        assert_eq!(parsed.rows.len(), 2);
        assert_eq!(
            parsed.rows[0].amount.to_string(),
            "-950.00",
            "outflow is money out"
        );
        assert_eq!(parsed.rows[0].category, "housing");
        assert_eq!(
            parsed.rows[0].occurred_at,
            noon(2026, 3, 2, Tz::Europe__Paris)
        );
        assert_eq!(parsed.rows[1].amount.to_string(), "12.5");
        let lines: Vec<(u64, &str)> = parsed
            .rejected
            .iter()
            .map(|r| (r.line, r.field.as_str()))
            .collect();
        assert_eq!(lines, [(3, "amount"), (4, "amount")]);
    }

    #[test]
    fn sign_flip_negates_every_amount() {
        let text = "Date,Payee,Amount,Id\n2026-03-02,Coffee,3.50,a\n2026-03-02,Refund,(1.00),b\n";
        let m = CsvMapping {
            flip_sign: true,
            ..mapping()
        };
        let parsed = parse(text, &m, Tz::UTC).unwrap();
        let amounts: Vec<String> = parsed.rows.iter().map(|r| r.amount.to_string()).collect();
        assert_eq!(amounts, ["-3.50", "1.00"]);
    }

    #[test]
    fn date_formats_with_and_without_time() {
        let text = "Date,Payee,Amount,Id\n2026-03-02 08:15,Coffee,-3,a\n";
        let m = CsvMapping {
            date_format: "%Y-%m-%d %H:%M".into(),
            ..mapping()
        };
        let parsed = parse(text, &m, Tz::America__New_York).unwrap();
        let expected = Tz::America__New_York
            .with_ymd_and_hms(2026, 3, 2, 8, 15, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(parsed.rows[0].occurred_at, expected);
        let us = CsvMapping {
            date_format: "%m/%d/%Y".into(),
            ..mapping()
        };
        let parsed = parse("Date,Payee,Amount,Id\n03/02/2026,X,-1,a\n", &us, Tz::UTC).unwrap();
        assert_eq!(parsed.rows[0].occurred_at, noon(2026, 3, 2, Tz::UTC));
    }

    #[test]
    fn bad_rows_are_rejected_with_their_line_and_field() {
        let text = "Date,Payee,Amount,Id\n2026-03-02,Coffee,-3.50,a\n\n2026-13-40,Bad date,-1,b\n2026-03-04,Bad amount,abc,c\n2026-03-05,Short\n";
        let parsed = parse(text, &mapping(), Tz::UTC).unwrap();
        assert_eq!(parsed.rows.len(), 1);
        let rejected: Vec<(u64, &str)> = parsed
            .rejected
            .iter()
            .map(|r| (r.line, r.field.as_str()))
            .collect();
        assert_eq!(rejected, [(4, "date"), (5, "amount"), (6, "amount")]);
        assert!(
            parsed.rejected[0].reason.contains("2026-13-40"),
            "{:?}",
            parsed.rejected[0]
        );
    }

    #[test]
    fn file_level_problems_name_the_mapping_field() {
        let text = "Date,Payee,Amount\n2026-03-02,Coffee,-3.50\n";
        let field = |e: DomainError| match e {
            DomainError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(parse(text, &mapping(), Tz::UTC).unwrap_err()),
            "mapping.external_id"
        );
        let no_header = CsvMapping {
            has_header: false,
            ..mapping()
        };
        assert_eq!(
            field(parse(text, &no_header, Tz::UTC).unwrap_err()),
            "mapping.date"
        );
        assert_eq!(field(parse("", &mapping(), Tz::UTC).unwrap_err()), "csv");
        let big = "x".repeat(MAX_CSV_BYTES + 1);
        assert_eq!(field(parse(&big, &mapping(), Tz::UTC).unwrap_err()), "csv");
        let bad_delimiter = CsvMapping {
            delimiter: b'"',
            ..mapping()
        };
        assert_eq!(
            field(parse(text, &bad_delimiter, Tz::UTC).unwrap_err()),
            "mapping.delimiter"
        );
    }

    #[test]
    fn too_many_rows_is_one_error() {
        let mut text = String::from("Date,Payee,Amount,Id\n");
        for i in 0..=MAX_CSV_ROWS {
            text.push_str(&format!("2026-03-02,P,-1,{i}\n"));
        }
        let err = parse(&text, &mapping(), Tz::UTC).unwrap_err();
        assert!(err.to_string().contains("50000 rows"), "{err}");
    }
}
