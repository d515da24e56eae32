//! Admin API for API clients. Secrets are shown once, when created or rotated.

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::auth::caller::Admin;
use crate::auth::clients;
use crate::auth::model::Role;
use crate::auth::store::{ClientRow, NewClient};
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiQuery, PathId};
use crate::ids::{ClientId, EmployerId, ProviderId};
use crate::pagination::{Page, PageQuery};
use crate::state::AppState;

#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// A label for people, e.g. the portal or system's name.
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::extract::plain_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 100,
        example = "Acme HR portal",
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*\
                   [^\\s\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]\
                   [^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub name: String,
    pub role: Role,
    /// Required for `hr_portal`: the employer this client acts for.
    #[validate(custom(function = "crate::extract::issued_id"))]
    #[schema(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        min_length = 36,
        max_length = 36
    )]
    #[serde(default, deserialize_with = "present")]
    pub employer_id: Option<String>,
    /// Required for `provider`: the provider this client acts for.
    #[validate(custom(function = "crate::extract::issued_id"))]
    #[schema(
        pattern = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        min_length = 36,
        max_length = 36
    )]
    #[serde(default, deserialize_with = "present")]
    pub provider_id: Option<String>,
}

/// A binding is given as a string or left out; `null` is refused (422) rather than read as
/// absent, so the server accepts exactly the bodies [`CreateClientRequest`] documents.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

const CREATE_CLIENT_DESCRIPTION: &str = "A new API client. Its role decides its binding: an \
    `hr_portal` acts for one employer, a `provider` for one provider; `admin` and `auditor` are \
    bound to neither.";

/// The documented body of `POST /v1/admin/clients`: one variant per role, each with exactly
/// the fields that role accepts, so every body the schema admits passes the server's binding
/// rules (`check_binding`). The handler still parses [`CreateClient`], whose field rules this
/// reuses; a test keeps the two in step.
pub struct CreateClientRequest;

impl CreateClientRequest {
    /// The per-role variants, named; their field rules are [`CreateClient`]'s.
    fn variants() -> Vec<(
        String,
        utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    )> {
        let base = serde_json::to_value(<CreateClient as utoipa::PartialSchema>::schema())
            .expect("a schema serializes");
        let field = |name: &str| {
            let mut f = base["properties"][name].clone();
            // Only the string: `null` is refused like any other wrong type.
            if f["type"].is_array() {
                f["type"] = "string".into();
            }
            f
        };
        let variant = |role: &str, description: &str, binding: Option<&str>| {
            let mut properties = serde_json::Map::new();
            properties.insert("name".into(), field("name"));
            properties.insert(
                "role".into(),
                serde_json::json!({"type": "string", "enum": [role]}),
            );
            let mut required = vec!["name", "role"];
            if let Some(b) = binding {
                properties.insert(b.into(), field(b));
                required.push(b);
            }
            serde_json::json!({
                "type": "object",
                "description": description,
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            })
        };
        CLIENT_VARIANTS
            .iter()
            .map(|(name, role, description, binding)| {
                let schema = serde_json::from_value(variant(role, description, *binding))
                    .expect("a valid schema");
                ((*name).to_owned(), schema)
            })
            .collect()
    }
}

/// One body schema per role, by component name: a generator makes each a class of its own
/// (an inline variant would be named after its title and could collide with a real schema, as
/// `provider` once took the place of `Provider`).
const CLIENT_VARIANTS: [(&str, &str, &str, Option<&str>); 4] = [
    (
        "NewAdminClient",
        "admin",
        "Manages the directory and API clients.",
        None,
    ),
    (
        "NewAuditorClient",
        "auditor",
        "Reads and verifies the access log.",
        None,
    ),
    (
        "NewHrPortalClient",
        "hr_portal",
        "An employer's HR portal.",
        Some("employer_id"),
    ),
    (
        "NewProviderClient",
        "provider",
        "An EAP provider's system.",
        Some("provider_id"),
    ),
];

impl utoipa::PartialSchema for CreateClientRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let refs: Vec<_> = CLIENT_VARIANTS
            .iter()
            .map(|(name, ..)| serde_json::json!({"$ref": format!("#/components/schemas/{name}")}))
            .collect();
        let mapping: serde_json::Map<_, _> = CLIENT_VARIANTS
            .iter()
            .map(|(name, role, ..)| {
                (
                    (*role).to_owned(),
                    format!("#/components/schemas/{name}").into(),
                )
            })
            .collect();
        serde_json::from_value(serde_json::json!({
            "description": CREATE_CLIENT_DESCRIPTION,
            "oneOf": refs,
            "discriminator": {"propertyName": "role", "mapping": mapping},
        }))
        .expect("a valid schema")
    }
}

impl utoipa::ToSchema for CreateClientRequest {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.extend(CreateClientRequest::variants());
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    Active,
    Revoked,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub role: Role,
    pub employer_id: Option<String>,
    pub provider_id: Option<String>,
    pub status: ClientStatus,
    pub created_at: DateTime<Utc>,
    pub secret_rotated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

impl From<ClientRow> for ClientView {
    fn from(c: ClientRow) -> Self {
        ClientView {
            role: c.role,
            status: if c.revoked_at.is_some() {
                ClientStatus::Revoked
            } else {
                ClientStatus::Active
            },
            client_id: c.id.into_string(),
            name: c.name,
            employer_id: c.employer_id.map(EmployerId::into_string),
            provider_id: c.provider_id.map(ProviderId::into_string),
            created_at: utc(c.created_at),
            secret_rotated_at: utc(c.secret_rotated_at),
            revoked_at: c.revoked_at.map(utc),
        }
    }
}

/// A client with its secret. The secret is shown this once and cannot be read again.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: ClientView,
    /// 256 random bits; store it now, it is never shown again.
    pub client_secret: String,
}

fn secret_response(status: StatusCode, client: ClientRow, secret: String) -> HttpResponse {
    let location = format!("/v1/admin/clients/{}", client.id);
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CACHE_CONTROL, "no-store"));
    if status == StatusCode::CREATED {
        resp.insert_header((header::LOCATION, location));
    }
    resp.json(ClientWithSecret {
        client: client.into(),
        client_secret: secret,
    })
}

/// Creates an API client and returns its secret once.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    request_body = CreateClientRequest,
    responses(
        (status = 201, description = "Created; the secret is in this response only",
         body = ClientWithSecret,
         headers(("Location" = String, description = "The new client"))),
        (status = 409, description = "The employer or provider bound to is unknown or inactive",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, unknown fields, or fields the role does not \
            take (a binding not in the issued id form, a lowercase hyphenated UUID, among them)",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/clients")]
pub async fn create_client(
    admin: Admin,
    state: web::Data<AppState>,
    body: ApiJson<CreateClient>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let new = NewClient {
        name: body.name.trim().to_owned(),
        role: body.role,
        // Both were checked against the issued id form (422 otherwise).
        employer_id: body.employer_id.map(EmployerId::from_trusted),
        provider_id: body.provider_id.map(ProviderId::from_trusted),
    };
    let (row, secret) = clients::create(admin.0, &state.db, new).await?;
    Ok(secret_response(StatusCode::CREATED, row, secret))
}

/// Lists API clients (never their secrets).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "One page of clients", body = Page<ClientView>),
    ),
)]
#[get("/v1/admin/clients")]
pub async fn list_clients(
    admin: Admin,
    state: web::Data<AppState>,
    query: ApiQuery<PageQuery>,
) -> Result<web::Json<Page<ClientView>>, ApiError> {
    let (after, limit) = query.into_inner()?.resolve()?;
    let rows = clients::list(admin.0, &state.db, after, limit).await?;
    Ok(web::Json(Page::from_rows(
        rows,
        limit,
        |r| r.id.as_str(),
        ClientView::from,
    )))
}

/// Reads one API client.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, description = "The client", body = ClientView),
        (status = 404, description = "No such client",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/admin/clients/{id}")]
pub async fn get_client(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<ClientView>, ApiError> {
    let id = ClientId::from_trusted(id.get()?);
    let row = clients::get(admin.0, &state.db, id).await?;
    Ok(web::Json(row.into()))
}

/// Replaces a client's secret. The old secret stops working at once, and so do access tokens
/// issued before the rotation. The new secret is shown once.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, description = "The client with its new secret", body = ClientWithSecret),
        (status = 404, description = "No such client",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The client is revoked",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/clients/{id}/rotate-secret")]
pub async fn rotate_secret(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<HttpResponse, ApiError> {
    let id = ClientId::from_trusted(id.get()?);
    let (row, secret) = clients::rotate_secret(admin.0, &state.db, &state.auth_cache, id).await?;
    Ok(secret_response(StatusCode::OK, row, secret))
}

/// Revokes a client for good: its secret and every token it holds stop working at once.
/// Revoking a revoked client changes nothing and answers the same.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Client id")),
    responses(
        (status = 200, description = "The revoked client", body = ClientView),
        (status = 404, description = "No such client",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A client cannot revoke itself",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[post("/v1/admin/clients/{id}/revoke")]
pub async fn revoke_client(
    admin: Admin,
    state: web::Data<AppState>,
    id: PathId,
) -> Result<web::Json<ClientView>, ApiError> {
    let id = ClientId::from_trusted(id.get()?);
    let row = clients::revoke(admin.0, &state.db, &state.auth_cache, id).await?;
    Ok(web::Json(row.into()))
}
