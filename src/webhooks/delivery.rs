//! The delivery worker: claims due deliveries from the outbox, signs and sends them, and
//! records each attempt. Endpoints are served side by side, each by a queue task of its own; one
//! endpoint's deliveries go out in order, but a delivery that fails retries on its own schedule,
//! so it never holds back later events for long (only until its own retry, when the endpoint is
//! unreachable altogether). A pass does not wait for the queues it starts: a receiver that takes
//! its full timeout holds back only its own deliveries, and each queue that finishes wakes the
//! next pass at once, so a busy endpoint is served as fast as it answers, not once an interval.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDateTime;

use super::client::{Client, Sent};
use super::model::{self, DeliveryState, EndpointStatus, Next, RetryPolicy};
use super::store::{self, Attempt, Due, Side};
use crate::audit::{self, AuditEvent};
use crate::db::{write_tx, Db};
use crate::error::ApiError;
use crate::extract::RequestCtx;
use crate::metrics::WebhookOutcome;

/// Deliveries claimed per pass.
pub const BATCH: i64 = 32;

/// Endpoint queues in flight at once on one instance; past this a pass claims nothing more
/// until some finish (each holds a connection to its receiver, and a task).
const MAX_QUEUES: usize = 256;

/// Where the outcome of each attempt goes (the service's metrics).
pub type Observe = Arc<dyn Fn(WebhookOutcome, Duration) + Send + Sync>;

/// What the passes need, and what they share.
#[derive(Clone)]
pub struct Worker {
    pub db: Db,
    pub client: Client,
    pub retry: RetryPolicy,
    /// How long a claim holds (`EAP_WEBHOOK_LEASE_SECS`, 5 min by default): a worker that
    /// dies mid-batch leaves its deliveries to be claimed again after this (delivery is at
    /// least once). Long enough for a batch of slow receivers.
    pub lease: chrono::TimeDelta,
    /// Opens the endpoints' sealed signing secrets, only to sign.
    pub keys: Arc<crate::keys::Keys>,
    pub observe: Observe,
    /// Endpoints whose queue is in flight here: a pass claims none of their deliveries, so one
    /// endpoint's deliveries are sent one at a time, in order.
    busy: Arc<Mutex<HashSet<String>>>,
    /// Rung by each queue that finishes (and so by every delivery batch that ends).
    pub wake: Arc<tokio::sync::Notify>,
}

impl Worker {
    pub fn new(
        db: Db,
        client: Client,
        retry: RetryPolicy,
        lease: chrono::TimeDelta,
        keys: Arc<crate::keys::Keys>,
        observe: Observe,
    ) -> Self {
        Worker {
            db,
            client,
            retry,
            lease,
            keys,
            observe,
            busy: Default::default(),
            wake: Default::default(),
        }
    }

    /// One pass: claims what is due for endpoints not already being served here and starts a
    /// queue task per endpoint, without waiting for them. Returns how many it claimed.
    pub async fn pass(&self) -> Result<usize, ApiError> {
        let busy: Vec<String> = self.busy_now().iter().cloned().collect();
        if busy.len() >= MAX_QUEUES {
            return Ok(0);
        }
        let now = crate::db::now();
        let until = now + self.lease;
        let due = self
            .db
            .run(move |c| Ok(store::claim_due(c, now, until, BATCH, &busy)?))
            .await?;
        let claimed = due.len();
        let mut by_endpoint: Vec<Vec<Due>> = Vec::new();
        for d in due {
            match by_endpoint
                .iter_mut()
                .find(|g| g[0].endpoint.id == d.endpoint.id)
            {
                Some(g) => g.push(d),
                None => by_endpoint.push(vec![d]),
            }
        }
        for group in by_endpoint {
            let endpoint = group[0].endpoint.id.to_string();
            self.busy_now().insert(endpoint.clone());
            let worker = self.clone();
            tokio::spawn(async move {
                match worker.endpoint_queue(group).await {
                    Ok(outcomes) => {
                        for (next, latency) in outcomes {
                            (worker.observe)(outcome_of(next), latency);
                        }
                    }
                    // Its deliveries stay claimed until the lease ends, then go out again.
                    Err(e) => tracing::warn!(error = %e, "webhook delivery queue failed"),
                }
                worker.busy_now().remove(&endpoint);
                worker.wake.notify_one();
            });
        }
        Ok(claimed)
    }

    fn busy_now(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A queue that panicked while holding the lock left a set that is still whole.
        self.busy.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One endpoint's claimed deliveries, in order. When the endpoint cannot be reached at all
    /// (no response), the rest wait for that delivery's retry instead of each timing out now.
    /// When a delivery's access event cannot be written, nothing is sent: it and the rest wait
    /// for the first retry interval, uncounted as attempts.
    async fn endpoint_queue(&self, group: Vec<Due>) -> Result<Vec<(Next, Duration)>, ApiError> {
        let mut outcomes = Vec::new();
        let mut rest = group.into_iter();
        while let Some(due) = rest.next() {
            if let Err(e) = self.audit_handover(&due).await {
                tracing::warn!(
                    delivery = due.delivery_id,
                    error = %e,
                    "webhook not sent: its access event could not be written"
                );
                let held = std::iter::once(due.delivery_id).chain(rest.map(|d| d.delivery_id));
                self.hold(due.endpoint.side(), held.collect(), self.retry.base)
                    .await?;
                break;
            }
            let (sent, next) = self.attempt(&due).await?;
            outcomes.push((next, sent.latency));
            if sent.status.is_none() {
                if let Next::RetryAfter(wait) = next {
                    let held = rest.map(|d| d.delivery_id).collect();
                    self.hold(due.endpoint.side(), held, wait).await?;
                    break;
                }
            }
        }
        Ok(outcomes)
    }

    /// Moves claimed deliveries, unattempted, to `wait` from now.
    async fn hold(&self, side: Side, held: Vec<i64>, wait: Duration) -> Result<(), ApiError> {
        let at = crate::db::now() + chrono::TimeDelta::from_std(wait).unwrap_or_default();
        self.db
            .run(move |c| Ok(store::postpone(c, side, &held, at)?))
            .await
    }

    /// Fail closed: a delivery that hands over a referral id writes its `webhook.delivered`
    /// access event, and marks itself audited, in one transaction before its first attempt;
    /// it is sent only once that committed. Retries find it audited and write nothing more.
    async fn audit_handover(&self, due: &Due) -> Result<(), ApiError> {
        let referral_id = match &due.event {
            Some(e) if !due.audited => e.referral_id().to_owned(),
            _ => return Ok(()),
        };
        let endpoint = due.endpoint.clone();
        let delivery_id = due.delivery_id;
        let request_id = format!(
            "webhook-{}",
            model::message_id(&endpoint.id, due.delivery_id)
        );
        self.db
            .run(move |conn| {
                write_tx(conn, |conn| {
                    let side = endpoint.side();
                    if store::mark_audited(conn, side, delivery_id, crate::db::now())? {
                        audit::record(
                            conn,
                            &[delivered_event(&endpoint, &request_id, &referral_id)],
                        )?;
                    }
                    Ok::<_, ApiError>(())
                })
            })
            .await
    }

    /// Signs, sends and records one delivery.
    async fn attempt(&self, due: &Due) -> Result<(Sent, Next), ApiError> {
        let id = model::message_id(&due.endpoint.id, due.delivery_id);
        let body = model::body(due.event.as_ref(), due.created_at)
            .map_err(|e| ApiError::Internal(format!("payload: {e}")))?;
        let sent_at = chrono::Utc::now();
        let timestamp = sent_at.timestamp();
        let opened = due
            .endpoint
            .signing_secrets(&self.keys.master, crate::db::stored(sent_at))
            .map_err(|e| ApiError::Internal(format!("webhook secret: {e}")))?;
        let secrets: Vec<&str> = opened.iter().map(|s| s.as_str()).collect();
        let signature = model::signature_header(&secrets, &id, timestamp, &body);
        let headers = vec![
            ("webhook-id", id.clone()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        let sent = self.client.send(&due.endpoint.url, headers, body).await;
        let attempts = due.attempts + 1;
        let now = crate::db::now();
        let age = (now - due.created_at).to_std().unwrap_or_default();
        let next = self.retry.next(sent.result, attempts as u32, age, jitter());
        self.record(due, &sent, next, attempts, now).await?;
        Ok((sent, next))
    }

    async fn record(
        &self,
        due: &Due,
        sent: &Sent,
        next: Next,
        attempt: i32,
        now: NaiveDateTime,
    ) -> Result<(), ApiError> {
        let (state, next_at, endpoint_status) = match next {
            Next::Done => (DeliveryState::Delivered, None, Some(EndpointStatus::Active)),
            Next::RetryAfter(w) => (
                DeliveryState::Pending,
                Some(now + chrono::TimeDelta::from_std(w).unwrap_or_default()),
                None,
            ),
            Next::GiveUp => (DeliveryState::Failed, None, Some(EndpointStatus::Failing)),
            Next::DisableEndpoint => (DeliveryState::Failed, None, Some(EndpointStatus::Disabled)),
        };
        let endpoint = due.endpoint.clone();
        let delivery_id = due.delivery_id;
        let (status_code, error, latency_ms) = (
            sent.status.map(i32::from),
            sent.error,
            sent.latency.as_millis() as i64,
        );
        self.db
            .run(move |conn| {
                write_tx(conn, |conn| {
                    store::record_attempt(
                        conn,
                        endpoint.side(),
                        &Attempt {
                            delivery_id,
                            attempt,
                            endpoint_id: &endpoint.id,
                            at: now,
                            status_code,
                            error,
                            latency_ms,
                            next_attempt_at: next_at,
                            state,
                        },
                    )?;
                    // A success after a give-up brings a failing endpoint back; a disabled one
                    // stays disabled (only 410 and an admin disable, and nothing re-enables).
                    if let Some(s) = endpoint_status {
                        if endpoint.status != EndpointStatus::Disabled {
                            store::set_status(conn, endpoint.side(), &endpoint.id, s, now)?;
                        }
                    }
                    Ok::<_, ApiError>(())
                })
            })
            .await
    }
}

/// A delivery hands the provider a referral id, as a feed page does: one access event, the
/// actor being the provider's client that registered the endpoint. An operator alert hands the
/// referral id to the EAP's own staff: the actor is the admin client that registered the
/// endpoint (no tenant). Written before sending, so it means "handed over to the endpoint",
/// whatever the receiver then answers.
fn delivered_event(
    endpoint: &store::EndpointRow,
    request_id: &str,
    referral_id: &str,
) -> AuditEvent {
    let op = audit::model::WEBHOOK_DELIVERED;
    let ctx = RequestCtx {
        request_id: request_id.to_owned(),
        source: None,
    };
    let mut e = AuditEvent::anonymous(&ctx, op, op.ok).resource(Some(referral_id));
    e.actor_client_id = Some(endpoint.created_by.to_string());
    let role = match endpoint.side() {
        Side::Provider => crate::auth::Role::Provider,
        Side::Operator => crate::auth::Role::Admin,
    };
    e.actor_role = Some(crate::codes::Code::code(role).to_owned());
    e.tenant_id = endpoint.provider_id.as_ref().map(|p| p.to_string());
    e
}

/// The metric an attempt's outcome counts under.
fn outcome_of(next: Next) -> WebhookOutcome {
    match next {
        Next::Done => WebhookOutcome::Delivered,
        Next::RetryAfter(_) => WebhookOutcome::Retried,
        Next::GiveUp | Next::DisableEndpoint => WebhookOutcome::Failed,
    }
}

fn jitter() -> f64 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).map_or(0.5, |_| {
        f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
    })
}
