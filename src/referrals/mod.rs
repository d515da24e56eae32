//! Referrals: intake from HR portals, sealing of what identifies the person, status tokens.

pub mod crisis;
pub mod http;
pub mod intake;
pub mod keystore;
pub mod model;
pub mod seal;
pub mod service;
pub mod store;
pub mod token;
