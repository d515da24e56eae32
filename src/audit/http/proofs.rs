//! Signed checkpoints, the key that verifies them, and inclusion and consistency proofs.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::audit::cursor;
use crate::audit::proofs::{self, CheckpointPage, ConsistencyProof, InclusionProof};
use crate::auth::caller::Auditor;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiQuery, PathId};
use crate::state::AppState;

pub type CheckpointQuery = cursor::CheckpointPaging;

/// Signed checkpoints (tree heads) of the access log: the latest and the history.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(CheckpointQuery),
    responses(
        (status = 200, description = "The latest checkpoint and one page of history",
         body = CheckpointPage),
    ),
)]
#[get("/v1/audit/checkpoints")]
pub async fn list_checkpoints(
    auditor: Auditor,
    state: web::Data<AppState>,
    query: ApiQuery<CheckpointQuery>,
) -> Result<web::Json<CheckpointPage>, ApiError> {
    let (before, limit) = query.into_inner()?.resolve()?;
    let page = proofs::checkpoints(&state.db, auditor.0.event(None), before, limit).await?;
    Ok(web::Json(page))
}

/// A JWK (RFC 8037 OKP) of a checkpoint signing key.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointJwk {
    #[schema(example = "OKP")]
    pub kty: &'static str,
    #[schema(example = "Ed25519")]
    pub crv: &'static str,
    /// The public key, base64url.
    pub x: String,
    /// The key id checkpoints name (RFC 7638 thumbprint).
    pub kid: String,
    #[schema(example = "EdDSA")]
    pub alg: &'static str,
    #[serde(rename = "use")]
    #[schema(example = "sig")]
    pub use_: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointJwks {
    pub keys: Vec<CheckpointJwk>,
}

/// The public key that verifies checkpoint signatures (a JWK Set). It is not the token key.
/// Save it once, from a trusted channel: it is all `eap-referrals audit verify` needs.
#[utoipa::path(
    tag = "audit",
    responses((status = 200, description = "JWK Set", body = CheckpointJwks)),
)]
#[get("/v1/audit/public-key")]
pub async fn public_key(state: web::Data<AppState>) -> HttpResponse {
    let key = &state.keys.checkpoint;
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(CheckpointJwks {
            keys: vec![CheckpointJwk {
                kty: "OKP",
                crv: "Ed25519",
                x: key.public_x(),
                kid: key.kid.clone(),
                alg: "EdDSA",
                use_: "sig",
            }],
        })
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProofQuery {
    /// A checkpointed tree size; default the latest checkpoint.
    #[validate(range(min = 1))]
    #[param(minimum = 1)]
    pub tree_size: Option<u64>,
}

/// An inclusion proof: where one event sits in the log, and the hashes that lead from its leaf
/// to a signed checkpoint's root (RFC 9162 §2.1.3).
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id"), ProofQuery),
    responses(
        (status = 200, description = "The proof", body = InclusionProof),
        (status = 404, description = "No such event in the sealed log",
         body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The event is not covered by that checkpoint yet, or no \
            checkpoint exists",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such event, or no checkpoint of that size",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown or malformed parameter",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/audit/events/{id}/proof")]
pub async fn inclusion_proof(
    auditor: Auditor,
    state: web::Data<AppState>,
    id: PathId,
    query: ApiQuery<ProofQuery>,
) -> Result<web::Json<InclusionProof>, ApiError> {
    let id = id.get()?;
    let q = query.into_inner()?;
    let event = auditor.0.event(Some(&id));
    let proof = proofs::inclusion(&state.db, event, id, q.tree_size).await?;
    Ok(web::Json(proof))
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older tree size: any size up to `to_size` (typically that of a checkpoint you
    /// hold; 0, the empty log, has the empty proof).
    #[validate(range(max = 9_223_372_036_854_775_807u64))]
    #[param(minimum = 0, maximum = 9_223_372_036_854_775_807i64)]
    pub from_size: u64,
    /// The newer checkpoint's tree size; default the latest.
    #[validate(range(min = 1))]
    #[param(minimum = 1)]
    pub to_size: Option<u64>,
}

/// A consistency proof from any earlier tree size to a checkpoint: the newer log extends the
/// older one without changing any of its events (RFC 9162 §2.1.4). Every size up to `to_size`
/// has one, so a checkpoint an auditor kept can always be checked against the log.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The proof", body = ConsistencyProof),
        (status = 409, description = "No checkpoint has been issued yet",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No checkpoint of size `to_size`, or `from_size` after \
            it (the log is shorter than the size asked: no such proof)",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing, unknown or malformed parameter",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[get("/v1/audit/consistency")]
pub async fn consistency_proof(
    auditor: Auditor,
    state: web::Data<AppState>,
    query: ApiQuery<ConsistencyQuery>,
) -> Result<web::Json<ConsistencyProof>, ApiError> {
    let q = query.into_inner()?;
    let proof =
        proofs::consistency(&state.db, auditor.0.event(None), q.from_size, q.to_size).await?;
    Ok(web::Json(proof))
}
