//! `health_samples`: each user's live health samples, newest first — the history a client pages
//! through, and where it finds the sample (and source) to delete.
//!
//! One row per live sample: group [`SAMPLE`], row id = sample id, sort key =
//! [`newest_first_key`] of the sample's time ([`Measurement::time`]: the wake-up for sleep, the
//! window end for steps, the start of a workout), so an ascending listing is newest first.
//! A deleted sample's row is removed. The document's top-level `metric` lets a listing filter
//! by metric in the database ([`DocFilter`]).

use aggregates::health::{HealthEvent, HealthLog, Measurement, Metric};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use store::LoggedEvent;
use uuid::Uuid;

use crate::{
    DocFilter, Projection, ProjectionError, Row, RowCursor, RowKey, RowReader, RowSet,
    payload_field,
};

/// Row group of the samples.
pub const SAMPLE: &str = "sample";

/// One sample as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleView {
    /// Its id.
    pub sample_id: Uuid,
    /// The source token (`manual`, `import:<name>`).
    pub source: String,
    /// The source's id of it.
    pub external_id: Option<String>,
    /// Its metric (also inside `measurement`; top-level for filters).
    pub metric: Metric,
    /// The instant it is attributed to.
    pub time: DateTime<Utc>,
    /// When it was recorded.
    pub logged_at: DateTime<Utc>,
    /// What was measured (canonical units).
    pub measurement: Measurement,
}

/// A sort key that lists later instants first: `i64::MAX − microseconds since the epoch`,
/// zero-padded to 20 digits.
///
/// ```
/// use chrono::{Duration, Utc};
/// use projections::health_samples::newest_first_key;
/// let now = Utc::now();
/// assert!(newest_first_key(now) < newest_first_key(now - Duration::microseconds(1)));
/// ```
pub fn newest_first_key(at: DateTime<Utc>) -> String {
    let inverted = i128::from(i64::MAX) - i128::from(at.timestamp_micros());
    format!("{inverted:020}")
}

/// The `health_samples` projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct HealthSamples;

impl HealthSamples {
    /// A page of `user_id`'s samples (of `metric` only, when given), newest first, after
    /// `cursor`. Returns the page and the cursor of the next one.
    pub async fn list(
        rows: &impl RowReader,
        user_id: Uuid,
        metric: Option<Metric>,
        cursor: Option<&RowCursor>,
        page_size: usize,
    ) -> Result<(Vec<SampleView>, Option<RowCursor>), ProjectionError> {
        let filters: Vec<DocFilter> = metric
            .map(|m| DocFilter::eq("metric", m.as_str()))
            .into_iter()
            .collect();
        let page = rows
            .list_rows_filtered(
                &HealthSamples,
                user_id,
                &[SAMPLE],
                &filters,
                cursor,
                page_size + 1,
            )
            .await?;
        RowCursor::page(page, page_size)
    }
}

/// The sample id of a health event's payload.
fn sample_id_of(payload: &serde_json::Value) -> Option<Uuid> {
    payload_field(payload, "sample_id")
}

impl Projection for HealthSamples {
    fn name(&self) -> &'static str {
        "health_samples"
    }

    fn version(&self) -> u32 {
        1
    }

    fn reads(&self) -> &'static [&'static str] {
        &[HealthLog::TYPE]
    }

    fn keys(&self, event: &LoggedEvent) -> Vec<RowKey> {
        match (
            event.aggregate_type.as_str(),
            event.user_id,
            sample_id_of(&event.payload),
        ) {
            (HealthLog::TYPE, Some(user), Some(sample)) => {
                vec![RowKey::new(user, sample.to_string())]
            }
            _ => Vec::new(),
        }
    }

    fn apply(&self, event: &LoggedEvent, rows: &mut RowSet) -> Result<(), ProjectionError> {
        if event.aggregate_type != HealthLog::TYPE {
            return Ok(()); // the runner applies every event; other pillars' are not ours
        }
        let model = self.model();
        let poison = |reason: String| ProjectionError::poison(&model, event, reason);
        let user = event
            .user_id
            .ok_or_else(|| poison("health event without a user id".to_string()))?;
        let payload: HealthEvent =
            crate::decode_payload(event).map_err(|e| poison(e.to_string()))?;
        let key = RowKey::new(user, payload.sample_id().to_string());
        match payload {
            HealthEvent::HealthSampleLogged {
                sample_id,
                source,
                external_id,
                measurement,
                logged_at,
                ..
            } => {
                let view = SampleView {
                    sample_id,
                    source,
                    external_id,
                    metric: measurement.metric(),
                    time: measurement.time(),
                    logged_at,
                    measurement,
                };
                rows.put(Row::new(key, SAMPLE, newest_first_key(view.time), &view)?);
            }
            HealthEvent::HealthSampleDeleted { .. } => rows.delete(&key),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryRows;
    use chrono::{Duration, TimeZone};
    use cqrs_es::DomainEvent;
    use store::Position;

    const USER: Uuid = Uuid::from_u128(0xa11ce);

    fn event(pos: i64, e: HealthEvent) -> LoggedEvent {
        LoggedEvent {
            position: Position { tx: 0, pos },
            event_id: Uuid::now_v7(),
            user_id: Some(USER),
            recorded_at: Utc::now(),
            aggregate_type: HealthLog::TYPE.to_string(),
            aggregate_id: format!("{USER}:manual"),
            sequence: pos,
            event_type: e.event_type(),
            event_version: e.event_version(),
            payload: serde_json::to_value(e).unwrap(),
            metadata: serde_json::json!({}),
        }
    }

    #[tokio::test]
    async fn newest_first_by_metric_and_deleted_ones_gone() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 8, 0, 0).unwrap();
        let mut rows = RowSet::default();
        let mut pos = 0;
        let mut apply = |rows: &mut RowSet, e: HealthEvent| {
            pos += 1;
            let e = event(pos, e);
            assert_eq!(HealthSamples.keys(&e).len(), 1);
            HealthSamples.apply(&e, rows).unwrap();
        };
        let logged = |n: u128, measurement: Measurement| HealthEvent::HealthSampleLogged {
            sample_id: Uuid::from_u128(n),
            user_id: USER,
            source: "manual".into(),
            external_id: None,
            measurement,
            logged_at: t0,
        };
        for n in 1..=4u128 {
            let at = t0 + Duration::hours(n as i64);
            apply(&mut rows, logged(n, Measurement::Mood { score: 5, at }));
        }
        apply(
            &mut rows,
            logged(
                9,
                Measurement::Exercise {
                    minutes: 20,
                    at: t0,
                },
            ),
        );
        apply(
            &mut rows,
            HealthEvent::HealthSampleDeleted {
                sample_id: Uuid::from_u128(3),
                user_id: USER,
                source: "manual".into(),
                external_id: None,
                metric: Metric::Mood,
                time: t0 + Duration::hours(3),
                deleted_at: t0,
            },
        );
        let rows = MemoryRows::from_set(rows);
        let ids = |page: &[SampleView]| -> Vec<u128> {
            page.iter().map(|s| s.sample_id.as_u128()).collect()
        };
        let (page, next) = HealthSamples::list(&rows, USER, None, None, 10)
            .await
            .unwrap();
        assert_eq!(
            ids(&page),
            [4, 2, 1, 9],
            "newest first, the deleted one gone"
        );
        assert!(next.is_none());
        let (page, next) = HealthSamples::list(&rows, USER, Some(Metric::Mood), None, 2)
            .await
            .unwrap();
        assert_eq!(ids(&page), [4, 2]);
        let (page, next) = HealthSamples::list(&rows, USER, Some(Metric::Mood), next.as_ref(), 2)
            .await
            .unwrap();
        assert_eq!(ids(&page), [1]);
        assert!(next.is_none());
        let (page, _) = HealthSamples::list(&rows, Uuid::nil(), None, None, 10)
            .await
            .unwrap();
        assert!(page.is_empty(), "another user sees nothing");
    }
}
