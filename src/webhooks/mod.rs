//! Push delivery of each provider's feed events to its own HTTPS endpoints, signed as Standard
//! Webhooks and carrying ids only. `model.rs`: signing, payloads, the retry schedule, the URL
//! and address policy (pure). `store.rs`: endpoints, the outbox and attempts. `service.rs`:
//! what each request does. `client.rs`: the outbound client, which checks every address it
//! connects to. `delivery.rs`: the worker. `http.rs`: the handlers.

pub mod client;
pub mod delivery;
pub mod http;
pub mod model;
pub mod service;
pub mod store;
