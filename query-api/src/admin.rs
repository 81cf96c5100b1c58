//! `lifeos.v1.Admin`: projection status and rebuilds, for tokens with the `admin` role.

use api_common::Caller;
use api_common::auth::ADMIN;
use api_common::time::to_timestamp;
use projections::status::ProjectionReport;
use projections::{ProjectionError, ReadModels};
use proto::v1::admin_server::Admin;
use proto::v1::{
    ProjectionInfo, ProjectionStatusRequest, ProjectionStatusResponse, RebuildProjectionRequest,
    RebuildProjectionResponse,
};
use tonic::{Request, Response, Status};

/// The Admin service.
#[derive(Clone)]
pub struct AdminService {
    models: ReadModels,
}

impl AdminService {
    /// Operates the projections stored in `models`.
    pub fn new(models: ReadModels) -> Self {
        Self { models }
    }
}

fn internal(err: ProjectionError) -> Status {
    match err {
        ProjectionError::Store(e) => api_common::status::store_status(&e),
        other => Status::internal(other.to_string()),
    }
}

fn unknown(name: &str) -> Status {
    let known: Vec<&str> = projections::all().iter().map(|p| p.name()).collect();
    Status::not_found(format!(
        "no projection {name:?}; known: {}",
        known.join(", ")
    ))
}

/// The wire form of a report.
pub fn to_proto(r: ProjectionReport) -> ProjectionInfo {
    ProjectionInfo {
        name: r.name,
        version: r.version,
        active_model: r.active_model,
        checkpoint: r.checkpoint.to_string(),
        head: r.head.to_string(),
        lag_events: r.lag_events,
        lag_seconds: r.lag_seconds,
        state: serde_json::to_value(r.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        rebuild_percent: r.rebuild_percent.unwrap_or(0.0),
        error_json: r.error.map(|e| e.to_string()).unwrap_or_default(),
        events_per_sec: r.events_per_sec,
        updated_at: r.updated_at.map(to_timestamp),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn projection_status(
        &self,
        request: Request<ProjectionStatusRequest>,
    ) -> Result<Response<ProjectionStatusResponse>, Status> {
        Caller::of(&request)?.require_role(ADMIN)?;
        let name = request.into_inner().name;
        let selected: Vec<_> = projections::all()
            .into_iter()
            .filter(|p| name.is_empty() || p.name() == name)
            .collect();
        if selected.is_empty() {
            return Err(unknown(&name));
        }
        let mut infos = Vec::with_capacity(selected.len());
        for projection in selected {
            let report = self
                .models
                .report(projection.as_ref())
                .await
                .map_err(internal)?;
            infos.push(to_proto(report));
        }
        Ok(Response::new(ProjectionStatusResponse {
            projections: infos,
        }))
    }

    async fn rebuild_projection(
        &self,
        request: Request<RebuildProjectionRequest>,
    ) -> Result<Response<RebuildProjectionResponse>, Status> {
        Caller::of(&request)?.require_role(ADMIN)?;
        let name = request.into_inner().name;
        let projection = projections::by_name(&name).ok_or_else(|| unknown(&name))?;
        let active_model = self
            .models
            .active_model(projection.as_ref())
            .await
            .map_err(internal)?;
        self.models
            .request_rebuild(projection.as_ref())
            .await
            .map_err(internal)?;
        Ok(Response::new(RebuildProjectionResponse { active_model }))
    }
}
