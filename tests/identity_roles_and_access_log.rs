//! Roles and the access log: admin routes refuse every other role, every protected operation
//! has an access-log action, and the log is append-only and fails closed.

mod common;

use common::{problem, request_id, spawn_app};
use serde_json::{json, Value};

#[actix_web::test]
async fn every_admin_route_refuses_other_roles_with_403_and_logs_it() {
    let app = spawn_app().await;
    let admin_token = app.admin_token().await;
    let employer = app.create_employer(&admin_token, "Acme").await;
    let provider = app.create_provider(&admin_token, "Care Co").await;
    let others = [
        app.create_client(
            &admin_token,
            json!({"name": "p", "role": "hr_portal", "employer_id": employer}),
        )
        .await,
        app.create_client(
            &admin_token,
            json!({"name": "q", "role": "provider", "provider_id": provider}),
        )
        .await,
        app.create_client(&admin_token, json!({"name": "a", "role": "auditor"}))
            .await,
    ];
    let spec: Value = serde_json::to_value(eap_referrals::openapi::spec()).unwrap();
    let mut checked = 0;
    for client in &others {
        let token = app.token(client).await;
        for (path, item) in spec["paths"].as_object().unwrap() {
            if !path.starts_with("/v1/admin/") {
                continue;
            }
            for method in item.as_object().unwrap().keys() {
                let at = path.replace("{id}", &employer);
                let name = json!({"name": "x"});
                let resp = match method.as_str() {
                    "get" => app.get(&at, &token).await,
                    "post" => app.post_json(&at, &token, &name).await,
                    "patch" => app.patch_json(&at, &token, &name).await,
                    "delete" => app.delete(&at, &token).await,
                    other => panic!("unexpected method {other}"),
                };
                let rid = request_id(&resp);
                problem(resp, 403).await;
                let events = app.audit_for_request(&rid);
                assert_eq!(events.len(), 1, "{method} {path}");
                let e = &events[0];
                assert_eq!(
                    (e.outcome.as_str(), e.http_status),
                    ("denied", 403),
                    "{method} {path}"
                );
                assert_eq!(e.actor_client_id.as_deref(), Some(client.id.as_str()));
                assert!(e.actor_role.is_some());
                checked += 1;
            }
        }
    }
    assert_eq!(
        checked,
        3 * 32,
        "every admin operation for every other role"
    );
}

#[actix_web::test]
async fn every_protected_operation_is_in_the_access_log_table() {
    let spec: Value = serde_json::to_value(eap_referrals::openapi::spec()).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if common::client_operation(op) {
                assert!(
                    eap_referrals::audit::operation(&method.to_uppercase(), path).is_some(),
                    "{method} {path} has no access-log action"
                );
            }
        }
    }
    for (method, route) in eap_referrals::audit::model::protected_routes() {
        let item = &spec["paths"][route];
        assert!(
            item.get(method.to_lowercase()).is_some(),
            "{method} {route} is not an operation"
        );
    }
}

#[actix_web::test]
async fn a_broken_access_log_fails_closed() {
    let app = spawn_app().await;
    let admin_token = app.admin_token().await;
    let before = (app.count("employers"), app.count("audit_events"));
    app.break_audit_log();

    let resp = app
        .post_json(
            "/v1/admin/employers",
            &admin_token,
            &json!({"name": "Never"}),
        )
        .await;
    let body = problem(resp, 503).await;
    assert_eq!(body["type"], "urn:eap-referrals:problem:audit-unavailable");
    assert!(
        !body.to_string().contains("broken by test"),
        "the cause stays in the log"
    );
    let refused = app.get_anonymous("/v1/admin/employers").await;
    problem(refused, 503).await;
    let token = app
        .token_form(&[("grant_type", "client_credentials")])
        .await;
    assert_eq!(token.status(), 503, "no token without its access event");

    app.repair_audit_log();
    assert_eq!(
        (app.count("employers"), app.count("audit_events")),
        before,
        "nothing was committed"
    );
    let resp = app
        .post_json("/v1/admin/employers", &admin_token, &json!({"name": "Now"}))
        .await;
    assert_eq!(resp.status(), 201);
}

#[actix_web::test]
async fn the_access_log_is_append_only() {
    let app = spawn_app().await;
    app.admin_token().await;
    let mut conn = app.conn();
    use diesel::connection::SimpleConnection;
    let c: &mut eap_referrals::db::AnyConnection = &mut conn;
    assert!(c
        .batch_execute("UPDATE audit_events SET outcome = 'success'")
        .is_err());
    assert!(c.batch_execute("DELETE FROM audit_events").is_err());
    if app.backend == eap_referrals::db::Backend::Postgres {
        assert!(c.batch_execute("TRUNCATE audit_events").is_err());
    }
    drop(conn);
    assert_eq!(
        app.count("audit_events"),
        2,
        "client.create by the CLI, token.issue"
    );
}
