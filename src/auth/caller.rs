//! Typed callers. A handler names the role it serves in its signature (`Admin`, `HrPortal`,
//! `ProviderCaller`, `Auditor`); the extractor verifies the bearer token, checks the client is
//! still active, checks the role, and logs every refusal before answering 401 or 403.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, ResponseError};

use super::cache::ClientStatus;
use super::model::{Claims, Code, Role};
use super::store;
use crate::audit::{self, AuditEvent, Operation};
use crate::db::{write_tx, AnyConnection, Db};
use crate::error::ApiError;
use crate::extract::RequestCtx;
use crate::ids::{ClientId, EmployerId, ProviderId};
use crate::state::AppState;

/// An authenticated client and the operation it is performing.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: ClientId,
    pub role: Role,
    /// The bound employer (hr_portal) or provider (provider) id.
    pub tenant_id: Option<String>,
    pub ctx: RequestCtx,
    pub op: Operation,
    pub actor: Actor,
}

/// Who the access log names as having acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The client that presented the token (every HTTP request).
    Client,
    /// The operator at the command line, using a client's role and tenant (`eap-referrals
    /// demo`). Logged as the other commands log themselves (`admin create-client`): role
    /// `operator`, no client id, source `local-cli`, since no client authenticated.
    Operator,
}

impl Caller {
    /// The command line performing `method route` with `client`'s role and tenant, so a
    /// command runs the same service code, checks and access-log writes as a request would.
    pub fn at_command_line(
        client: &super::store::ClientRow,
        method: &str,
        route: &str,
    ) -> Result<Caller, ApiError> {
        let op = audit::operation(method, route).ok_or_else(|| {
            ApiError::Internal(format!("{method} {route} is not in the operation table"))
        })?;
        let tenant = client.employer_id.as_ref().map(|e| e.as_str());
        let tenant = tenant.or(client.provider_id.as_ref().map(|p| p.as_str()));
        Ok(Caller {
            client_id: client.id.clone(),
            role: client.role,
            tenant_id: tenant.map(str::to_owned),
            ctx: RequestCtx::command_line(),
            op,
            actor: Actor::Operator,
        })
    }

    /// The access-log event of this caller's operation succeeding on one resource, logged with
    /// the operation's success status (the status its handler sends).
    pub fn event(&self, resource_id: Option<&str>) -> AuditEvent {
        self.event_with(resource_id, self.op.ok)
    }

    fn event_with(&self, resource_id: Option<&str>, status: u16) -> AuditEvent {
        let mut e = AuditEvent::anonymous(&self.ctx, self.op, status).resource(resource_id);
        match self.actor {
            Actor::Client => {
                e.actor_client_id = Some(self.client_id.to_string());
                e.actor_role = Some(self.role.code().to_owned());
            }
            Actor::Operator => e.actor_role = Some(audit::model::OPERATOR_ROLE.to_owned()),
        }
        e.tenant_id = self.tenant_id.clone();
        e
    }

    /// Refuses the operation: logs the refusal in a transaction of its own, with the status
    /// `err` answers, and returns `err`. For refusals decided outside (or after the rollback
    /// of) the work's own transaction.
    pub fn refuse<T>(
        &self,
        conn: &mut AnyConnection,
        resource_id: Option<&str>,
        err: ApiError,
    ) -> Result<T, ApiError> {
        let status = err.status_code().as_u16();
        audit::store::record_alone(conn, &[self.event_with(resource_id, status)])?;
        Err(err)
    }

    /// Runs `work` in one write transaction and records, in that same transaction, one success
    /// event for each resource id it returns (none for an empty read). If the events cannot be
    /// written the work is rolled back and the caller gets 503 (fail closed).
    pub async fn audited<T, F>(self, db: &Db, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<(T, Vec<String>), ApiError> + Send + 'static,
        T: Send + 'static,
    {
        db.run(move |conn| self.audited_in(conn, work)).await
    }

    /// As [`Caller::audited`], and a refusal the work decides (any 4xx: a 404, a 409, a 422)
    /// is logged too, naming `resource_id`, in a transaction of its own after the work's
    /// rollback. For operations whose refusals the access log must show, not only their
    /// successes.
    pub async fn audited_with_refusals<T, F>(
        self,
        db: &Db,
        resource_id: Option<String>,
        work: F,
    ) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<(T, Vec<String>), ApiError> + Send + 'static,
        T: Send + 'static,
    {
        db.run(move |conn| match self.audited_in(conn, work) {
            Err(e) if e.status_code().is_client_error() => {
                self.refuse(conn, resource_id.as_deref(), e)
            }
            other => other,
        })
        .await
    }

    fn audited_in<T, F>(&self, conn: &mut AnyConnection, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<(T, Vec<String>), ApiError>,
    {
        write_tx(conn, |conn| {
            let (value, ids) = work(conn)?;
            let events: Vec<AuditEvent> = ids.iter().map(|id| self.event(Some(id))).collect();
            audit::record(conn, &events)?;
            Ok(value)
        })
    }
}

pub struct Admin(pub Caller);
pub struct Auditor(pub Caller);
pub struct HrPortal {
    pub caller: Caller,
    pub employer_id: EmployerId,
}
pub struct ProviderCaller {
    pub caller: Caller,
    pub provider_id: ProviderId,
}

type CallerFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

macro_rules! role_extractor {
    ($ty:ty, $role:expr, $build:expr) => {
        impl FromRequest for $ty {
            type Error = ApiError;
            type Future = CallerFuture<Self>;

            fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
                let fut = authenticate(req, $role);
                Box::pin(async move { fut.await.map($build) })
            }
        }
    };
}

role_extractor!(Admin, Role::Admin, Admin);
role_extractor!(Auditor, Role::Auditor, Auditor);
// A verified token of these roles names its tenant (`TokenService::verify` checks the binding).
role_extractor!(HrPortal, Role::HrPortal, |caller: Caller| HrPortal {
    employer_id: EmployerId::from_trusted(caller.tenant_id.clone().unwrap_or_default()),
    caller,
});
role_extractor!(ProviderCaller, Role::Provider, |caller: Caller| {
    ProviderCaller {
        provider_id: ProviderId::from_trusted(caller.tenant_id.clone().unwrap_or_default()),
        caller,
    }
});

const INVALID_TOKEN: &str = "the access token is invalid, expired or revoked";

/// Why the door said no, before we know who is knocking.
enum Refusal {
    Missing,
    Invalid,
}

fn authenticate(req: &HttpRequest, required: Role) -> CallerFuture<Caller> {
    let checked = verify(req, required);
    let req = req.clone();
    Box::pin(async move {
        let caller = checked.await?;
        // The budget is spent only by a caller who got through the door: an anonymous flood
        // is the token endpoint's and the network's to stop, and must not drain a client's.
        spend_budget(&req, &caller)?;
        Ok(caller)
    })
}

/// Spends one request of the caller's budget, leaving the verdict for the response headers.
/// A refusal is not an access-log event: nothing was touched, and logging it would turn a
/// flood into database writes. It is counted in the logs' status codes.
fn spend_budget(req: &HttpRequest, caller: &Caller) -> Result<(), ApiError> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Ok(());
    };
    let limiter = state.limits.for_role(caller.role);
    let Some(verdict) = limiter.check(caller.client_id.as_str()) else {
        return Ok(());
    };
    req.extensions_mut()
        .insert(crate::ratelimit::Applied(verdict));
    match verdict.decision {
        crate::ratelimit::Decision::Allowed { .. } => Ok(()),
        crate::ratelimit::Decision::Limited { retry_after } => Err(ApiError::TooManyRequests {
            retry_after,
            detail: "this client's request budget is spent; retry after Retry-After seconds",
        }),
    }
}

fn verify(req: &HttpRequest, required: Role) -> CallerFuture<Caller> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let ctx = RequestCtx::of(req);
    let route = req.match_pattern().unwrap_or_default();
    let op = audit::operation(req.method().as_str(), &route);
    let resource_id = req
        .match_info()
        .get("id")
        .and_then(crate::extract::parse_id);
    let bearer = bearer_token(req);
    Box::pin(async move {
        let state = state.ok_or_else(|| ApiError::Internal("application state missing".into()))?;
        let op = op.ok_or_else(|| {
            ApiError::Internal(format!("{route} is not in the access-log operation table"))
        })?;
        let now = jsonwebtoken::get_current_timestamp();
        let claims = match bearer {
            None => Err(Refusal::Missing),
            Some(token) => match state.auth_cache.token(&token, now) {
                Some(c) => Ok(c),
                None => state
                    .tokens
                    .verify(&token)
                    .map_err(|_| Refusal::Invalid)
                    .inspect(|c| {
                        state.auth_cache.remember_token(&token, c);
                    }),
            },
        };
        // The common case needs no database: a known token of a client read moments ago.
        if let Ok(c) = &claims {
            if let Some(Some(status)) = state.auth_cache.client(&c.client_id) {
                if status.admits(c) && c.role == required {
                    return Ok(Caller {
                        tenant_id: c.employer_id.clone().or(c.provider_id.clone()),
                        client_id: ClientId::from_trusted(c.client_id.clone()),
                        role: c.role,
                        ctx,
                        op,
                        actor: Actor::Client,
                    });
                }
            }
        }
        let db = state.db.clone();
        let st = state.clone();
        db.run(move |conn| {
            let refuse = |conn: &mut _, refusal: Refusal| {
                let err = match refusal {
                    Refusal::Missing => ApiError::AuthRequired,
                    Refusal::Invalid => ApiError::Unauthorized(INVALID_TOKEN),
                };
                let status = err.status_code().as_u16();
                let event = AuditEvent::anonymous(&ctx, op, status);
                audit::store::record_alone(conn, &[event.resource(resource_id.as_deref())])?;
                Err(err)
            };
            let claims: Claims = match claims {
                Ok(c) => c,
                Err(r) => return refuse(conn, r),
            };
            // Revocation and rotation take effect at once here (the handlers forget the client)
            // and within CLIENT_TTL on other instances; a token minted under an earlier secret
            // version stops working.
            let client_id = ClientId::from_trusted(claims.client_id.clone());
            let status = store::find(conn, &client_id)?.map(|c| ClientStatus {
                role: c.role,
                revoked: c.revoked_at.is_some(),
                secret_version: c.secret_version(),
                employer_id: c.employer_id.map(|e| e.into_string()),
                provider_id: c.provider_id.map(|p| p.into_string()),
            });
            st.auth_cache
                .remember_client(&claims.client_id, status.clone());
            if !status.is_some_and(|s| s.admits(&claims)) {
                return refuse(conn, Refusal::Invalid);
            }
            let caller = Caller {
                tenant_id: claims.employer_id.or(claims.provider_id),
                client_id,
                role: claims.role,
                ctx,
                op,
                actor: Actor::Client,
            };
            if caller.role != required {
                return caller.refuse(conn, resource_id.as_deref(), ApiError::Forbidden);
            }
            Ok(caller)
        })
        .await
    })
}

pub(crate) fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}
