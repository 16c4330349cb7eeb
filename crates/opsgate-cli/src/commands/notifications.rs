//! `opsgate notifications failed|retry`: the dead-letter list of notifications (deliveries that
//! failed on every attempt, or whose endpoint is gone) and queueing one again.

use std::process::ExitCode;

use opsgate_proto::v1 as pb;

use crate::client::Context;
use crate::commands::audit::Format;
use crate::output;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Deliveries that failed on every attempt of the retry schedule (about three days), or
    /// whose endpoint answered 410 Gone (its channel is then disabled), the latest first.
    Failed {
        /// At most this many [max 1000].
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// table for people, json (one object a line) for scripts.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Queue a failed or disabled delivery again from its first attempt (same webhook-id), and
    /// enable its channel again.
    Retry {
        /// The delivery's id, as `notifications failed` lists it.
        delivery_id: i64,
    },
}

pub(crate) async fn run(ctx: &Context, command: Command) -> anyhow::Result<ExitCode> {
    let mut client = ctx.notifications().await?;
    match command {
        Command::Failed { limit, format } => {
            let list = client
                .list_failed_deliveries(ctx.acting(pb::ListFailedDeliveriesRequest { limit })?)
                .await?
                .into_inner();
            for d in &list.deliveries {
                match format {
                    Format::Table => println!(
                        "{:>6}  {:<9} {:<16} {:<22} {} {}  {} attempts, last: {}\n        {}",
                        d.id,
                        d.status,
                        d.channel,
                        d.kind,
                        d.service_name,
                        d.service_version,
                        d.attempts,
                        if d.last_error.is_empty() {
                            "-"
                        } else {
                            &d.last_error
                        },
                        d.headline
                    ),
                    Format::Json => println!(
                        "{}",
                        serde_json::json!({
                            "id": d.id,
                            "status": d.status,
                            "channel": d.channel,
                            "recipient": d.recipient,
                            "webhook_id": d.webhook_id,
                            "attempts": d.attempts,
                            "last_error": d.last_error,
                            "kind": d.kind,
                            "transition_id": d.transition_id,
                            "service": d.service_name,
                            "version": d.service_version,
                            "headline": d.headline,
                            "created_at": output::timestamp(d.created_at.as_ref(), "%Y-%m-%dT%H:%M:%SZ", ""),
                        })
                    ),
                }
            }
            if matches!(format, Format::Table) {
                for c in &list.disabled_channels {
                    println!("channel {} is DISABLED: {}", c.channel, c.reason);
                }
                eprintln!(
                    "{} failed deliveries; `opsgate notifications retry ID` queues one again",
                    list.deliveries.len()
                );
            }
        }
        Command::Retry { delivery_id } => {
            let d = client
                .retry_delivery(ctx.acting(pb::RetryDeliveryRequest { delivery_id })?)
                .await?
                .into_inner()
                .delivery
                .ok_or_else(|| anyhow::anyhow!("server returned no delivery"))?;
            println!(
                "delivery {} to {} queued again (webhook-id {})",
                d.id, d.channel, d.webhook_id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
