//! Prometheus metrics: request counts and latency histograms by route and status, recorded by
//! the request middleware, and gauges read when scraped (pool, long polls, offers, purge runs).
//!
//! Labels are route templates and status codes only — never a path with an id in it, a query,
//! or a client id — so a scrape reveals load, not who asked for what.

pub mod http;
pub mod service;

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

/// Latency bucket bounds in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default)]
struct Histogram {
    /// Cumulative counts per bucket (`le`), plus +Inf as the count.
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds (an integer so it can be atomic).
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            if secs <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

type Key = (String, &'static str, u16);

/// Counters the service keeps for itself.
#[derive(Default)]
pub struct Metrics {
    requests: RwLock<HashMap<Key, Histogram>>,
    pub purge_runs: AtomicU64,
    pub purge_failures: AtomicU64,
    pub purged_referrals: AtomicU64,
    pub sweep_runs: AtomicU64,
    pub offers_expired: AtomicU64,
    /// Webhook attempts by outcome: delivered, retried (a retry is scheduled), failed (410 or
    /// retries ran out).
    webhook_outcomes: [AtomicU64; 3],
    /// Time from sending a delivery to its answer (or to giving up on it).
    webhook_latency: Histogram,
}

/// What a webhook attempt came to, as `/metrics` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Delivered = 0,
    Retried = 1,
    Failed = 2,
}

const WEBHOOK_OUTCOMES: [&str; 3] = ["delivered", "retried", "failed"];

/// Values read at scrape time from the rest of the service.
pub struct Gauges {
    pub pool_connections: u32,
    pub pool_idle: u32,
    pub pool_max: u32,
    pub long_polls_waiting: usize,
    pub long_polls_max: usize,
    pub offers_pending: i64,
    pub offers_overdue: i64,
    /// Events in the latest signed checkpoint.
    pub audit_sealed: i64,
    /// Seconds since the latest checkpoint: the sealing lag (grows past the interval when
    /// sealing stalls). `None` before the first.
    pub audit_checkpoint_age_secs: Option<f64>,
    /// Webhook deliveries still pending after a failed attempt.
    pub webhook_retries_pending: i64,
    /// Per urgency code: unroutable referrals, and the longest time in seconds one of them has
    /// been unroutable since it last became so (0 when none).
    pub unroutable: Vec<(&'static str, i64, f64)>,
}

fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

impl Metrics {
    pub fn observe_webhook(&self, outcome: WebhookOutcome, latency: Duration) {
        self.webhook_outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.webhook_latency.observe(latency);
    }

    /// Records one finished request. `route` is the matched template (`unmatched` otherwise),
    /// which bounds the label set to the routes the service has.
    pub fn observe(&self, route: String, method: &str, status: u16, latency: Duration) {
        let key = (route, method_label(method), status);
        if let Some(h) = self
            .requests
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            h.observe(latency);
            return;
        }
        let mut map = self.requests.write().unwrap_or_else(|e| e.into_inner());
        map.entry(key).or_default().observe(latency);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, g: &Gauges) -> String {
        let mut out = String::with_capacity(8192);
        out.push_str(
            "# HELP eap_http_requests_total Requests answered, by route template, method and \
             status.\n\
             # TYPE eap_http_requests_total counter\n",
        );
        let map = self.requests.read().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<&Key> = map.keys().collect();
        keys.sort();
        for k in &keys {
            let h = &map[*k];
            let _ = writeln!(
                out,
                "eap_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}",
                escape(&k.0),
                k.1,
                k.2,
                h.count.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP eap_http_request_duration_seconds Time from request to response, by route \
             template, method and status.\n\
             # TYPE eap_http_request_duration_seconds histogram\n",
        );
        for k in &keys {
            let h = &map[*k];
            let labels = format!(
                "route=\"{}\",method=\"{}\",status=\"{}\"",
                escape(&k.0),
                k.1,
                k.2
            );
            for (b, le) in h.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(
                    out,
                    "eap_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {}",
                    b.load(Ordering::Relaxed)
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "eap_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "eap_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "eap_http_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        drop(map);
        let gauges: [(&str, &str, &str, f64); 9] = [
            (
                "eap_db_pool_connections",
                "gauge",
                "Open database connections.",
                f64::from(g.pool_connections),
            ),
            (
                "eap_db_pool_idle",
                "gauge",
                "Idle database connections.",
                f64::from(g.pool_idle),
            ),
            (
                "eap_db_pool_max",
                "gauge",
                "Largest pool size (EAP_DB_POOL_SIZE).",
                f64::from(g.pool_max),
            ),
            (
                "eap_long_polls_waiting",
                "gauge",
                "Feed long polls waiting now on this instance.",
                g.long_polls_waiting as f64,
            ),
            (
                "eap_long_polls_max",
                "gauge",
                "Long polls that may wait at once (EAP_MAX_LONG_POLLS).",
                g.long_polls_max as f64,
            ),
            (
                "eap_offers_pending",
                "gauge",
                "Referrals offered to a provider and not yet answered.",
                g.offers_pending as f64,
            ),
            (
                "eap_offers_overdue",
                "gauge",
                "Pending offers past their deadline (the sweeper re-offers them).",
                g.offers_overdue as f64,
            ),
            (
                "eap_audit_sealed_events",
                "gauge",
                "Access events covered by the latest signed checkpoint.",
                g.audit_sealed as f64,
            ),
            (
                "eap_audit_checkpoint_age_seconds",
                "gauge",
                "Seconds since the latest checkpoint: the sealing lag (-1 before the first).",
                g.audit_checkpoint_age_secs.unwrap_or(-1.0),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let counters: [(&str, &str, &AtomicU64); 5] = [
            (
                "eap_purge_runs_total",
                "Retention purge runs completed.",
                &self.purge_runs,
            ),
            (
                "eap_purge_failures_total",
                "Retention purge runs that failed (retried next interval).",
                &self.purge_failures,
            ),
            (
                "eap_purged_referrals_total",
                "Referrals whose personal data the purge destroyed.",
                &self.purged_referrals,
            ),
            (
                "eap_offer_sweeps_total",
                "Offer sweeper runs completed.",
                &self.sweep_runs,
            ),
            (
                "eap_offers_expired_total",
                "Offers the sweeper expired and re-offered.",
                &self.offers_expired,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        self.render_webhooks(&mut out, g);
        out
    }

    /// Webhook deliveries and the unroutable queue: what the alert rules in `docs/alerts.yml`
    /// read.
    fn render_webhooks(&self, out: &mut String, g: &Gauges) {
        out.push_str(
            "# HELP eap_webhook_deliveries_total Webhook attempts by outcome (delivered; \
             retried: another attempt is scheduled; failed: 410 or retries ran out).\n\
             # TYPE eap_webhook_deliveries_total counter\n",
        );
        for (name, n) in WEBHOOK_OUTCOMES.iter().zip(&self.webhook_outcomes) {
            let _ = writeln!(
                out,
                "eap_webhook_deliveries_total{{outcome=\"{name}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out.push_str(
            "# HELP eap_webhook_delivery_duration_seconds Time from sending a webhook to its \
             answer.\n# TYPE eap_webhook_delivery_duration_seconds histogram\n",
        );
        let h = &self.webhook_latency;
        for (b, le) in h.buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "eap_webhook_delivery_duration_seconds_bucket{{le=\"{le}\"}} {}",
                b.load(Ordering::Relaxed)
            );
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "eap_webhook_delivery_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
             eap_webhook_delivery_duration_seconds_sum {}\n\
             eap_webhook_delivery_duration_seconds_count {count}",
            h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "# HELP eap_webhook_retries_pending Webhook deliveries waiting for a retry.\n\
             # TYPE eap_webhook_retries_pending gauge\n\
             eap_webhook_retries_pending {}",
            g.webhook_retries_pending
        );
        out.push_str(
            "# HELP eap_referrals_unroutable Referrals no provider could take, by urgency.\n\
             # TYPE eap_referrals_unroutable gauge\n",
        );
        for (urgency, n, _) in &g.unroutable {
            let _ = writeln!(out, "eap_referrals_unroutable{{urgency=\"{urgency}\"}} {n}");
        }
        out.push_str(
            "# HELP eap_referrals_unroutable_oldest_age_seconds Longest time an unroutable \
             referral has been unroutable (since it last became so), by urgency (0 when none).\n\
             # TYPE eap_referrals_unroutable_oldest_age_seconds gauge\n",
        );
        for (urgency, _, age) in &g.unroutable {
            let _ = writeln!(
                out,
                "eap_referrals_unroutable_oldest_age_seconds{{urgency=\"{urgency}\"}} {age}"
            );
        }
    }
}

/// Label values are route templates from our own table, but escape anyway (text format rules).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_counted() {
        let m = Metrics::default();
        m.observe(
            "/v1/referrals".into(),
            "POST",
            201,
            Duration::from_millis(3),
        );
        m.observe(
            "/v1/referrals".into(),
            "POST",
            201,
            Duration::from_millis(30),
        );
        m.observe(
            "/v1/referrals".into(),
            "POST",
            422,
            Duration::from_micros(500),
        );
        let g = Gauges {
            pool_connections: 4,
            pool_idle: 3,
            pool_max: 10,
            long_polls_waiting: 2,
            long_polls_max: 100,
            offers_pending: 5,
            offers_overdue: 1,
            audit_sealed: 7,
            audit_checkpoint_age_secs: Some(2.5),
            webhook_retries_pending: 3,
            unroutable: vec![("routine", 0, 0.0), ("crisis", 2, 400.0)],
        };
        m.observe_webhook(WebhookOutcome::Retried, Duration::from_millis(20));
        let text = m.render(&g);
        let labels = "route=\"/v1/referrals\",method=\"POST\",status=\"201\"";
        assert!(text.contains(&format!("eap_http_requests_total{{{labels}}} 2")));
        assert!(text.contains(&format!(
            "eap_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 1"
        )));
        assert!(text.contains(&format!(
            "eap_http_request_duration_seconds_bucket{{{labels},le=\"0.05\"}} 2"
        )));
        assert!(text.contains(&format!(
            "eap_http_request_duration_seconds_sum{{{labels}}} 0.033"
        )));
        assert!(text.contains("status=\"422\"} 1"));
        assert!(text.contains("eap_long_polls_waiting 2\n"));
        assert!(text.contains("eap_offers_overdue 1\n"));
        assert!(text.contains("eap_audit_checkpoint_age_seconds 2.5\n"));
        assert!(text.contains("eap_webhook_deliveries_total{outcome=\"retried\"} 1\n"));
        assert!(text.contains("eap_webhook_deliveries_total{outcome=\"delivered\"} 0\n"));
        assert!(text.contains("eap_webhook_delivery_duration_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(text.contains("eap_webhook_retries_pending 3\n"));
        assert!(text.contains("eap_referrals_unroutable{urgency=\"crisis\"} 2\n"));
        assert!(
            text.contains("eap_referrals_unroutable_oldest_age_seconds{urgency=\"crisis\"} 400\n")
        );
    }
}
