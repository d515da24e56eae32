//! Identity and access: API clients, OAuth 2.0 client-credentials tokens, typed callers.

pub mod cache;
pub mod caller;
pub mod clients;
pub mod http;
pub mod model;
pub mod store;
pub mod token;

pub use caller::{Admin, Auditor, Caller, HrPortal, ProviderCaller};
pub use model::Role;
