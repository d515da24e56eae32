//! Liveness and readiness probes.

pub mod http;
pub mod service;
