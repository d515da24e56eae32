//! The provider's side of a referral: its feed, its referrals, accept/decline/status, and the
//! audited contact reveal.

pub mod actions;
pub mod feed;
pub mod http;
pub mod model;
pub mod store;
pub mod sweep;
