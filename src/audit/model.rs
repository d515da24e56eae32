use chrono::NaiveDateTime;

use crate::extract::RequestCtx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Refused: authentication, authorisation or tenancy.
    Denied,
    /// Attempted and failed for another reason.
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }

    pub fn of_status(status: u16) -> Self {
        match status {
            s if s < 400 => Outcome::Success,
            401 | 403 | 404 => Outcome::Denied,
            _ => Outcome::Failure,
        }
    }
}

/// What an operation is logged as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub action: &'static str,
    pub resource_type: &'static str,
}

/// Every protected operation, by method and route template. The caller extractor looks the
/// request up here, so a refusal is logged under the operation it refused and a handler's own
/// events cannot be mislabelled. A test checks this table against the OpenAPI document.
#[rustfmt::skip]
const OPERATIONS: &[(&str, &str, &str, &str)] = &[
    ("POST",  "/oauth/token",                          "token.issue",          "client"),
    ("POST",  "/v1/admin/clients",                     "client.create",        "client"),
    ("GET",   "/v1/admin/clients",                     "client.list",          "client"),
    ("GET",   "/v1/admin/clients/{id}",                "client.read",          "client"),
    ("POST",  "/v1/admin/clients/{id}/rotate-secret",  "client.rotate_secret", "client"),
    ("POST",  "/v1/admin/clients/{id}/revoke",         "client.revoke",        "client"),
    ("POST",  "/v1/admin/employers",                   "employer.create",      "employer"),
    ("GET",   "/v1/admin/employers",                   "employer.list",        "employer"),
    ("GET",   "/v1/admin/employers/{id}",              "employer.read",        "employer"),
    ("PATCH", "/v1/admin/employers/{id}",              "employer.update",      "employer"),
    ("POST",  "/v1/admin/employers/{id}/deactivate",   "employer.deactivate",  "employer"),
    ("POST",  "/v1/admin/providers",                   "provider.create",      "provider"),
    ("GET",   "/v1/admin/providers",                   "provider.list",        "provider"),
    ("GET",   "/v1/admin/providers/{id}",              "provider.read",        "provider"),
    ("PATCH", "/v1/admin/providers/{id}",              "provider.update",      "provider"),
    ("POST",  "/v1/admin/providers/{id}/deactivate",   "provider.deactivate",  "provider"),
    ("POST",  "/v1/admin/contracts",                   "contract.create",      "contract"),
    ("GET",   "/v1/admin/contracts",                   "contract.list",        "contract"),
    ("GET",   "/v1/admin/contracts/{id}",              "contract.read",        "contract"),
    ("PATCH", "/v1/admin/contracts/{id}",              "contract.update",      "contract"),
    ("POST",  "/v1/admin/contracts/{id}/deactivate",   "contract.deactivate",  "contract"),
    ("GET",   "/v1/admin/unroutable",                  "unroutable.list",      "referral"),
    ("POST",  "/v1/admin/unroutable/{id}/assign",      "referral.assign",      "referral"),
    ("GET",   "/v1/provider/events",                   "feed.read",            "referral"),
    ("GET",   "/v1/provider/referrals",                "referral.list",        "referral"),
    ("GET",   "/v1/provider/referrals/{id}",           "referral.read",        "referral"),
    ("POST",  "/v1/provider/referrals/{id}/accept",    "referral.accept",      "referral"),
    ("POST",  "/v1/provider/referrals/{id}/decline",   "referral.decline",     "referral"),
    ("POST",  "/v1/provider/referrals/{id}/status",    "referral.status",      "referral"),
    ("GET",   "/v1/provider/referrals/{id}/contact",   "contact.read",         "referral"),
    ("POST",  "/v1/referrals",                         "referral.create",      "referral"),
    ("GET",   "/v1/referrals/{id}",                    "referral.read",        "referral"),
    ("POST",  "/v1/referrals/{id}/cancel",             "referral.cancel",      "referral"),
    ("DELETE", "/v1/referrals/{id}/personal-data",     "personal_data.erase",  "referral"),
    ("DELETE", "/v1/admin/referrals/{id}/personal-data", "personal_data.erase", "referral"),
    ("GET",   "/v1/reports/utilization",               "report.read",          "report"),
];

pub fn operation(method: &str, route: &str) -> Option<Operation> {
    OPERATIONS
        .iter()
        .find(|(m, r, _, _)| *m == method && *r == route)
        .map(|(_, _, action, resource_type)| Operation {
            action,
            resource_type,
        })
}

pub fn protected_routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    OPERATIONS.iter().map(|(m, r, _, _)| (*m, *r))
}

/// One access-log row. Identifiers only: never contact data, notes, tokens or secrets.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub actor_client_id: Option<String>,
    pub actor_role: Option<String>,
    pub tenant_id: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub outcome: Outcome,
    pub http_status: u16,
    pub request_id: String,
    pub source_addr: Option<String>,
}

impl AuditEvent {
    /// An event with no authenticated actor (a refused or unauthenticated request).
    pub fn anonymous(ctx: &RequestCtx, op: Operation, status: u16) -> Self {
        AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            occurred_at: crate::db::now(),
            actor_client_id: None,
            actor_role: None,
            tenant_id: None,
            action: op.action.to_owned(),
            resource_type: op.resource_type.to_owned(),
            resource_id: None,
            outcome: Outcome::of_status(status),
            http_status: status,
            request_id: ctx.request_id.clone(),
            source_addr: ctx.source.clone(),
        }
    }

    /// An event of the service's own background work (the retention purge): the actor is the
    /// system, and `request_id` names the run.
    pub fn system(request_id: &str, op: Operation, status: u16) -> Self {
        let ctx = RequestCtx {
            request_id: request_id.to_owned(),
            source: None,
        };
        let mut e = Self::anonymous(&ctx, op, status);
        e.actor_role = Some("system".into());
        e
    }

    pub fn resource(mut self, id: Option<&str>) -> Self {
        self.resource_id = id.map(str::to_owned);
        self
    }

    /// Records an identifier the caller supplied but that was not verified (a failed token
    /// request's client id), trimmed so it cannot flood the log.
    pub fn claimed_actor(mut self, client_id: &str) -> Self {
        let cleaned: String = client_id
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect();
        self.actor_client_id = (!cleaned.is_empty()).then_some(cleaned);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        assert_eq!(Outcome::of_status(200), Outcome::Success);
        assert_eq!(Outcome::of_status(201), Outcome::Success);
        for s in [401, 403, 404] {
            assert_eq!(Outcome::of_status(s), Outcome::Denied);
        }
        assert_eq!(Outcome::of_status(400), Outcome::Failure);
    }

    #[test]
    fn operations_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (m, r) in protected_routes() {
            assert!(seen.insert((m, r)), "{m} {r} listed twice");
        }
    }

    #[test]
    fn claimed_actors_are_trimmed() {
        let ctx = RequestCtx {
            request_id: "r".into(),
            source: None,
        };
        let op = operation("POST", "/oauth/token").unwrap();
        let e =
            AuditEvent::anonymous(&ctx, op, 401).claimed_actor(&format!("a\nb{}", "x".repeat(500)));
        let actor = e.actor_client_id.unwrap();
        assert_eq!(actor.chars().count(), 64);
        assert!(!actor.contains('\n'));
    }
}
