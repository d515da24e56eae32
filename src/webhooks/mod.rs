//! Push delivery of each provider's feed events to its own HTTPS endpoints, and of alerts to
//! the EAP operators' endpoints, signed as Standard Webhooks and carrying ids only. `model.rs`:
//! signing, payloads, the retry schedule, the URL and address policy (pure). `store.rs`: endpoints, the outbox and attempts. `service.rs`:
//! what each request does. `client.rs`: the outbound client, which checks every address it
//! connects to. `delivery.rs`: the worker (both sides). `http.rs`: the providers' handlers (and
//! the admin's view of them). `operator.rs`: the operator endpoints' handlers.

pub mod client;
pub mod delivery;
pub mod http;
pub mod model;
pub mod operator;
pub mod service;
pub mod store;
