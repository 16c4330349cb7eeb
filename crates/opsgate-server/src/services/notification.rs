//! `opsgate.v1.NotificationService`: the dead-letter list of deliveries and retrying one (the
//! SMO; auditors read the list).

use opsgate_proto::v1 as pb;
use opsgate_proto::v1::notification_service_server::NotificationService;
use opsgate_store::Delivery;
use tonic::{Request, Response, Status};

use super::Api;
use crate::convert;
use crate::error::{invalid_argument, status};

/// Most deliveries one answer lists.
const MAX_LIST: u32 = 1000;

fn message(d: Delivery) -> pb::Delivery {
    pb::Delivery {
        id: d.id,
        channel: d.channel,
        recipient: d.recipient,
        webhook_id: d.webhook_id,
        status: d.status,
        attempts: d.attempts,
        last_error: d.last_error.unwrap_or_default(),
        created_at: Some(convert::timestamp(d.created_at)),
        next_attempt_at: Some(convert::timestamp(d.next_attempt_at)),
        kind: d.notice.kind.as_str().to_owned(),
        transition_id: d.notice.transition_id,
        service_name: d.notice.service_name,
        service_version: d.notice.service_version,
        headline: d.notice.headline,
    }
}

#[tonic::async_trait]
impl NotificationService for Api {
    async fn list_failed_deliveries(
        &self,
        request: Request<pb::ListFailedDeliveriesRequest>,
    ) -> Result<Response<pb::ListFailedDeliveriesResponse>, Status> {
        self.auth
            .authorize(
                &request,
                "opsgate.v1.NotificationService/ListFailedDeliveries",
            )
            .await?;
        let limit = match request.get_ref().limit {
            0 => 100,
            n if n > MAX_LIST => {
                return Err(invalid_argument("limit", format!("at most {MAX_LIST}")));
            }
            n => n,
        };
        let deliveries = self
            .store
            .failed_deliveries(u64::from(limit))
            .await
            .map_err(status)?;
        let mut disabled: Vec<pb::DisabledChannel> = self
            .store
            .disabled_channels()
            .await
            .map_err(status)?
            .into_iter()
            .map(|(channel, reason)| pb::DisabledChannel { channel, reason })
            .collect();
        disabled.sort_by(|a, b| a.channel.cmp(&b.channel));
        Ok(Response::new(pb::ListFailedDeliveriesResponse {
            deliveries: deliveries.into_iter().map(message).collect(),
            disabled_channels: disabled,
        }))
    }

    async fn retry_delivery(
        &self,
        request: Request<pb::RetryDeliveryRequest>,
    ) -> Result<Response<pb::RetryDeliveryResponse>, Status> {
        let caller = self
            .auth
            .changer(&request, "opsgate.v1.NotificationService/RetryDelivery")
            .await?;
        let id = request.get_ref().delivery_id;
        if id <= 0 {
            return Err(invalid_argument(
                "delivery_id",
                "is required: the id `opsgate notifications failed` lists",
            ));
        }
        let delivery = self.store.retry_delivery(id).await.map_err(status)?;
        tracing::info!(delivery = id, channel = %delivery.channel, by = %caller.actor, "delivery queued again");
        Ok(Response::new(pb::RetryDeliveryResponse {
            delivery: Some(message(delivery)),
        }))
    }
}
