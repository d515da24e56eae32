//! Clients as admins manage them: bindings validated against the documented variants, lists
//! paged without secrets, and what cannot be revoked or found.

mod common;

use common::{problem, request_id, spawn_app};
use serde_json::{json, Value};

#[actix_web::test]
async fn client_bindings_are_validated() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let employer = app.create_employer(&token, "Acme").await;
    // Each body is checked against the documented variant of the role it names.
    let cases = [
        (
            json!({"name": "p", "role": "hr_portal"}),
            "/employer_id",
            "required",
        ),
        (
            json!({"name": "p", "role": "provider"}),
            "/provider_id",
            "required",
        ),
        (
            json!({"name": "p", "role": "admin", "employer_id": employer}),
            "/employer_id",
            "unknown_field",
        ),
        (
            json!({"name": "p", "role": "hr_portal", "employer_id": employer, "provider_id": employer}),
            "/provider_id",
            "unknown_field",
        ),
        // Text that cannot be an id is malformed, whatever the directory holds; a NUL byte
        // included (PostgreSQL refuses it in text: it must never reach SQL).
        (
            json!({"name": "p", "role": "hr_portal", "employer_id": "no-such"}),
            "/employer_id",
            "pattern",
        ),
        (
            json!({"name": "p", "role": "provider", "provider_id": "a\u{0}b"}),
            "/provider_id",
            "pattern",
        ),
        (
            json!({"name": "p", "role": "hr_portal", "employer_id": employer.to_uppercase()}),
            "/employer_id",
            "pattern",
        ),
        (
            json!({"name": "p", "role": "superuser"}),
            "/role",
            "invalid_value",
        ),
        // `null` is not "absent": no documented variant has a nullable binding, and an admin
        // has no binding at all.
        (
            json!({"name": "p", "role": "admin", "employer_id": null}),
            "/employer_id",
            "unknown_field",
        ),
        (
            json!({"name": "p", "role": "provider", "provider_id": null}),
            "/provider_id",
            "invalid_type",
        ),
        (
            json!({"name": "\u{7}bell", "role": "admin"}),
            "/name",
            "pattern",
        ),
    ];
    // A well-formed binding to no active employer or provider conflicts with the directory's
    // state: 409, naming the field.
    for (body, field) in [
        (
            json!({"name": "p", "role": "hr_portal", "employer_id": "00000000-0000-4000-8000-000000000000"}),
            "employer_id",
        ),
        (
            json!({"name": "p", "role": "provider", "provider_id": employer}),
            "provider_id",
        ),
    ] {
        let p = problem(app.post_json("/v1/admin/clients", &token, &body).await, 409).await;
        assert!(p["detail"].as_str().unwrap().starts_with(field), "{p}");
    }
    for (body, pointer, code) in cases {
        let resp = app.post_json("/v1/admin/clients", &token, &body).await;
        let p = problem(resp, 422).await;
        assert_eq!(
            (
                p["errors"][0]["pointer"].as_str(),
                p["errors"][0]["code"].as_str()
            ),
            (Some(pointer), Some(code)),
            "{body}"
        );
    }
}

#[actix_web::test]
async fn client_lists_page_with_cursors_and_never_show_secrets() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    for i in 0..4 {
        app.create_client(&token, json!({"name": format!("c{i}"), "role": "auditor"}))
            .await;
    }
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            Some(c) => format!("/v1/admin/clients?limit=2&after={c}"),
            None => "/v1/admin/clients?limit=2".into(),
        };
        let resp = app.get(&path, &token).await;
        let rid = request_id(&resp);
        let page: Value = resp.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items
            .iter()
            .all(|c| c.get("client_secret").is_none() && c.get("secret_hash").is_none()));
        // One access event per client delivered, none for an empty page.
        assert_eq!(app.audit_for_request(&rid).len(), items.len());
        seen.extend(
            items
                .iter()
                .map(|c| c["client_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => next = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "the admin and four more: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "in order, no repeats");
    problem(app.get("/v1/admin/clients?limit=0", &token).await, 422).await;
    problem(app.get("/v1/admin/clients?after=%%%", &token).await, 422).await;
    problem(app.get("/v1/admin/clients?colour=blue", &token).await, 422).await;
}

#[actix_web::test]
async fn a_client_cannot_revoke_itself_and_unknown_ids_are_404() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin();
    let token = app.token(&admin).await;
    let resp = app
        .post_json(
            &format!("/v1/admin/clients/{}/revoke", admin.id),
            &token,
            &json!(null),
        )
        .await;
    problem(resp, 409).await;
    problem(
        app.get(
            "/v1/admin/clients/00000000-0000-0000-0000-000000000000",
            &token,
        )
        .await,
        404,
    )
    .await;
    problem(app.get("/v1/admin/employers/nope", &token).await, 404).await;
    let resp = app
        .post_json("/v1/admin/clients/nope/rotate-secret", &token, &json!(null))
        .await;
    problem(resp, 404).await;
}

/// The documented body of `POST /v1/admin/clients` is one variant per role with exactly the
/// fields that role takes: each variant's required fields are accepted, and any property a
/// variant does not list is refused.
#[actix_web::test]
async fn documented_client_variants_are_exactly_what_is_accepted() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let employer = app.create_employer(&token, "Acme").await;
    let provider = app.create_provider(&token, "Care Co").await;
    let spec: Value = app
        .get_anonymous("/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    let schemas = &spec["components"]["schemas"];
    let variants = schemas["CreateClientRequest"]["oneOf"].as_array().unwrap();
    let mut roles = Vec::new();
    for reference in variants {
        let name = reference["$ref"].as_str().unwrap();
        let v = &schemas[name.trim_start_matches("#/components/schemas/")];
        assert_eq!(v["additionalProperties"], false, "{v}");
        let role = v["properties"]["role"]["enum"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let mut body = json!({"name": "n", "role": role});
        for f in v["required"].as_array().unwrap() {
            match f.as_str().unwrap() {
                "employer_id" => body["employer_id"] = json!(employer),
                "provider_id" => body["provider_id"] = json!(provider),
                _ => {}
            }
        }
        let resp = app.post_json("/v1/admin/clients", &token, &body).await;
        assert_eq!(resp.status(), 201, "{body}");
        for (field, value) in [("employer_id", &employer), ("provider_id", &provider)] {
            if v["properties"].get(field).is_none() {
                let mut extra = body.clone();
                extra[field] = json!(value);
                let resp = app.post_json("/v1/admin/clients", &token, &extra).await;
                problem(resp, 422).await;
            }
        }
        roles.push(role);
    }
    roles.sort();
    assert_eq!(roles, ["admin", "auditor", "hr_portal", "provider"]);
}
