//! Hand-written PostgreSQL statements that each connection prepares once and then reuses.
//!
//! Diesel keeps a prepared statement per connection for most of its query builder, but never
//! for `sql_query` (whose text it cannot trust to stay the same), nor for an `UPDATE` or an
//! `INSERT` with a nullable value. Those are parsed, analysed and planned by PostgreSQL on every
//! execution: on a submission that was a third of PostgreSQL's CPU time. A [`Prepared`]
//! statement's text is fixed at compile time, so diesel may cache it under that text, and
//! PostgreSQL plans it once per connection (a generic plan after its first few executions).

use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// A statement whose SQL is a constant with `$1`, `$2`, ... placeholders (each may appear more
/// than once), and its values bound in that order. The text must hold no `$` other than the
/// placeholders (no dollar quoting).
pub struct Prepared<'a> {
    sql: &'static str,
    binds: Vec<Box<dyn Bind + 'a>>,
}

/// A statement of `sql` to bind values to with [`Prepared::bind`].
pub fn prepared(sql: &'static str) -> Prepared<'static> {
    Prepared {
        sql,
        binds: Vec::new(),
    }
}

impl<'a> Prepared<'a> {
    /// Binds the next placeholder (`$1` first) to `value` as SQL type `ST`.
    pub fn bind<ST, V>(self, value: V) -> Prepared<'a>
    where
        Pg: HasSqlType<ST>,
        V: ToSql<ST, Pg> + 'a,
        ST: 'static,
    {
        let mut binds = self.binds;
        binds.push(Box::new(Typed::<ST, V>(value, PhantomData)));
        Prepared {
            sql: self.sql,
            binds,
        }
    }
}

trait Bind {
    fn push<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

struct Typed<ST, V>(V, PhantomData<fn() -> ST>);

impl<ST, V> Bind for Typed<ST, V>
where
    Pg: HasSqlType<ST>,
    V: ToSql<ST, Pg>,
{
    fn push<'b>(&'b self, mut pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        pass.push_bind_param::<ST, V>(&self.0)
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Diesel numbers the parameters itself, in the order they are pushed: each placeholder
        // of the text becomes the next one, with the value it names (a repeated `$2` is bound
        // twice). The text is the same on every execution, and so is the cache's key.
        let mut rest = self.sql;
        while let Some(at) = rest.find('$') {
            pass.push_sql(&rest[..at]);
            let digits = rest[at + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(rest.len() - at - 1, |n| n);
            let n: usize = rest[at + 1..at + 1 + digits]
                .parse()
                .map_err(|_| placeholder_error(self.sql))?;
            let bind = n
                .checked_sub(1)
                .and_then(|i| self.binds.get(i))
                .ok_or_else(|| placeholder_error(self.sql))?;
            bind.push(pass.reborrow())?;
            rest = &rest[at + 1 + digits..];
        }
        pass.push_sql(rest);
        Ok(())
    }
}

fn placeholder_error(sql: &str) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(
        format!("a placeholder without its value in: {sql}").into(),
    )
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    // No type-level identity: diesel then keys its statement cache on the SQL text.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types::{BigInt, Text};

    #[test]
    fn placeholders_are_renumbered_in_order_and_repeats_bound_again() {
        let q = prepared("SELECT $2::text AS a, $1::bigint AS b, $2::text AS c")
            .bind::<BigInt, _>(7i64)
            .bind::<Text, _>("x");
        let sql = diesel::debug_query::<Pg, _>(&q).to_string();
        assert!(
            sql.starts_with("SELECT $1::text AS a, $2::bigint AS b, $3::text AS c"),
            "{sql}"
        );
        assert!(sql.contains(r#"binds: ["x", 7, "x"]"#), "{sql}");
    }

    #[test]
    fn a_placeholder_without_a_value_is_an_error_not_a_panic() {
        let q = prepared("SELECT $1, $2").bind::<BigInt, _>(1i64);
        let mut out = String::new();
        let err = std::fmt::write(
            &mut out,
            format_args!("{}", diesel::debug_query::<Pg, _>(&q)),
        );
        assert!(err.is_err(), "{out}");
    }
}
