//! The access log as a test reads it: the rows each request left, and a log broken on purpose.

use eap_referrals::db::Backend;

use super::TestApp;

#[derive(Debug, Clone, diesel::Queryable)]
pub struct AuditRow {
    pub action: String,
    pub outcome: String,
    pub http_status: i32,
    pub actor_client_id: Option<String>,
    pub resource_id: Option<String>,
    pub request_id: String,
    pub actor_role: Option<String>,
    pub tenant_id: Option<String>,
    pub source_addr: Option<String>,
}

impl TestApp {
    /// Every access-log row, oldest first.
    pub fn audit_rows(&self) -> Vec<AuditRow> {
        use diesel::prelude::*;
        use eap_referrals::db::schema::audit_events::dsl as a;
        let mut conn = self.conn();
        a::audit_events
            .order(a::id.asc())
            .select((
                a::action,
                a::outcome,
                a::http_status,
                a::actor_client_id,
                a::resource_id,
                a::request_id,
                a::actor_role,
                a::tenant_id,
                a::source_addr,
            ))
            .load::<AuditRow>(&mut **conn)
            .expect("read audit events")
    }

    pub fn audit_for_request(&self, request_id: &str) -> Vec<AuditRow> {
        self.audit_rows()
            .into_iter()
            .filter(|r| r.request_id == request_id)
            .collect()
    }

    /// Makes every access-log insert fail, the way a full disk or a lost table would.
    pub fn break_audit_log(&self) {
        self.break_audit_log_when("TRUE");
    }

    /// Makes the access-log inserts for which the SQL `condition` (over `NEW`) holds fail.
    pub fn break_audit_log_when(&self, condition: &str) {
        match self.backend {
            Backend::Sqlite => self.exec(&format!(
                "CREATE TRIGGER test_break_audit BEFORE INSERT ON audit_events \
                 WHEN {condition} \
                 BEGIN SELECT RAISE(ABORT, 'access log broken by test'); END;"
            )),
            Backend::Postgres => self.exec(&format!(
                "CREATE OR REPLACE FUNCTION test_break_audit() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'access log broken by test'; END; $$; \
                 CREATE TRIGGER test_break_audit BEFORE INSERT ON audit_events \
                 FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION test_break_audit();"
            )),
        }
    }

    pub fn repair_audit_log(&self) {
        self.exec(match self.backend {
            Backend::Sqlite => "DROP TRIGGER test_break_audit",
            Backend::Postgres => "DROP TRIGGER test_break_audit ON audit_events",
        });
    }
}
