//! eap-referrals: confidential Employee Assistance Programme referrals.

pub mod app;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod health;
pub mod keys;
pub mod openapi;
pub mod telemetry;

pub use app::Application;
pub use config::Config;
