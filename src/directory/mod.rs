//! The directory: employers (who buy the programme) and providers (who deliver it).
//!
//! Providers carry the attributes routing matches on; contracts say which providers serve
//! which employer, with what priority, and when.

pub mod capacity;
pub mod http;
pub mod model;
pub mod service;
pub mod store;
