//! The operation table: every protected operation and what it is logged as.

/// What an operation is logged as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub action: &'static str,
    pub resource_type: &'static str,
    /// The status its handler answers on success: the status logged for a success event, so
    /// no call site types it (a test holds it equal to the document's 2xx response).
    pub ok: u16,
}

/// Every protected operation, by method and route template, with its success status. The
/// caller extractor looks the request up here, so a refusal is logged under the operation it
/// refused and a handler's own events cannot be mislabelled. A test checks this table against
/// the OpenAPI document.
#[rustfmt::skip]
const OPERATIONS: &[(&str, &str, &str, &str, u16)] = &[
    ("POST",   "/oauth/token",                             "token.issue", "client", 200),
    ("POST",   "/v1/admin/clients",                        "client.create", "client", 201),
    ("GET",    "/v1/admin/clients",                        "client.list", "client", 200),
    ("GET",    "/v1/admin/clients/{id}",                   "client.read", "client", 200),
    ("POST",   "/v1/admin/clients/{id}/rotate-secret",     "client.rotate_secret", "client", 200),
    ("POST",   "/v1/admin/clients/{id}/revoke",            "client.revoke", "client", 200),
    ("POST",   "/v1/admin/employers",                      "employer.create", "employer", 201),
    ("GET",    "/v1/admin/employers",                      "employer.list", "employer", 200),
    ("GET",    "/v1/admin/employers/{id}",                 "employer.read", "employer", 200),
    ("PATCH",  "/v1/admin/employers/{id}",                 "employer.update", "employer", 200),
    ("POST",   "/v1/admin/employers/{id}/deactivate",      "employer.deactivate", "employer", 200),
    ("POST",   "/v1/admin/providers",                      "provider.create", "provider", 201),
    ("GET",    "/v1/admin/providers",                      "provider.list", "provider", 200),
    ("GET",    "/v1/admin/providers/{id}",                 "provider.read", "provider", 200),
    ("PATCH",  "/v1/admin/providers/{id}",                 "provider.update", "provider", 200),
    ("POST",   "/v1/admin/providers/{id}/deactivate",      "provider.deactivate", "provider", 200),
    ("POST",   "/v1/admin/contracts",                      "contract.create", "contract", 201),
    ("GET",    "/v1/admin/contracts",                      "contract.list", "contract", 200),
    ("GET",    "/v1/admin/contracts/{id}",                 "contract.read", "contract", 200),
    ("PATCH",  "/v1/admin/contracts/{id}",                 "contract.update", "contract", 200),
    ("POST",   "/v1/admin/contracts/{id}/deactivate",      "contract.deactivate", "contract", 200),
    ("GET",    "/v1/admin/unroutable",                     "unroutable.list", "referral", 200),
    ("POST",   "/v1/admin/unroutable/{id}/assign",         "referral.assign", "referral", 200),
    ("GET",    "/v1/provider/events",                      "feed.read", "referral", 200),
    ("GET",    "/v1/provider/referrals",                   "referral.list", "referral", 200),
    ("GET",    "/v1/provider/referrals/{id}",              "referral.read", "referral", 200),
    ("POST",   "/v1/provider/referrals/{id}/accept",       "referral.accept", "referral", 200),
    ("POST",   "/v1/provider/referrals/{id}/decline",      "referral.decline", "referral", 204),
    ("POST",   "/v1/provider/referrals/{id}/status",       "referral.status", "referral", 200),
    ("GET",    "/v1/provider/referrals/{id}/contact",      "contact.read", "referral", 200),
    ("GET",    "/v1/portal/providers",                     "provider.portal_list", "provider", 200),
    ("POST",   "/v1/referrals",                            "referral.create", "referral", 201),
    ("GET",    "/v1/referrals/{id}",                       "referral.read", "referral", 200),
    ("POST",   "/v1/referrals/{id}/cancel",                "referral.cancel", "referral", 200),
    ("DELETE", "/v1/referrals/{id}/personal-data",         "personal_data.erase", "referral", 204),
    ("DELETE", "/v1/admin/referrals/{id}/personal-data",   "personal_data.erase", "referral", 204),
    ("GET",    "/v1/reports/utilization",                  "report.read", "report", 200),
    ("GET",    "/v1/audit/events",                         "audit.search", "access_log", 200),
    ("GET",    "/v1/audit/export",                         "audit.export", "access_log", 200),
    ("GET",    "/v1/audit/events/{id}/proof",              "audit.proof", "access_event", 200),
    ("GET",    "/v1/audit/checkpoints",                    "audit.checkpoints", "access_log", 200),
    ("GET",    "/v1/audit/consistency",                    "audit.consistency", "access_log", 200),
    ("GET",    "/v1/audit/verify",                         "audit.verify", "access_log", 200),
    ("GET",    "/v1/audit/stats",                          "audit.stats", "access_log", 200),
    ("POST",   "/v1/provider/webhooks",                    "webhook.create", "webhook", 201),
    ("GET",    "/v1/provider/webhooks",                    "webhook.list", "webhook", 200),
    ("GET",    "/v1/provider/webhooks/{id}",               "webhook.read", "webhook", 200),
    ("DELETE", "/v1/provider/webhooks/{id}",               "webhook.delete", "webhook", 204),
    ("POST",   "/v1/provider/webhooks/{id}/rotate-secret", "webhook.rotate_secret", "webhook", 200),
    ("POST",   "/v1/provider/webhooks/{id}/ping",          "webhook.ping", "webhook", 202),
    ("GET",    "/v1/provider/webhooks/{id}/deliveries",    "webhook.deliveries", "webhook", 200),
    ("GET",    "/v1/admin/provider-webhooks",              "webhook.list", "webhook", 200),
    ("POST",   "/v1/admin/provider-webhooks/{id}/disable", "webhook.disable", "webhook", 200),
    ("POST",   "/v1/admin/webhooks",                       "operator_webhook.create", "operator_webhook", 201),
    ("GET",    "/v1/admin/webhooks",                       "operator_webhook.list", "operator_webhook", 200),
    ("GET",    "/v1/admin/webhooks/{id}",                  "operator_webhook.read", "operator_webhook", 200),
    ("DELETE", "/v1/admin/webhooks/{id}",                  "operator_webhook.delete", "operator_webhook", 204),
    ("POST",   "/v1/admin/webhooks/{id}/rotate-secret",    "operator_webhook.rotate_secret", "operator_webhook", 200),
    ("POST",   "/v1/admin/webhooks/{id}/ping",             "operator_webhook.ping", "operator_webhook", 202),
    ("GET",    "/v1/admin/webhooks/{id}/deliveries",       "operator_webhook.deliveries", "operator_webhook", 200),
];

/// What the service does on its own, with no request: offers expiring and the retention purge.
pub const REFERRAL_EXPIRE: Operation = Operation {
    action: "referral.expire",
    resource_type: "referral",
    ok: 200,
};
/// A webhook delivery handed a provider a referral id (as a feed page does).
pub const WEBHOOK_DELIVERED: Operation = Operation {
    action: "webhook.delivered",
    resource_type: "referral",
    ok: 200,
};
pub const PERSONAL_DATA_PURGE: Operation = Operation {
    action: "personal_data.purge",
    resource_type: "referral",
    ok: 200,
};

/// Every action the log can hold, sorted: the operations' and the service's own. The document's
/// `LoggedAction` enum is this list, so a new operation extends it without another edit.
pub fn actions() -> Vec<&'static str> {
    let mut all: Vec<&str> = OPERATIONS
        .iter()
        .map(|(_, _, action, ..)| *action)
        .collect();
    all.extend([
        REFERRAL_EXPIRE.action,
        PERSONAL_DATA_PURGE.action,
        WEBHOOK_DELIVERED.action,
    ]);
    all.sort_unstable();
    all.dedup();
    all
}

pub fn operation(method: &str, route: &str) -> Option<Operation> {
    OPERATIONS
        .iter()
        .find(|(m, r, ..)| *m == method && *r == route)
        .map(|&(_, _, action, resource_type, ok)| Operation {
            action,
            resource_type,
            ok,
        })
}

pub fn protected_routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    OPERATIONS.iter().map(|(m, r, ..)| (*m, *r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (m, r) in protected_routes() {
            assert!(seen.insert((m, r)), "{m} {r} listed twice");
        }
    }
}
