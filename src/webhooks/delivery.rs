//! The delivery worker: claims due deliveries from the outbox, signs and sends them, and
//! records each attempt. Endpoints are served side by side; one endpoint's deliveries go out in
//! order, but a delivery that fails retries on its own schedule, so it never holds back later
//! events for long (only until its own retry, when the endpoint is unreachable altogether).

use std::time::Duration;

use chrono::NaiveDateTime;
use tokio::task::JoinSet;

use super::client::{Client, Sent};
use super::model::{self, AttemptResult, DeliveryState, EndpointStatus, Next, RetryPolicy};
use super::store::{self, Attempt, Due};
use crate::audit::{self, AuditEvent};
use crate::db::{write_tx, Db};
use crate::error::ApiError;
use crate::extract::RequestCtx;
use crate::metrics::{Metrics, WebhookOutcome};

/// Deliveries claimed per pass.
const BATCH: i64 = 32;

/// How long a claim holds: a worker that dies mid-batch leaves its deliveries to be claimed
/// again after this (delivery is at least once). Long enough for a batch of slow receivers.
const LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// What one pass needs.
#[derive(Clone)]
pub struct Worker {
    pub db: Db,
    pub client: Client,
    pub retry: RetryPolicy,
}

/// A pass's counts, by outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
}

impl Worker {
    /// One pass: claims what is due and sends it, each endpoint's deliveries on a task of
    /// their own.
    pub async fn pass(&self, metrics: &Metrics) -> Result<Pass, ApiError> {
        let now = crate::db::now();
        let due = self
            .db
            .run(move |c| Ok(store::claim_due(c, now, now + LEASE, BATCH)?))
            .await?;
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
        let mut tasks = JoinSet::new();
        for group in by_endpoint {
            let worker = self.clone();
            tasks.spawn(async move { worker.endpoint_queue(group).await });
        }
        let mut pass = Pass::default();
        while let Some(joined) = tasks.join_next().await {
            let outcomes =
                joined.map_err(|e| ApiError::Internal(format!("delivery task failed: {e}")))?;
            for (next, latency) in outcomes? {
                let outcome = match next {
                    Next::Done => {
                        pass.delivered += 1;
                        WebhookOutcome::Delivered
                    }
                    Next::RetryAfter(_) => {
                        pass.retried += 1;
                        WebhookOutcome::Retried
                    }
                    Next::GiveUp | Next::DisableEndpoint => {
                        pass.failed += 1;
                        WebhookOutcome::Failed
                    }
                };
                metrics.observe_webhook(outcome, latency);
            }
        }
        Ok(pass)
    }

    /// One endpoint's claimed deliveries, in order. When the endpoint cannot be reached at all
    /// (no response), the rest wait for that delivery's retry instead of each timing out now.
    async fn endpoint_queue(&self, group: Vec<Due>) -> Result<Vec<(Next, Duration)>, ApiError> {
        let mut outcomes = Vec::new();
        let mut rest = group.into_iter();
        while let Some(due) = rest.next() {
            let (sent, next) = self.attempt(&due).await?;
            outcomes.push((next, sent.latency));
            if sent.status.is_none() {
                if let Next::RetryAfter(wait) = next {
                    let at =
                        crate::db::now() + chrono::TimeDelta::from_std(wait).unwrap_or_default();
                    let held: Vec<i64> = rest.map(|d| d.delivery_id).collect();
                    self.db
                        .run(move |c| Ok(store::postpone(c, &held, at)?))
                        .await?;
                    break;
                }
            }
        }
        Ok(outcomes)
    }

    /// Signs, sends and records one delivery.
    async fn attempt(&self, due: &Due) -> Result<(Sent, Next), ApiError> {
        let id = model::message_id(&due.endpoint.id, due.delivery_id);
        let body = serde_json::to_vec(&model::payload(due.event.as_ref(), due.created_at))
            .map_err(|e| ApiError::Internal(format!("payload: {e}")))?;
        let sent_at = chrono::Utc::now();
        let timestamp = sent_at.timestamp();
        let signature = model::signature_header(
            &due.endpoint.signing_secrets(crate::db::stored(sent_at)),
            &id,
            timestamp,
            &body,
        );
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
        self.record(due, &id, &sent, next, attempts, now).await?;
        Ok((sent, next))
    }

    async fn record(
        &self,
        due: &Due,
        message_id: &str,
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
        let delivered = (sent.result == AttemptResult::Delivered)
            .then(|| due.event.as_ref().map(|e| e.referral_id.clone()))
            .flatten();
        let (status_code, error, latency_ms) = (
            sent.status.map(i32::from),
            sent.error,
            sent.latency.as_millis() as i64,
        );
        let request_id = format!("webhook-{message_id}");
        self.db
            .run(move |conn| {
                write_tx(conn, |conn| {
                    store::record_attempt(
                        conn,
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
                            store::set_status(conn, &endpoint.id, s, now)?;
                        }
                    }
                    if let Some(referral_id) = delivered {
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
}

/// A delivery handed the provider a referral id, as a feed page does: one access event, the
/// actor being the provider's client that registered the endpoint.
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
    e.actor_role = Some(crate::codes::Code::code(crate::auth::Role::Provider).to_owned());
    e.tenant_id = Some(endpoint.provider_id.to_string());
    e
}

fn jitter() -> f64 {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).map_or(0.5, |_| {
        f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
    })
}
