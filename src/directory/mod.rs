//! The directory: employers (who buy the programme) and providers (who deliver it).
//!
//! Minimal records for now (id, name, active) so API clients can be bound to them.

pub mod http;
pub mod model;
pub mod store;
