//! Readiness: the database answers and every migration is applied.

use crate::db::Db;
use crate::error::ApiError;

pub async fn ready(db: &Db) -> Result<(), ApiError> {
    db.run(|conn| crate::db::check_ready(conn).map_err(ApiError::Unavailable))
        .await
}
