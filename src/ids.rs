//! Typed identifiers. Every id is a UUIDv7 stored as TEXT (diesel's `MultiConnection` has no
//! UUID type); a newtype per kind of object means a provider id cannot be passed where a
//! referral id is expected, which plain strings allowed (`claim_slot(conn, provider, holder)`).
//!
//! They serialise as the plain string, so the HTTP contract is unchanged; in `ToSchema`
//! structs write `#[schema(value_type = String)]` on such fields.

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident;)+) => {$(
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
            diesel::AsExpression, diesel::FromSqlRow,
        )]
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh id (UUIDv7, so ids sort in creation order and serve as cursors).
            pub fn generate() -> Self {
                $name(uuid::Uuid::now_v7().to_string())
            }

            /// An id of the issued form (lowercase hyphenated UUID), or `None`: text that
            /// cannot be an id never reaches SQL or the access log.
            pub fn parse(s: &str) -> Option<Self> {
                $crate::extract::is_issued_id(s).then(|| $name(s.to_owned()))
            }

            /// Wraps text already known to be such an id (read from the database, or from a
            /// verified token's claims).
            pub fn from_trusted(s: String) -> Self {
                $name(s)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                self.0.as_str().to_sql(out)
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $name
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                String::from_sql(bytes).map($name)
            }
        }
    )+};
}

id_type! {
    /// A referral (a request for help).
    ReferralId;
    /// An employer (an organisation that buys the programme; an HR portal's tenant).
    EmployerId;
    /// A provider (an EAP provider; a provider client's tenant).
    ProviderId;
    /// A contract between an employer and a provider.
    ContractId;
    /// An API client (OAuth 2.0 client id).
    ClientId;
}
