//! eap-referrals: confidential Employee Assistance Programme referrals.

pub mod app;
pub mod audit;
pub mod auth;
pub mod codes;
pub mod config;
pub mod console;
pub mod db;
pub mod demo;
pub mod directory;
pub mod error;
pub mod extract;
pub mod forwarded;
pub mod head;
pub mod health;
pub mod ids;
pub mod keys;
pub mod metrics;
pub mod openapi;
pub mod outside;
pub mod pagination;
pub mod privacy;
pub mod ratelimit;
pub mod referrals;
pub mod reports;
pub mod routes;
pub mod routing;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod validation;
pub mod webhooks;
pub mod workflow;

pub use app::Application;
pub use config::Config;
