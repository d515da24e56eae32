//! Employer utilisation reports: aggregate counts with small-cell suppression
//! (docs/DESIGN.md §7).

pub mod http;
pub mod model;
pub mod service;
pub mod store;
