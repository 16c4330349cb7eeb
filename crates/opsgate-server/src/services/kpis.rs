//! `AuditService.GetKpis`: how the transition process performs over a time window (a year to
//! now by default), each figure with its sample count, from the facts the events made.

use chrono::Duration;
use opsgate_proto::v1 as pb;
use opsgate_store::{FactGroup, KpiWindow};
use tonic::{Request, Response, Status};

use super::Api;
use crate::convert;
use crate::error::{invalid_argument, status};

/// Longest window, in days.
const MAX_WINDOW_DAYS: i64 = 3660;

fn figure(g: &FactGroup) -> pb::KpiFigure {
    let samples = u64::try_from(g.samples).unwrap_or(0);
    let hits = u64::try_from(g.flagged).unwrap_or(0);
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    let ratio = if samples == 0 {
        0.0
    } else {
        hits as f64 / samples as f64
    };
    pb::KpiFigure {
        key: g.key.clone().unwrap_or_default(),
        samples,
        mean_seconds: g.mean_seconds().unwrap_or(0.0),
        min_seconds: g.min_seconds.unwrap_or(0),
        max_seconds: g.max_seconds.unwrap_or(0),
        hits,
        ratio,
        total: g.total_count.unwrap_or(0),
    }
}

fn figures(groups: &[FactGroup]) -> Vec<pb::KpiFigure> {
    groups.iter().map(figure).collect()
}

impl Api {
    pub(super) async fn get_kpis_rpc(
        &self,
        request: Request<pb::GetKpisRequest>,
    ) -> Result<Response<pb::GetKpisResponse>, Status> {
        self.auth
            .authorize(&request, "opsgate.v1.AuditService/GetKpis")
            .await?;
        let req = request.into_inner();
        let until = match &req.until {
            Some(t) => convert::moment("until", Some(t))?,
            None => self.store.now(),
        };
        let since = match &req.since {
            Some(t) => convert::moment("since", Some(t))?,
            None => until - Duration::days(365),
        };
        if since >= until {
            return Err(invalid_argument(
                "since",
                format!("must be before until ({until})"),
            ));
        }
        if until - since > Duration::days(MAX_WINDOW_DAYS) {
            return Err(invalid_argument(
                "since",
                format!("the window is at most {MAX_WINDOW_DAYS} days"),
            ));
        }
        let workflow = Some(req.workflow.trim().to_owned()).filter(|w| !w.is_empty());
        let k = self
            .store
            .kpis(&KpiWindow {
                since,
                until,
                workflow,
            })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetKpisResponse {
            since: Some(convert::timestamp(since)),
            until: Some(convert::timestamp(until)),
            lead_time: Some(figure(&k.handovers)),
            time_in_state: figures(&k.time_in_state),
            approval_latency_by_approver: figures(&k.approval_by_approver),
            approval_latency_by_role: figures(&k.approval_by_role),
            first_pass: figures(&k.done),
            sent_back: figures(&k.sent_back),
            rejections: Some(figure(&k.rejections)),
            rejection_reasons: figures(&k.rejection_reasons),
            waivers: figures(&k.waivers),
            support: Some(figure(&k.support)),
        }))
    }
}
