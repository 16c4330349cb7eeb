//! `opsgate.v1.AuditService`: the hash chains of the event log checked, and the log exported
//! with its hashes (SMO and auditors).

use opsgate_proto::v1 as pb;
use opsgate_proto::v1::audit_service_server::AuditService;
use tonic::{Request, Response, Status};

use super::{Api, transition_id};
use crate::convert;
use crate::error::{invalid_argument, status};

/// Default page of `ExportEvents`.
const DEFAULT_EXPORT_PAGE: u32 = 1000;
/// Most bytes of events one page carries (responses are at most 4 MiB).
const MAX_EXPORT_BYTES: usize = 3 * 1024 * 1024;

#[tonic::async_trait]
impl AuditService for Api {
    async fn list_stalled(
        &self,
        request: Request<pb::ListStalledRequest>,
    ) -> Result<Response<pb::ListStalledResponse>, Status> {
        self.list_stalled_rpc(request).await
    }

    async fn get_forecast(
        &self,
        request: Request<pb::GetForecastRequest>,
    ) -> Result<Response<pb::GetForecastResponse>, Status> {
        self.get_forecast_rpc(request).await
    }

    async fn get_kpis(
        &self,
        request: Request<pb::GetKpisRequest>,
    ) -> Result<Response<pb::GetKpisResponse>, Status> {
        self.get_kpis_rpc(request).await
    }

    async fn verify_log(
        &self,
        request: Request<pb::VerifyLogRequest>,
    ) -> Result<Response<pb::VerifyLogResponse>, Status> {
        self.auth
            .authorize(&request, "opsgate.v1.AuditService/VerifyLog")
            .await?;
        let req = request.into_inner();
        let only = match req.transition_id.trim() {
            "" => None,
            id => Some(transition_id("transition_id", id)?),
        };
        let report = self.store.verify_chains(only).await.map_err(status)?;
        if !report.breaks.is_empty() {
            tracing::warn!(
                broken = report.breaks.len(),
                "the event log's hash chain is broken"
            );
        }
        Ok(Response::new(pb::VerifyLogResponse {
            transitions_checked: report.transitions,
            events_checked: report.events,
            breaks: report
                .breaks
                .into_iter()
                .map(|b| pb::ChainBreak {
                    transition_id: b.transition_id,
                    seq: b.seq,
                    kind: b.kind.as_str().to_owned(),
                    message: b.message,
                })
                .collect(),
        }))
    }

    async fn export_events(
        &self,
        request: Request<pb::ExportEventsRequest>,
    ) -> Result<Response<pb::ExportEventsResponse>, Status> {
        self.auth
            .authorize(&request, "opsgate.v1.AuditService/ExportEvents")
            .await?;
        let req = request.into_inner();
        let only = match req.transition_id.trim() {
            "" => None,
            id => Some(transition_id("transition_id", id)?),
        };
        if req.page_size > opsgate_store::MAX_EXPORT_PAGE {
            return Err(invalid_argument(
                "page_size",
                format!(
                    "{} is above the limit of {}",
                    req.page_size,
                    opsgate_store::MAX_EXPORT_PAGE
                ),
            ));
        }
        let size = if req.page_size == 0 {
            DEFAULT_EXPORT_PAGE
        } else {
            req.page_size
        };
        let after = match req.page_token.trim() {
            "" => 0,
            token => token
                .parse::<i64>()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| {
                    invalid_argument(
                        "page_token",
                        "is not a token this server gave out: pass a previous response's \
                     next_page_token, or leave it empty for the first page",
                    )
                })?,
        };
        let since = req
            .since
            .as_ref()
            .map(|t| convert::moment("since", Some(t)))
            .transpose()?;
        let mut events = self
            .store
            .export_events(only, since, after, size + 1)
            .await
            .map_err(status)?;
        let mut more = events.len() > size as usize;
        events.truncate(size as usize);
        // A page must fit in a response: stop early when the events are heavy (evidence).
        let mut bytes = 0;
        if let Some(cut) = events.iter().position(|e| {
            bytes += e.payload.len() + e.attribution.as_ref().map_or(0, String::len) + 512;
            bytes > MAX_EXPORT_BYTES
        }) {
            let kept = cut.max(1);
            more |= kept < events.len();
            events.truncate(kept);
        }
        let next_page_token = if more {
            events
                .last()
                .map(|e| e.position.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ExportEventsResponse {
            events: events
                .into_iter()
                .map(|e| pb::AuditEvent {
                    transition_id: e.transition_id,
                    seq: e.seq,
                    at: Some(convert::timestamp(e.at)),
                    actor: e.actor,
                    kind: e.kind,
                    payload_json: e.payload,
                    attribution_json: e.attribution.unwrap_or_default(),
                    hash: e.hash.unwrap_or_default(),
                })
                .collect(),
            next_page_token,
        }))
    }
}
