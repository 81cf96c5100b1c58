//! Request fields every query service reads the same way: days, page cursors, the steps of a
//! daily rollup, and read-model errors as statuses.

use std::future::Future;

use api_common::{Caller, invalid_argument};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDate;
use projections::daily::{MAX_DAYS, UserClock, parse_day};
use projections::{ProjectionError, RowCursor};
use tonic::{Request, Status};

use crate::ReadYourWrites;

/// A read-model failure as a status (store down → UNAVAILABLE; anything else is logged and
/// INTERNAL).
pub fn read_error(err: ProjectionError) -> Status {
    match err {
        ProjectionError::Store(e) => api_common::status::store_status(&e),
        other => {
            tracing::error!(error = %other, "read model error");
            Status::internal("internal error")
        }
    }
}

/// The `next_page_token` of a listing that stopped after `c`.
pub fn encode_cursor(c: &RowCursor) -> String {
    let json = serde_json::json!([c.sort_key, c.row_id]).to_string();
    URL_SAFE_NO_PAD.encode(json)
}

/// The cursor in a `page_token` of `listing` (None when empty).
pub fn decode_cursor(token: &str, listing: &str) -> Result<Option<RowCursor>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        invalid_argument(
            "page_token",
            format!("is not a next_page_token of {listing}"),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let (sort_key, row_id): (String, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok(Some(RowCursor { sort_key, row_id }))
}

/// A size field (`page_size`, `limit`): `value`, or `default` when 0; INVALID_ARGUMENT on
/// `field` above `max`.
pub fn bounded(field: &str, value: u32, default: u32, max: u32) -> Result<usize, Status> {
    match value {
        0 => Ok(default as usize),
        n if n > max => Err(invalid_argument(field, format!("must be at most {max}"))),
        n => Ok(n as usize),
    }
}

/// An optional `YYYY-MM-DD` day field (None when empty).
pub fn optional_day(field: &str, value: &str) -> Result<Option<NaiveDate>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    parse_day(value).map(Some).ok_or_else(|| {
        invalid_argument(field, format!("must be a day as YYYY-MM-DD, got {value:?}"))
    })
}

/// A required `YYYY-MM-DD` day field.
pub fn day_field(field: &str, value: &str) -> Result<NaiveDate, Status> {
    optional_day(field, value)?
        .ok_or_else(|| invalid_argument(field, "is required (a day as YYYY-MM-DD)"))
}

/// The checked `[from_day, to_day]` of a rollup request (at most `MAX_DAYS` days).
pub fn day_range(from_day: &str, to_day: &str) -> Result<(NaiveDate, NaiveDate), Status> {
    let from = day_field("from_day", from_day)?;
    let to = day_field("to_day", to_day)?;
    if to < from {
        return Err(invalid_argument("to_day", "must not be before from_day"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(invalid_argument(
            "to_day",
            format!("a rollup spans at most {MAX_DAYS} days"),
        ));
    }
    Ok((from, to))
}

/// A daily rollup request of any pillar: a day range and a consistency token.
pub trait RollupRequest {
    /// Its `from_day` and `to_day` fields (`YYYY-MM-DD`, both included).
    fn day_fields(&self) -> (&str, &str);
    /// The consistency token to wait for (empty: none).
    fn consistency_token(&self) -> &str;
}

/// Implements [`RollupRequest`] for proto messages with `from_day`, `to_day` and
/// `consistency_token` fields.
macro_rules! rollup_requests {
    ($($request:ty),+ $(,)?) => {$(
        impl RollupRequest for $request {
            fn day_fields(&self) -> (&str, &str) {
                (&self.from_day, &self.to_day)
            }
            fn consistency_token(&self) -> &str {
                &self.consistency_token
            }
        }
    )+};
}

rollup_requests!(
    proto::v1::GetDailyRollupRequest,
    proto::v1::GetFinanceDailyRollupRequest,
    proto::v1::GetHabitDailyRollupRequest,
    proto::v1::GetHealthDailyRollupRequest,
    proto::v1::GetJournalDailyRollupRequest,
    proto::v1::GetTaskDailyRollupRequest,
);

/// The first steps of every daily rollup: the caller, the checked [`day_range`], then the wait
/// until `consistency` has caught up with the request's token.
pub async fn rollup_range(
    request: &Request<impl RollupRequest>,
    consistency: &ReadYourWrites,
) -> Result<(Caller, NaiveDate, NaiveDate), Status> {
    let caller = Caller::of(request)?;
    let r = request.get_ref();
    let (from_day, to_day) = r.day_fields();
    let (from, to) = day_range(from_day, to_day)?;
    consistency.wait(r.consistency_token()).await?;
    Ok((caller, from, to))
}

/// A rollup's user clock, then its days (e.g. `FocusDaily::clock(..)`, `FocusDaily::days(..)`),
/// read-model errors as statuses.
pub async fn clock_and_days<D>(
    clock: impl Future<Output = Result<UserClock, ProjectionError>>,
    days: impl Future<Output = Result<Vec<D>, ProjectionError>>,
) -> Result<(UserClock, Vec<D>), Status> {
    let clock = clock.await.map_err(read_error)?;
    let days = days.await.map_err(read_error)?;
    Ok((clock, days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_fields_are_named() {
        for (value, needle) in [
            ("", "required"),
            ("2026-3-8", "YYYY-MM-DD"),
            ("soon", "soon"),
        ] {
            let status = day_field("from_day", value).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(status.message().contains("from_day"), "{status:?}");
            assert!(status.message().contains(needle), "{status:?}");
        }
        assert_eq!(
            day_field("to_day", "2026-03-08").unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 8).unwrap()
        );
    }

    #[test]
    fn cursors_round_trip() {
        let c = RowCursor {
            sort_key: "2026-03-08T06:59:00.000000Z".into(),
            row_id: "x".into(),
        };
        assert_eq!(
            decode_cursor(&encode_cursor(&c), "ListSessions").unwrap(),
            Some(c)
        );
        assert!(decode_cursor("!!", "ListSessions").is_err());
    }

    #[test]
    fn rollup_days_are_checked_and_named() {
        for (from, to, field, needle) in [
            ("", "2026-03-08", "from_day", "required"),
            ("2026-3-8", "2026-03-08", "from_day", "YYYY-MM-DD"),
            ("2026-03-08", "", "to_day", "required"),
            ("2026-03-08", "2026-02-30", "to_day", "2026-02-30"),
            ("2026-03-08", "2026-03-07", "to_day", "before"),
            ("2026-01-01", "2027-01-02", "to_day", "366"),
        ] {
            let status = day_range(from, to).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{from}..{to}");
            assert!(status.message().contains(field), "{status:?}");
            assert!(status.message().contains(needle), "{status:?}");
        }
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
        assert_eq!(
            day_range("2026-03-08", "2026-03-08").unwrap(),
            (day(3, 8), day(3, 8))
        );
        // 366 days, both ends included
        assert_eq!(
            day_range("2026-01-01", "2026-12-31").unwrap().1,
            day(12, 31)
        );
        assert!(day_range("2025-12-31", "2026-12-31").is_ok());
    }

    #[test]
    fn day_field_is_optional_and_named() {
        assert_eq!(optional_day("day", "").unwrap(), None);
        assert_eq!(
            optional_day("day", "2026-03-08").unwrap(),
            NaiveDate::from_ymd_opt(2026, 3, 8)
        );
        let status = optional_day("day", "tomorrow").unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("day"), "{status:?}");
    }
}
