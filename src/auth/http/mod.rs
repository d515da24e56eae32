//! Identity's HTTP surface: the token endpoint, the public keys, the authorization server's
//! metadata, and client administration.

mod clients;
mod metadata;
mod oauth;

// The handlers' `#[utoipa::path]` attributes name schemas as `super::model::…`.
use crate::auth::model;

pub use clients::*;
pub use metadata::*;
pub use oauth::*;
