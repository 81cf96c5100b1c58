//! The bounded wait behind `consistency_token`, shared by every query service.

use std::time::Duration;

use api_common::parse_consistency_token;
use projections::Freshness;
use tonic::Status;

/// Waits until a read model has caught up with a client's consistency token.
#[derive(Clone)]
pub struct ReadYourWrites {
    freshness: Freshness,
    limit: Duration,
}

impl ReadYourWrites {
    /// Waits on `freshness` for at most `limit` per query.
    pub fn new(freshness: Freshness, limit: Duration) -> Self {
        Self { freshness, limit }
    }

    /// Returns once the model includes `token` (immediately for an empty token);
    /// UNAVAILABLE when it did not catch up within the limit.
    pub async fn wait(&self, token: &str) -> Result<(), Status> {
        let Some(target) = parse_consistency_token(token)? else {
            return Ok(());
        };
        let caught_up = self
            .freshness
            .wait_for(target, self.limit)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot read a projection checkpoint");
                Status::unavailable("read model unavailable")
            })?;
        if caught_up {
            Ok(())
        } else {
            Err(Status::unavailable(format!(
                "read model has not caught up with consistency_token {token} within {} ms; retry",
                self.limit.as_millis()
            )))
        }
    }
}
