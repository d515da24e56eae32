//! Serving the console's embedded files. Not API operations (no token, nothing logged): the
//! files are the same for everyone and hold no data; the data comes from the API.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

use crate::error::ApiError;

/// `/console` → `/console/`, so the page's relative module paths resolve under it.
pub async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

/// `/console/` is the page; `/console/{file}` one of its files; anything else 404.
pub async fn file(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = match path.as_str() {
        "" => "index.html",
        other => other,
    };
    let asset = super::asset(name).ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(asset.body))
}
