//! The route table: every documented operation, registered once. The server and the OpenAPI
//! document are both built from this list, so a handler cannot be served undocumented.

use actix_web::dev::HttpServiceFactory;
use utoipa_actix_web::OpenApiFactory;

/// Where [`routes`] registers the handlers: the document's builder (`openapi::spec`, once per
/// process) collects each one's paths and schemas, while a server worker takes the handlers
/// only, instead of building the paths again and throwing them away (about 1 MB of resident
/// memory for two workers, which their allocator arenas keep).
pub trait RouteSink {
    fn service<F: HttpServiceFactory + OpenApiFactory + 'static>(
        &mut self,
        handler: F,
    ) -> &mut Self;
}

impl RouteSink for utoipa_actix_web::service_config::ServiceConfig<'_> {
    fn service<F: HttpServiceFactory + OpenApiFactory + 'static>(
        &mut self,
        handler: F,
    ) -> &mut Self {
        utoipa_actix_web::service_config::ServiceConfig::service(self, handler)
    }
}

impl RouteSink for actix_web::web::ServiceConfig {
    fn service<F: HttpServiceFactory + OpenApiFactory + 'static>(
        &mut self,
        handler: F,
    ) -> &mut Self {
        actix_web::web::ServiceConfig::service(self, handler)
    }
}

pub fn routes<C: RouteSink>(cfg: &mut C) {
    use crate::{
        audit, auth, directory, health, privacy, referrals, reports, routing, webhooks, workflow,
    };
    cfg.service(health::http::healthz)
        .service(health::http::readyz)
        .service(crate::metrics::http::metrics)
        .service(auth::http::token)
        .service(auth::http::jwks)
        .service(auth::http::server_metadata)
        .service(auth::http::create_client)
        .service(auth::http::list_clients)
        .service(auth::http::get_client)
        .service(auth::http::rotate_secret)
        .service(auth::http::revoke_client)
        .service(directory::http::create_employer)
        .service(directory::http::list_employers)
        .service(directory::http::get_employer)
        .service(directory::http::update_employer)
        .service(directory::http::deactivate_employer)
        .service(directory::http::create_provider)
        .service(directory::http::list_providers)
        .service(directory::http::get_provider)
        .service(directory::http::update_provider)
        .service(directory::http::deactivate_provider)
        .service(directory::http::create_contract)
        .service(directory::http::list_contracts)
        .service(directory::http::get_contract)
        .service(directory::http::update_contract)
        .service(directory::http::deactivate_contract)
        .service(directory::http::list_portal_providers)
        .service(routing::http::list_unroutable)
        .service(routing::http::assign)
        .service(workflow::http::poll_feed)
        .service(workflow::http::list_referrals)
        .service(workflow::http::get_referral)
        .service(workflow::http::accept)
        .service(workflow::http::decline)
        .service(workflow::http::update_status)
        .service(workflow::http::contact)
        .service(webhooks::http::create_webhook)
        .service(webhooks::http::list_webhooks)
        .service(webhooks::http::get_webhook)
        .service(webhooks::http::delete_webhook)
        .service(webhooks::http::rotate_webhook_secret)
        .service(webhooks::http::ping_webhook)
        .service(webhooks::http::list_webhook_deliveries)
        .service(webhooks::http::admin_list_webhooks)
        .service(webhooks::http::admin_disable_webhook)
        .service(webhooks::operator::create_operator_webhook)
        .service(webhooks::operator::list_operator_webhooks)
        .service(webhooks::operator::get_operator_webhook)
        .service(webhooks::operator::delete_operator_webhook)
        .service(webhooks::operator::rotate_operator_webhook_secret)
        .service(webhooks::operator::ping_operator_webhook)
        .service(webhooks::operator::list_operator_webhook_deliveries)
        .service(referrals::http::submit)
        .service(referrals::http::read_status)
        .service(referrals::http::cancel)
        .service(privacy::http::erase)
        .service(privacy::http::admin_erase)
        .service(reports::http::utilization)
        .service(audit::http::list_events)
        .service(audit::http::export_events)
        .service(audit::http::inclusion_proof)
        .service(audit::http::list_checkpoints)
        .service(audit::http::consistency_proof)
        .service(audit::http::verify_log)
        .service(audit::http::audit_stats)
        .service(audit::http::public_key);
}

#[cfg(test)]
mod tests {
    /// The access log records a success with the operation table's status (`Operation::ok`),
    /// never one typed at a call site; this holds that status equal to the only 2xx response
    /// the document gives each operation, so what is logged is what is sent.
    #[test]
    fn the_logged_success_status_is_the_documented_one() {
        let spec = serde_json::to_value(crate::openapi::spec()).expect("the spec serializes");
        for (method, route) in crate::audit::model::protected_routes() {
            let op = crate::audit::operation(method, route).expect("listed");
            let responses = spec["paths"][route][method.to_lowercase()]["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {route} is not documented"));
            let success: Vec<&String> = responses.keys().filter(|s| s.starts_with('2')).collect();
            assert_eq!(success, [&op.ok.to_string()], "{method} {route}");
        }
    }
}
