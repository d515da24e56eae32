//! Routing: which provider a referral is offered to next, and why every other one was not; the
//! offer itself, and the admin's queue of referrals no provider could take.

pub mod affiliations;
pub mod cache;
pub mod http;
pub mod model;
pub mod offer;
pub mod preferences;
pub mod service;
pub mod store;
