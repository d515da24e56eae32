//! Admin API for the directory: employers, providers, contracts; and the HR portal's list of
//! its employer's providers. Every call is audited.

mod contracts;
mod employers;
mod portal;
mod providers;

use actix_web::http::header;
use actix_web::HttpResponse;
use serde::Serialize;

pub use contracts::*;
pub use employers::*;
pub use portal::*;
pub use providers::*;

fn created(location: String, body: impl Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(body)
}
