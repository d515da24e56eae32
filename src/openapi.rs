//! The OpenAPI 3.1 document, collected from the registered handlers by utoipa-actix-web, and
//! the route table derived from it that answers 405 with `Allow` for a known path.

use std::collections::BTreeMap;

use actix_web::App;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{
    ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes, SecurityRequirement,
    SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "eap-referrals",
        description = "Confidential Employee Assistance Programme referrals: HR portals submit, \
                       EAP providers take them up, auditors verify who touched what. Errors are \
                       RFC 9457 `application/problem+json`. Every `GET` also answers `HEAD` \
                       with the same status and headers and no body.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    modifiers(&Security),
    tags(
        (name = "operations", description = "Liveness, readiness and the API description"),
        (name = "auth", description = "OAuth 2.0 client credentials and the token signing keys"),
        (name = "admin", description = "Directory and API clients (role `admin`)"),
        (name = "provider", description = "A provider's feed and referrals: accept, decline, \
                                          report, reveal contact (role `provider`)"),
        (name = "referrals", description = "Requests for help, as HR portals submit and follow \
                                           them (role `hr_portal`)"),
        (name = "reports", description = "Aggregate, small-cell-suppressed utilisation counts \
                                         of the portal's own employer (role `hr_portal`)"),
        (name = "audit", description = "The access log, sealed into a Merkle tree with signed \
                                       checkpoints: search, export, proofs, verification (role \
                                       `auditor`)"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /oauth/token` (RFC 9068 JWT, EdDSA).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`GET /metrics` only: the operator's `EAP_METRICS_TOKEN`, not an access \
                         token.",
                    ))
                    .build(),
            ),
        );
        // The token endpoint's client authentication (RFC 6749 §2.3.1): HTTP Basic here, or
        // `client_id` and `client_secret` in the form body, which the body schema documents.
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "`POST /oauth/token` only: the client id and secret as user and \
                         password (`client_secret_basic`). The alternative is `client_id` and \
                         `client_secret` in the form body (`client_secret_post`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_credentials",
            SecurityScheme::OAuth2(OAuth2::new([Flow::ClientCredentials(
                ClientCredentials::new("/oauth/token", Scopes::new()),
            )])),
        );
    }
}

/// The document as `GET /openapi.json` serves it, serialized once per process: it is fixed when
/// the binary is built. Serving these shared bytes, not an `OpenApi` value handed to each server
/// worker (Swagger UI's own way), saves about 10 MB of resident memory per worker.
pub fn served() -> actix_web::web::Bytes {
    static SERVED: std::sync::OnceLock<actix_web::web::Bytes> = std::sync::OnceLock::new();
    SERVED
        .get_or_init(|| {
            serde_json::to_vec(&spec())
                .unwrap_or_else(|e| unreachable!("an OpenApi value always serializes: {e}"))
                .into()
        })
        .clone()
}

/// `GET /openapi.json`: outside the documented API, like the Swagger UI that reads it.
pub async fn serve() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(served())
}

/// The full document, exactly as `GET /openapi.json` serves it and `eap-referrals openapi` prints.
pub fn spec() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(doc)
        .configure(|cfg| crate::routes::routes(cfg))
        .split_for_parts();
    let mut api = api;
    document_shared_responses(&mut api);
    document_rate_limits(&mut api);
    document_headers(&mut api);
    document_contact_rule(&mut api);
    reference_page_items(&mut api);
    document_id_lists(&mut api);
    document_webhooks(&mut api);
    api
}

const WEBHOOK_DESCRIPTION: &str = "What a provider's webhook endpoint receives \
    (`POST /v1/provider/webhooks` registers one): a Standard Webhooks delivery for each event of \
    its feed, and `ping` when asked. The body carries ids only; read the referral through the \
    API. `webhook-signature` holds `v1,<base64 HMAC-SHA256>` of `webhook-id.webhook-timestamp.body` \
    under the endpoint's `whsec_` secret (two, space-separated, for 24 hours after a rotation): \
    verify it with a Standard Webhooks library, and refuse a timestamp more than five minutes \
    off. Delivery is at least once: deduplicate on `webhook-id`, which is the same on every \
    retry. A 2xx answer is success; 410 disables the endpoint; anything else, or no answer \
    within 10 seconds, is retried with exponential backoff for up to 72 hours (`Retry-After` \
    is honoured). Events go out in feed order while the endpoint is healthy, but a failing one \
    retries on its own schedule and never holds back later ones, so order is a courtesy, not a \
    guarantee: `data.cursor` resumes `GET /v1/provider/events`, the authority on order.";

const OPERATOR_ALERT_DESCRIPTION: &str = "What an operator webhook endpoint receives \
    (`POST /v1/admin/webhooks` registers one): `operator.referral_unroutable` when a referral \
    becomes unroutable (at intake, or when a decline or an expired offer found no other \
    provider) and `operator.offer_expired` when a provider let an offer expire, each with the \
    referral's id and urgency and nothing else (the routing reasons stay behind the audited \
    `GET /v1/admin/unroutable`), and `ping` (the provider payload's form) when asked. Signed, \
    retried, deduplicated and disabled exactly as the providers' deliveries are.";

/// The OpenAPI 3.1 `webhooks` section: what the service sends to providers' and operators'
/// endpoints. utoipa has no field for it, so it goes in as a top-level member (its extensions
/// are written as they are), with the payload schemas among the components.
fn document_webhooks(api: &mut utoipa::openapi::OpenApi) {
    use crate::webhooks::model::{OperatorPayload, WebhookPayload};
    use utoipa::{PartialSchema, ToSchema};
    let mut schemas = Vec::new();
    WebhookPayload::schemas(&mut schemas);
    OperatorPayload::schemas(&mut schemas);
    schemas.push(("WebhookPayload".to_owned(), WebhookPayload::schema()));
    schemas.push(("OperatorPayload".to_owned(), OperatorPayload::schema()));
    let components = api.components.get_or_insert_with(Default::default);
    components.schemas.extend(schemas);
    let header = |name: &str, description: &str| {
        serde_json::json!({
            "name": name, "in": "header", "required": true, "description": description,
            "schema": {"type": "string"},
        })
    };
    let operation = |tag: &str, summary: &str, description: &str, id: &str, payload: &str| {
        serde_json::json!({
            "post": {
                "tags": [tag],
                "summary": summary,
                "description": description,
                "operationId": id,
                "parameters": [
                    header("webhook-id", "The delivery's id: the same on every retry of one \
                        event to one endpoint"),
                    header("webhook-timestamp", "Seconds since the Unix epoch when this attempt \
                        was signed"),
                    header("webhook-signature", "`v1,<base64 signature>`, one per secret in \
                        force, space-separated"),
                ],
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {
                        "schema": {"$ref": format!("#/components/schemas/{payload}")},
                    }},
                },
                "responses": {
                    "200": {"description": "Received (any 2xx)"},
                    "410": {"description": "The endpoint is gone: no more deliveries"},
                },
            }
        })
    };
    let referral_event = operation(
        "provider",
        "A feed event (or a ping), pushed to a provider's endpoint.",
        WEBHOOK_DESCRIPTION,
        "referral_event",
        "WebhookPayload",
    );
    let operator_alert = operation(
        "admin",
        "An alert for the EAP's on-call staff, pushed to an operator endpoint.",
        OPERATOR_ALERT_DESCRIPTION,
        "operator_alert",
        "OperatorPayload",
    );
    api.extensions.get_or_insert_with(Default::default).insert(
        "webhooks".to_owned(),
        serde_json::json!({"referralEvent": referral_event, "operatorAlert": operator_alert}),
    );
}

/// utoipa inlines a generic's type argument, so `Page<Employer>` would repeat `Employer`'s
/// schema; a generator then makes a second class of it. Each page's items point at the
/// component instead (`Page_Employer` → `Employer`), which must exist and match.
/// Lists of ids (`affiliated_provider_ids`, `exclude_providers`): each item is an id this
/// service issued, checked by `extract::issued_ids` or against the portal's list. The derive
/// cannot put a pattern on a `Vec<String>`'s items, so the items' form is written here, where a
/// generator or a fuzzer reads it.
fn document_id_lists(api: &mut utoipa::openapi::OpenApi) {
    const LISTS: &[(&str, &str)] = &[
        ("Employer", "affiliated_provider_ids"),
        ("EmployerInput", "affiliated_provider_ids"),
        ("EmployerPatch", "affiliated_provider_ids"),
        ("NewReferral", "exclude_providers"),
    ];
    let Some(components) = api.components.as_mut() else {
        return;
    };
    let mut doc = serde_json::to_value(&components.schemas).expect("schemas serialize");
    for (schema, property) in LISTS {
        let items = &mut doc[*schema]["properties"][*property]["items"];
        assert_eq!(
            items["type"], "string",
            "{schema}.{property}: a list of strings"
        );
        // The pattern alone: it fixes the length too, so a malformed id is one error, not two.
        *items = serde_json::json!({
            "type": "string",
            "pattern": crate::extract::ISSUED_ID_PATTERN,
        });
    }
    components.schemas = serde_json::from_value(doc).expect("valid schemas");
}

fn reference_page_items(api: &mut utoipa::openapi::OpenApi) {
    let Some(components) = api.components.as_mut() else {
        return;
    };
    let mut doc = serde_json::to_value(&components.schemas).expect("schemas serialize");
    let names: Vec<String> = doc.as_object().expect("a map").keys().cloned().collect();
    for name in names {
        let Some(item) = name.strip_prefix("Page_") else {
            continue;
        };
        assert!(doc.get(item).is_some(), "{name}: no component named {item}");
        let items = &mut doc[&name]["properties"]["items"]["items"];
        if items.get("$ref").is_none() {
            let mut inline = items.clone();
            let mut component = doc[item].clone();
            // The inlined copy carries no description of its own beyond the component's.
            for schema in [&mut inline, &mut component] {
                schema.as_object_mut().map(|o| o.remove("description"));
            }
            assert_eq!(inline, component, "{name}: the items differ from {item}");
            doc[&name]["properties"]["items"]["items"] =
                serde_json::json!({"$ref": format!("#/components/schemas/{item}")});
        }
    }
    components.schemas = serde_json::from_value(doc).expect("valid schemas");
}

/// Headers every response or a class of responses carries, documented once here rather than
/// in each handler: the request id on every response (telemetry), the rate-limit state on
/// every response of an operation with a budget (`ratelimit`, when a budget applied), and
/// `Retry-After` on 503 (`error::render`).
fn document_headers(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::{Header, HeaderBuilder};
    use utoipa::openapi::schema::{Object, Type};
    let header = |ty: Type, description: &str| -> Header {
        HeaderBuilder::new()
            .schema(Object::with_type(ty))
            .description(Some(description))
            .build()
    };
    let request_id = header(
        Type::String,
        "This request's id, also in the problem body and in every log line about it",
    );
    let policy = header(
        Type::String,
        "The budget that applied, e.g. `\"hr_portal\";q=1200;w=60` \
         (draft-ietf-httpapi-ratelimit-headers)",
    );
    let remaining = header(
        Type::String,
        "What is left of it, e.g. `\"hr_portal\";r=1199;t=60`",
    );
    let retry = header(Type::Integer, "Seconds to wait before retrying");
    let add = |response: &mut Response, limited: bool, status: &str| {
        response
            .headers
            .insert("X-Request-Id".into(), request_id.clone());
        if limited {
            response
                .headers
                .insert("RateLimit-Policy".into(), policy.clone());
            response
                .headers
                .insert("RateLimit".into(), remaining.clone());
        }
        if status == "503" {
            response.headers.insert("Retry-After".into(), retry.clone());
        }
    };
    for item in api.paths.paths.values_mut() {
        for op in operations(item) {
            let limited = budgeted(op);
            for (status, response) in op.responses.responses.iter_mut() {
                if let RefOr::T(response) = response {
                    add(response, limited, status);
                }
            }
        }
    }
    let shared = api.components.get_or_insert_with(Default::default);
    for response in shared.responses.values_mut() {
        if let RefOr::T(response) = response {
            add(response, true, "429");
        }
    }
}

/// `Contact` needs a phone number or an email address (`phone_or_email` in
/// `referrals::model`); the derive cannot say so, so the rule is added here: at least one of the
/// two present and not null. Without it the schema admits bodies the server must refuse.
fn document_contact_rule(api: &mut utoipa::openapi::OpenApi) {
    let Some(schemas) = api.components.as_mut().map(|c| &mut c.schemas) else {
        return;
    };
    let Some(contact) = schemas.get("Contact") else {
        return;
    };
    let fields = serde_json::to_value(contact).expect("a schema serializes");
    let one = |field: &str| {
        serde_json::json!({
            "type": "object",
            "required": [field],
            "properties": {field: {"type": "string"}},
        })
    };
    let contact = serde_json::from_value(serde_json::json!({
        "allOf": [fields, {"anyOf": [one("phone"), one("email")]}],
        "description": "How to reach the person: a phone number, an email address, or both.",
    }))
    .expect("a valid schema");
    schemas.insert("Contact".to_owned(), contact);
}

/// The answers most operations share, added to each operation that does not document its own
/// for that status, so a handler lists only what is particular to it (a handler's own wins).
/// They come from shared code, not from the handler: the caller extractors (`auth::caller`)
/// for 401 and 403, `ApiJson` for a body, `ApiQuery` and `Paging` for paging, the pool and
/// the access log for 503.
fn document_shared_responses(api: &mut utoipa::openapi::OpenApi) {
    let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
    for item in api.paths.paths.values_mut() {
        for op in operations(item) {
            let mut shared = Vec::new();
            if op.security.iter().flatten().any(|s| *s == bearer) {
                shared.push(("401", "Missing or invalid access token"));
                if let Some(refused) = op.tags.iter().flatten().find_map(|t| refusal(t)) {
                    shared.push(("403", refused));
                }
                shared.push(("503", "Database or access log unavailable"));
            }
            let takes_json = op
                .request_body
                .as_ref()
                .is_some_and(|b| b.content.contains_key("application/json"));
            if takes_json {
                shared.push(("400", "Malformed JSON"));
                shared.push(("408", "Body not received in time"));
                shared.push(("413", "Body too large"));
                shared.push(("415", "Not JSON"));
            }
            let only_paging = op.parameters.as_ref().is_some_and(|params| {
                !params.is_empty()
                    && params
                        .iter()
                        .all(|p| crate::pagination::PARAMETERS.contains(&p.name.as_str()))
            });
            if only_paging {
                shared.push(("422", "Invalid paging parameters"));
            }
            for (status, description) in shared {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::T(problem(description)));
            }
        }
    }
}

/// The 403 of a bearer operation: its tag names the one role allowed to call it.
fn refusal(tag: &str) -> Option<&'static str> {
    match tag {
        "admin" => Some("Not an admin"),
        "provider" => Some("Not a provider"),
        "audit" => Some("Not an auditor"),
        "referrals" | "reports" => Some("Not an HR portal"),
        _ => None,
    }
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

/// Whether a request budget applies (`ratelimit`): to API clients' operations (bearer) and to
/// the token endpoint (client authentication), not to the metrics scraper.
fn budgeted(op: &Operation) -> bool {
    let budgeted = ["bearer", "client_basic"].map(|s| SecurityRequirement::new(s, [""; 0]));
    op.security.iter().flatten().any(|s| budgeted.contains(s))
}

/// Every authenticated operation and the token endpoint can answer 429 (see `ratelimit`).
/// Added here once rather than in each handler's list, so a new operation cannot miss it.
fn document_rate_limits(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{Object, Type};
    let text = |description: &str| {
        HeaderBuilder::new()
            .schema(Object::with_type(Type::String))
            .description(Some(description))
            .build()
    };
    let response = ResponseBuilder::new()
        .description(
            "Too many requests: the client's budget (or, for tokens, the source address's) is \
             spent. Retry after `Retry-After` seconds.",
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Object::with_type(Type::Integer))
                .description(Some("Seconds until one more request is allowed"))
                .build(),
        )
        .header(
            "RateLimit-Policy",
            text(
                "The budget, e.g. `\"hr_portal\";q=1200;w=60` \
                 (draft-ietf-httpapi-ratelimit-headers)",
            ),
        )
        .header(
            "RateLimit",
            text("What is left, e.g. `\"hr_portal\";r=0;t=3`"),
        )
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build();
    api.components
        .get_or_insert_with(Default::default)
        .responses
        .insert("TooManyRequests".into(), RefOr::T(response));
    for item in api.paths.paths.values_mut() {
        for op in operations(item) {
            if budgeted(op) {
                op.responses.responses.insert(
                    "429".into(),
                    RefOr::Ref(Ref::from_response_name("TooManyRequests")),
                );
            }
        }
    }
}

/// Path templates and their methods, to tell "no such path" (404) from "wrong method" (405).
pub struct RouteTable {
    routes: Vec<(Vec<String>, Vec<String>)>,
}

impl RouteTable {
    /// From the document as JSON (`served`), whose `paths` name each path's operations.
    pub fn from_document(document: &serde_json::Value) -> Self {
        let mut by_path: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let paths = document["paths"].as_object().into_iter().flatten();
        for (path, item) in paths {
            let methods = by_path.entry(path.clone()).or_default();
            let has = |method: &str| item.get(method).is_some();
            // Every GET also answers HEAD (`head.rs`), so a 405 on its path allows both.
            let ops = [
                ("GET", has("get")),
                ("HEAD", has("get")),
                ("PUT", has("put")),
                ("POST", has("post")),
                ("DELETE", has("delete")),
                ("PATCH", has("patch")),
            ];
            methods.extend(
                ops.iter()
                    .filter(|(_, on)| *on)
                    .map(|(m, _)| (*m).to_owned()),
            );
        }
        // Served by `serve`, outside the documented API.
        by_path.insert("/openapi.json".into(), vec!["GET".into(), "HEAD".into()]);
        RouteTable {
            routes: by_path
                .into_iter()
                .map(|(p, m)| (p.split('/').map(str::to_owned).collect(), m))
                .collect(),
        }
    }

    /// The methods allowed on `path`, or `None` when no route has that shape.
    pub fn allowed(&self, path: &str) -> Option<Vec<String>> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut found: Vec<String> = Vec::new();
        for (template, methods) in &self.routes {
            let matches = template.len() == segments.len()
                && template.iter().zip(&segments).all(|(t, s)| {
                    (t.starts_with('{') && t.ends_with('}') && !s.is_empty()) || t == s
                });
            if matches {
                found.extend(methods.iter().cloned());
            }
        }
        found.sort();
        found.dedup();
        (!found.is_empty()).then_some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_segment_by_segment() {
        let table = RouteTable {
            routes: vec![
                (
                    vec!["".into(), "a".into(), "{id}".into()],
                    vec!["GET".into()],
                ),
                (
                    vec!["".into(), "a".into(), "new".into()],
                    vec!["POST".into()],
                ),
            ],
        };
        assert_eq!(table.allowed("/a/123"), Some(vec!["GET".into()]));
        assert_eq!(
            table.allowed("/a/new"),
            Some(vec!["GET".into(), "POST".into()])
        );
        assert_eq!(table.allowed("/a/"), None);
        assert_eq!(table.allowed("/a/1/2"), None);
        assert_eq!(table.allowed("/b/1"), None);
    }

    /// A HEAD is served as its path's GET (`head.rs`), so a 405 there must offer both.
    #[test]
    fn a_path_with_a_get_allows_head_too() {
        let document = serde_json::from_slice(&served()).expect("the served document is JSON");
        let table = RouteTable::from_document(&document);
        let both = Some(vec!["GET".to_owned(), "HEAD".to_owned()]);
        assert_eq!(table.allowed("/healthz"), both);
        assert_eq!(table.allowed("/openapi.json"), both);
        assert_eq!(table.allowed("/oauth/token"), Some(vec!["POST".to_owned()]));
        let employer = table.allowed("/v1/admin/employers/x").unwrap();
        assert_eq!(employer, ["GET", "HEAD", "PATCH"]);
    }

    /// `refusal` knows the roles by tag; a bearer operation under any other tag would go
    /// without its 403.
    #[test]
    fn every_bearer_operation_documents_the_shared_refusals() {
        let bearer = SecurityRequirement::new("bearer", Vec::<String>::new());
        let mut api = spec();
        for (path, item) in api.paths.paths.iter_mut() {
            for op in operations(item) {
                if op.security.iter().flatten().any(|s| *s == bearer) {
                    for status in ["401", "403", "503"] {
                        let found = op.responses.responses.contains_key(status);
                        assert!(found, "{path} documents no {status}");
                    }
                }
            }
        }
    }

    /// The derive takes only literal bounds, so a list with filters repeats its paging's
    /// `after` and `limit`; they must be what it resolves them with.
    #[test]
    fn lists_with_filters_document_the_paging_they_resolve_with() {
        use crate::pagination::{PageQuery, PARAMETERS};
        use crate::{audit, directory, workflow};
        use utoipa::IntoParams;
        fn paging<P: IntoParams>() -> Vec<serde_json::Value> {
            P::into_params(|| None)
                .into_iter()
                .filter(|p| PARAMETERS.contains(&p.name.as_str()))
                .map(|p| serde_json::json!([p.name, p.required, p.schema]))
                .collect()
        }
        let by_id = paging::<PageQuery>();
        assert_eq!(paging::<directory::http::ContractQuery>(), by_id);
        assert_eq!(paging::<workflow::http::ReferralQuery>(), by_id);
        assert_eq!(
            paging::<audit::http::EventQuery>(),
            paging::<audit::http::EventPaging>()
        );
        assert_eq!(
            paging::<workflow::http::FeedQuery>(),
            paging::<workflow::http::FeedPaging>()
        );
    }

    /// Every id field and parameter documents the one shape the server accepts
    /// (`extract::is_issued_id`), so what the schema admits and what the server takes agree.
    #[test]
    fn id_patterns_are_the_issued_id_pattern() {
        fn walk(v: &serde_json::Value, found: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(p) = m.get("pattern").and_then(|p| p.as_str()) {
                        if p.contains("[0-9a-f]{8}") {
                            found.push(p.to_owned());
                        }
                    }
                    m.values().for_each(|v| walk(v, found));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, found)),
                _ => {}
            }
        }
        let doc = serde_json::to_value(spec()).unwrap();
        let mut found = Vec::new();
        walk(&doc, &mut found);
        // Cursors of three lists, the contracts' employer filter, contract and client bindings,
        // and the assignment's provider.
        assert!(found.len() >= 8, "{found:?}");
        for p in found {
            assert_eq!(p, crate::extract::ISSUED_ID_PATTERN);
        }
    }
}
