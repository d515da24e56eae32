//! Routing: which provider a referral is offered to next, and why every other one was not.

pub mod http;
pub mod model;
pub mod store;
