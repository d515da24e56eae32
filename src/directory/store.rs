use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{employers, providers};
use crate::db::AnyConnection;

/// Which directory table: both hold the same minimal record for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Employer,
    Provider,
}

#[derive(Debug, Clone, Queryable)]
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut AnyConnection, kind: Kind, name: &str) -> QueryResult<OrgRow> {
    let now = crate::db::now();
    let row = OrgRow {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        active: true,
        created_at: now,
        updated_at: now,
    };
    match kind {
        Kind::Employer => diesel::insert_into(employers::table)
            .values((
                employers::id.eq(&row.id),
                employers::name.eq(&row.name),
                employers::active.eq(true),
                employers::created_at.eq(now),
                employers::updated_at.eq(now),
            ))
            .execute(conn)?,
        Kind::Provider => diesel::insert_into(providers::table)
            .values((
                providers::id.eq(&row.id),
                providers::name.eq(&row.name),
                providers::active.eq(true),
                providers::created_at.eq(now),
                providers::updated_at.eq(now),
            ))
            .execute(conn)?,
    };
    Ok(row)
}

pub fn find(conn: &mut AnyConnection, kind: Kind, id: &str) -> QueryResult<Option<OrgRow>> {
    match kind {
        Kind::Employer => employers::table.find(id).first(conn).optional(),
        Kind::Provider => providers::table.find(id).first(conn).optional(),
    }
}

/// One page in id order (UUIDv7 ids, so creation order).
pub fn list(
    conn: &mut AnyConnection,
    kind: Kind,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<OrgRow>> {
    let after = after.unwrap_or("").to_owned();
    match kind {
        Kind::Employer => employers::table
            .filter(employers::id.gt(after))
            .order(employers::id.asc())
            .limit(limit)
            .load(conn),
        Kind::Provider => providers::table
            .filter(providers::id.gt(after))
            .order(providers::id.asc())
            .limit(limit)
            .load(conn),
    }
}
