//! Liveness and readiness probes.

pub mod http;
