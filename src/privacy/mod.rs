//! Privacy operations on referrals: the retention purge (crypto-shredding when data falls due)
//! and erasure on request (the portal with the status token, or an admin).

pub mod http;
pub mod model;
pub mod service;
pub mod store;
