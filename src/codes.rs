//! Stored codes: the closed vocabularies (statuses, urgencies, services, outcomes, roles, feed
//! kinds) that live in TEXT columns under the same snake_case names the API uses.
//!
//! A type that implements [`Code`] and derives `AsExpression`/`FromSqlRow` gets its column
//! mapping from [`text_code!`], on both backends: rows hold the enum, never a string, and a
//! code the program does not know is a deserialisation error (an internal error for the
//! request), never a silent default.

/// A closed vocabulary stored as snake_case text.
pub trait Code: Sized + Copy + 'static {
    const ALL: &'static [Self];
    fn code(self) -> &'static str;
    fn from_code(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.code() == s)
    }
}

/// Implements diesel's `ToSql`/`FromSql` for TEXT on any backend for each listed [`Code`]
/// type (which must also derive `diesel::AsExpression` and `diesel::FromSqlRow` with
/// `#[diesel(sql_type = diesel::sql_types::Text)]`).
#[macro_export]
macro_rules! text_code {
    ($($t:ty),+ $(,)?) => {$(
        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $t
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                $crate::codes::Code::code(*self).to_sql(out)
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $t
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let stored = String::from_sql(bytes)?;
                <$t as $crate::codes::Code>::from_code(&stored).ok_or_else(|| {
                    format!("unknown {} code {stored:?}", stringify!($t)).into()
                })
            }
        }
    )+};
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;

    use crate::db::AnyConnection;
    use crate::directory::model::Urgency;

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        code: Urgency,
    }

    fn memory() -> AnyConnection {
        AnyConnection::Sqlite(SqliteConnection::establish(":memory:").expect("in-memory SQLite"))
    }

    #[test]
    fn a_stored_code_reads_back_as_its_enum_and_an_unknown_one_is_an_error() {
        let mut conn = memory();
        let row: Row = diesel::sql_query("SELECT ? AS code")
            .bind::<diesel::sql_types::Text, _>(Urgency::Crisis)
            .get_result(&mut conn)
            .expect("a known code");
        assert_eq!(row.code, Urgency::Crisis);
        let unknown = diesel::sql_query("SELECT 'Crisis' AS code").get_result::<Row>(&mut conn);
        let err = unknown
            .err()
            .expect("an unknown code must not read as any variant");
        assert!(err.to_string().contains("unknown"), "{err}");
    }
}
