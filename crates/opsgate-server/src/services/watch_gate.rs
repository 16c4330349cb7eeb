//! `opsgate.v1.GateService/WatchGate`: the gate decision streamed to a waiting pipeline, at once
//! and at every change, woken by the store's change announcements (every replica's, through
//! PostgreSQL `NOTIFY`) and reading the database for the truth.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use opsgate_domain::GateDecision;
use opsgate_proto::v1 as pb;
use opsgate_proto::v1::{check_gate_request, watch_gate_request};
use opsgate_store::{ChangeFeed, Changed, TransitionView};
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::Api;
use crate::convert;

/// The stream of decisions one watch answers with.
pub(crate) type WatchStream =
    Pin<Box<dyn Stream<Item = Result<pb::CheckGateResponse, Status>> + Send + 'static>>;

/// Watches one server holds open at once; beyond, `ResourceExhausted`.
pub(crate) const MAX_WATCHES: usize = 1024;

/// A watch reads its transition again at least this often, announced or not: changes made
/// through another replica are announced only when the gate opens, closes or is accepted (each
/// NOTIFY costs PostgreSQL writes), and a waiver running out changes the decision without
/// anyone writing.
const RECHECK: Duration = Duration::from_secs(1);

/// The longest one watch lasts, whatever deadline the client set (none, say): then it ends with
/// `DeadlineExceeded`, and a pipeline that still waits asks again.
const MAX_WATCH: Duration = Duration::from_secs(24 * 3600);

impl Api {
    pub(crate) async fn watch(
        &self,
        request: Request<pb::WatchGateRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        let caller = self
            .auth
            .authorize(&request, "opsgate.v1.GateService/WatchGate")
            .await?;
        let request = request.into_inner();
        let permit = self.watches.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "this server already holds {MAX_WATCHES} gate watches open; try again later, or \
                 ask another replica"
            ))
        })?;
        // Subscribed before the first read: no change between the read and the wait is missed.
        let changes = self.store.subscribe_changes();
        let target = request.target.map(|t| match t {
            watch_gate_request::Target::TransitionId(id) => {
                check_gate_request::Target::TransitionId(id)
            }
            watch_gate_request::Target::Service(s) => check_gate_request::Target::Service(s),
        });
        let view = self.gate_view(caller.as_ref(), target).await?;
        let (tx, rx) = mpsc::channel(4);
        let api = self.clone();
        let until_accepted = request.until_accepted;
        tokio::spawn(async move {
            let _permit = permit;
            api.follow(view, changes, until_accepted, tx).await;
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    /// Sends each new decision on `tx` until the gate is open (or accepted), the client goes
    /// away, or [`MAX_WATCH`] passes.
    async fn follow(
        &self,
        mut view: TransitionView,
        mut changes: ChangeFeed,
        until_accepted: bool,
        tx: mpsc::Sender<Result<pb::CheckGateResponse, Status>>,
    ) {
        let id: Arc<str> = Arc::from(view.id.as_str());
        let end = tokio::time::Instant::now() + MAX_WATCH;
        let mut last: Option<pb::CheckGateResponse> = None;
        loop {
            let decision = GateDecision::of(&view.workflow.workflow, &view.state);
            let answer = convert::gate(&view, &decision);
            let done = if until_accepted {
                answer.state == i32::from(pb::GateState::Accepted)
            } else {
                answer.open
            };
            if last.as_ref() != Some(&answer) {
                if tx.send(Ok(answer.clone())).await.is_err() {
                    return;
                }
                last = Some(answer);
            }
            if done {
                return;
            }
            let recheck = tokio::time::sleep(RECHECK);
            tokio::pin!(recheck);
            loop {
                tokio::select! {
                    () = tx.closed() => return,
                    () = tokio::time::sleep_until(end) => {
                        let _ = tx
                            .send(Err(Status::deadline_exceeded(format!(
                                "a gate watch lasts at most {} hours; watch again",
                                MAX_WATCH.as_secs() / 3600
                            ))))
                            .await;
                        return;
                    }
                    () = &mut recheck => break,
                    changed = changes.next() => match changed {
                        Some(Changed::Transition(t)) if t == id => break,
                        Some(Changed::Unknown) => break,
                        Some(Changed::Transition(_)) => {}
                        None => return,
                    },
                }
            }
            view = match self.current(&id).await {
                Ok(view) => view,
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            };
        }
    }
}
