//! Identity's HTTP surface: the token endpoint, the public keys, and client administration.

mod clients;
mod oauth;

// The handlers' `#[utoipa::path]` attributes name schemas as `super::model::…`.
use crate::auth::model;

pub use clients::*;
pub use oauth::*;
