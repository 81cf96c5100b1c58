//! Publishing to NATS JetStream: one stream for all events, deduplicated by event id.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::context::{Context, ContextBuilder, PublishAckFuture};
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::{HeaderMap, header};
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::cloudevent::CONTENT_TYPE;
use crate::routing::{SUBJECT_PREFIX, is_valid_subject};
use crate::{BusError, CloudEvent, Publisher};

/// The stream and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// The stream name (default `LIFEOS_EVENTS`).
    pub stream: String,
    /// The subject prefix (default `lifeos.events`): events go to
    /// `<prefix>.<pillar>.<action>`, the stream captures `<prefix>.>`.
    pub subject_prefix: String,
    /// How long the stream keeps messages (default 30 days; the log, not NATS, keeps history).
    pub max_age: Duration,
    /// How long JetStream remembers message ids to drop repeats (default 2 minutes): a relay that
    /// restarts within this window re-publishes without duplicates.
    pub duplicate_window: Duration,
    /// How long to wait for each acknowledgement (and stream request) before the batch counts
    /// as failed (default 5 s).
    pub ack_timeout: Duration,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        Self {
            stream: "LIFEOS_EVENTS".to_string(),
            subject_prefix: SUBJECT_PREFIX.to_string(),
            max_age: Duration::from_secs(30 * 24 * 60 * 60),
            duplicate_window: Duration::from_secs(120),
            ack_timeout: Duration::from_secs(5),
        }
    }
}

impl JetStreamConfig {
    /// The subjects the stream captures: `<prefix>.>`.
    pub fn subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// Checks the stream name and subject prefix.
    pub fn validate(&self) -> Result<(), BusError> {
        let name_ok = !self.stream.is_empty()
            && self
                .stream
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '.' | '*' | '>' | '/' | '\\'));
        if !name_ok {
            return Err(BusError::Config(format!(
                "stream name {:?}: use letters, digits, `-` or `_`",
                self.stream
            )));
        }
        if !is_valid_subject(&self.subject_prefix) {
            return Err(BusError::Config(format!(
                "subject prefix {:?} is not a NATS subject (tokens separated by `.`, no wildcards)",
                self.subject_prefix
            )));
        }
        if self.duplicate_window.is_zero() || self.duplicate_window > self.max_age {
            return Err(BusError::Config(format!(
                "duplicate window {:?} must be positive and at most max age {:?}",
                self.duplicate_window, self.max_age
            )));
        }
        Ok(())
    }

    fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            name: self.stream.clone(),
            description: Some("LifeOS events (CloudEvents 1.0), published from the log".into()),
            subjects: vec![self.subjects()],
            storage: StorageType::File,
            max_age: self.max_age,
            duplicate_window: self.duplicate_window,
            ..Default::default()
        }
    }
}

/// Publishes events to a JetStream stream, pipelined: a batch's publishes are all sent, then
/// their acknowledgements awaited in order.
///
/// Each message carries `Nats-Msg-Id` = event id (JetStream drops a repeat within the duplicate
/// window) and `Content-Type: application/cloudevents+json`. The stream is created or updated on
/// the first publish (and again after a failure), so the publisher can be built while NATS is
/// down.
pub struct JetStreamPublisher {
    name: String,
    config: JetStreamConfig,
    context: Context,
    stream_ready: AtomicBool,
    duplicates: AtomicU64,
}

impl std::fmt::Debug for JetStreamPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamPublisher")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl JetStreamPublisher {
    /// A publisher on an existing NATS connection. Does no I/O: the stream is ensured on the
    /// first publish (or by [`ensure_stream`](Self::ensure_stream)).
    pub fn new(client: async_nats::Client, config: JetStreamConfig) -> Result<Self, BusError> {
        config.validate()?;
        let context = ContextBuilder::new()
            .timeout(config.ack_timeout)
            .build(client);
        Ok(Self {
            name: format!("jetstream:{}", config.stream),
            config,
            context,
            stream_ready: AtomicBool::new(false),
            duplicates: AtomicU64::new(0),
        })
    }

    /// Connects to `url` (reconnecting for ever in the background, also when the server is down
    /// at start) and builds a publisher on that connection.
    pub async fn connect(url: &str, config: JetStreamConfig) -> Result<Self, BusError> {
        config.validate()?;
        let client = async_nats::ConnectOptions::new()
            .name("lifeos-relay")
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| BusError::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Self::new(client, config)
    }

    /// Creates the stream, or updates its limits when it exists.
    pub async fn ensure_stream(&self) -> Result<(), BusError> {
        self.context
            .create_or_update_stream(self.config.stream_config())
            .await
            .map_err(|e| BusError::Stream {
                stream: self.config.stream.clone(),
                reason: e.to_string(),
            })?;
        self.stream_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The stream configuration.
    pub fn config(&self) -> &JetStreamConfig {
        &self.config
    }

    /// The JetStream context (to read the stream, or build consumers).
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// How many publishes JetStream acknowledged as duplicates (repeats after a crash or retry,
    /// dropped by the stream) since this publisher was built.
    pub fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    async fn publish_batch(&self, batch: &[CloudEvent]) -> Result<(), BusError> {
        if !self.stream_ready.load(Ordering::Acquire) {
            self.ensure_stream().await?;
        }
        let mut pending: Vec<(&CloudEvent, String, PublishAckFuture)> =
            Vec::with_capacity(batch.len());
        for event in batch {
            let subject = event.nats_subject(&self.config.subject_prefix);
            let body = event.to_json()?;
            let mut headers = HeaderMap::new();
            headers.insert(header::NATS_MESSAGE_ID, event.id.to_string());
            headers.insert("Content-Type", CONTENT_TYPE);
            let ack = self
                .context
                .publish_with_headers(subject.clone(), headers, body.into())
                .await
                .map_err(|e| publish_error(event, &subject, e))?;
            pending.push((event, subject, ack));
        }
        for (event, subject, ack) in pending {
            let ack = ack.await.map_err(|e| publish_error(event, &subject, e))?;
            if ack.stream != self.config.stream {
                return Err(BusError::Publish {
                    event_id: event.id,
                    subject,
                    reason: format!(
                        "stored by stream {} instead of {}: another stream captures these subjects",
                        ack.stream, self.config.stream
                    ),
                });
            }
            if ack.duplicate {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

fn publish_error(event: &CloudEvent, subject: &str, err: impl std::fmt::Display) -> BusError {
    BusError::Publish {
        event_id: event.id,
        subject: subject.to_string(),
        reason: err.to_string(),
    }
}

impl Publisher for JetStreamPublisher {
    /// `jetstream:<stream>`.
    fn name(&self) -> &str {
        &self.name
    }

    fn publish<'a>(&'a self, batch: &'a [CloudEvent]) -> BoxFuture<'a, Result<(), BusError>> {
        async move {
            let result = self.publish_batch(batch).await;
            if result.is_err() {
                // The stream may have been deleted, or NATS restarted without it: check again
                // before the retry.
                self.stream_ready.store(false, Ordering::Release);
            }
            result
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_guide() {
        let config = JetStreamConfig::default();
        assert_eq!(config.stream, "LIFEOS_EVENTS");
        assert_eq!(config.subjects(), "lifeos.events.>");
        assert_eq!(config.max_age, Duration::from_secs(2_592_000));
        assert_eq!(config.duplicate_window, Duration::from_secs(120));
        config.validate().expect("defaults are valid");
        let stream = config.stream_config();
        assert_eq!(stream.storage, StorageType::File);
        assert_eq!(stream.subjects, vec!["lifeos.events.>".to_string()]);
    }

    #[test]
    fn bad_names_and_prefixes_are_refused() {
        for (stream, prefix) in [
            ("A.B", "lifeos.events"),
            ("", "lifeos.events"),
            ("A B", "lifeos.events"),
            ("OK", "lifeos.>"),
            ("OK", "lifeos..events"),
            ("OK", ""),
        ] {
            let config = JetStreamConfig {
                stream: stream.into(),
                subject_prefix: prefix.into(),
                ..Default::default()
            };
            assert!(
                matches!(config.validate(), Err(BusError::Config(_))),
                "{stream:?} / {prefix:?} should be refused"
            );
        }
    }
}
