//! What a test arranges before it acts: clients and their tokens, the directory, a portal ready
//! to submit, and the rows a referral left.

use reqwest::{Method, Response};
use serde_json::{json, Value};

use super::{Client, TestApp};
use eap_referrals::ids::ClientId;

/// An employer with a contracted provider and an HR portal client, ready to submit.
pub struct Portal {
    pub admin_token: String,
    pub employer: String,
    pub provider: String,
    pub client: Client,
    pub token: String,
}

/// A valid submission; tests change one field at a time.
pub fn referral_body() -> Value {
    json!({
        "service_type": "counselling",
        "urgency": "routine",
        "modality": "video",
        "language": "en",
        "region": "GB-ENG",
        "employee_ref": "EMP-0001",
        "contact": {
            "preferred_name": "Sam",
            "phone": "+447700900123",
            "email": "sam@example.org",
            "best_time_to_contact": "weekday evenings",
            "voicemail_consent": true
        },
        "note": "Prefers a counsellor with NHS experience."
    })
}

/// The `id` of a 201's body.
async fn created_id(resp: Response) -> String {
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

impl TestApp {
    /// Bootstraps an admin the way an operator does (the CLI path).
    pub fn bootstrap_admin(&self) -> Client {
        let mut conn = self.conn();
        let (row, secret) = eap_referrals::auth::clients::create_from_cli(
            &mut conn,
            &eap_referrals::auth::store::NewClient {
                name: "test admin".into(),
                role: eap_referrals::auth::Role::Admin,
                employer_id: None,
                provider_id: None,
            },
        )
        .expect("create admin");
        Client {
            id: row.id.into_string(),
            secret,
        }
    }

    /// The version of a client's secret that its tokens carry (`sv`).
    pub fn secret_version(&self, client: &str) -> i64 {
        let mut conn = self.conn();
        eap_referrals::auth::store::find(&mut conn, &ClientId::from_trusted(client.into()))
            .unwrap()
            .unwrap()
            .secret_version()
    }

    pub async fn token(&self, client: &Client) -> String {
        let resp = self.token_response(client).await;
        assert_eq!(resp.status(), 200, "token for {}", client.id);
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn admin_token(&self) -> String {
        let admin = self.bootstrap_admin();
        self.token(&admin).await
    }

    pub async fn create_employer(&self, admin_token: &str, name: &str) -> String {
        let body = json!({ "name": name });
        created_id(
            self.post_json("/v1/admin/employers", admin_token, &body)
                .await,
        )
        .await
    }

    pub async fn create_provider(&self, admin_token: &str, name: &str) -> String {
        let body = json!({
            "name": name, "services": ["counselling"], "languages": ["en"], "regions": ["GB"],
            "modalities": ["video"], "capacity": 10,
        });
        created_id(
            self.post_json("/v1/admin/providers", admin_token, &body)
                .await,
        )
        .await
    }

    pub async fn create_client(&self, admin_token: &str, body: Value) -> Client {
        let resp = self
            .post_json("/v1/admin/clients", admin_token, &body)
            .await;
        assert_eq!(resp.status(), 201, "create client {body}");
        let v: Value = resp.json().await.unwrap();
        Client {
            id: v["client_id"].as_str().unwrap().to_owned(),
            secret: v["client_secret"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn setup_portal(&self, capacity: u32) -> Portal {
        let admin_token = self.admin_token().await;
        let employer = self.create_employer(&admin_token, "Acme Health").await;
        let body = json!({
            "name": "Harbour Counselling", "services": ["counselling", "crisis"], "languages": ["en"],
            "regions": ["GB"], "modalities": ["video", "phone"], "crisis_capable": true, "capacity": capacity,
        });
        let provider = created_id(
            self.post_json("/v1/admin/providers", &admin_token, &body)
                .await,
        )
        .await;
        let resp = self
            .post_json(
                "/v1/admin/contracts",
                &admin_token,
                &json!({"employer_id": employer, "provider_id": provider, "priority": 1}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let client = self
            .create_client(
                &admin_token,
                json!({"name": "Acme portal", "role": "hr_portal", "employer_id": employer}),
            )
            .await;
        let token = self.token(&client).await;
        Portal {
            admin_token,
            employer,
            provider,
            client,
            token,
        }
    }

    /// A provider made from `body`, contracted to the portal's employer at `priority`; its id.
    pub async fn contracted_provider(
        &self,
        portal: &Portal,
        body: &Value,
        priority: i32,
    ) -> String {
        let resp = self
            .post_json("/v1/admin/providers", &portal.admin_token, body)
            .await;
        let id = created_id(resp).await;
        let contract =
            json!({"employer_id": portal.employer, "provider_id": id, "priority": priority});
        let resp = self
            .post_json("/v1/admin/contracts", &portal.admin_token, &contract)
            .await;
        assert_eq!(resp.status(), 201);
        id
    }

    /// Posts exactly `body`'s bytes (so a test can fingerprint them) with an Idempotency-Key.
    pub async fn submit(&self, token: &str, key: Option<&str>, body: &[u8]) -> Response {
        let mut headers = vec![("content-type", "application/json")];
        headers.extend(key.map(|k| ("idempotency-key", k)));
        let req = self.request(Method::POST, "/v1/referrals", Some(token), &headers);
        req.body(body.to_vec()).send().await.unwrap()
    }

    pub async fn submit_json(&self, token: &str, body: &Value) -> Response {
        let key = uuid::Uuid::new_v4().to_string();
        self.submit(token, Some(&key), &serde_json::to_vec(body).unwrap())
            .await
    }

    pub fn referral(&self, id: &str) -> StoredReferral {
        let mut conn = self.conn();
        let id = eap_referrals::ids::ReferralId::from_trusted(id.to_owned());
        let mut stored: StoredReferral =
            eap_referrals::referrals::store::find_referral(&mut conn, &id)
                .unwrap()
                .expect("referral exists")
                .into();
        // The key and the employee reference live in their own table; a row of the previous
        // version kept them in `referrals`, so either place counts.
        use diesel::prelude::*;
        use eap_referrals::db::schema::referral_keys;
        let keys: Option<(String, Vec<u8>, Option<String>)> = referral_keys::table
            .find(id.as_str())
            .select((
                referral_keys::key_id,
                referral_keys::wrapped_key,
                referral_keys::employee_ref_hmac,
            ))
            .first(&mut **conn)
            .optional()
            .unwrap();
        if let Some((key_id, wrapped, employee_ref)) = keys {
            stored.key_id = Some(key_id);
            stored.wrapped_key = Some(wrapped);
            stored.employee_ref_hmac = employee_ref.or(stored.employee_ref_hmac);
        }
        stored
    }

    pub fn provider_load(&self, id: &str) -> i64 {
        let mut conn = self.conn();
        eap_referrals::directory::store::load(&mut conn, id).unwrap()
    }
}

/// A stored referral with its codes and ids as text, as the assertions compare them.
pub struct StoredReferral {
    pub status: String,
    pub provider_id: Option<String>,
    pub version: i32,
    pub offer_expires_at: Option<chrono::NaiveDateTime>,
    pub status_token_hash: String,
    pub routing_reasons: Option<String>,
    pub key_id: Option<String>,
    pub wrapped_key: Option<Vec<u8>>,
    pub sealed_contact: Option<Vec<u8>>,
    pub sealed_note: Option<Vec<u8>>,
    pub employee_ref_hmac: Option<String>,
    pub erased_at: Option<chrono::NaiveDateTime>,
}

impl From<eap_referrals::referrals::store::ReferralRow> for StoredReferral {
    fn from(r: eap_referrals::referrals::store::ReferralRow) -> Self {
        use eap_referrals::codes::Code;
        StoredReferral {
            status: r.status.code().to_owned(),
            provider_id: r.provider_id.map(|p| p.into_string()),
            version: r.version,
            offer_expires_at: r.offer_expires_at,
            status_token_hash: r.status_token_hash,
            routing_reasons: r.routing_reasons,
            key_id: r.key_id,
            wrapped_key: r.wrapped_key,
            sealed_contact: r.sealed_contact,
            sealed_note: r.sealed_note,
            employee_ref_hmac: r.employee_ref_hmac,
            erased_at: r.erased_at,
        }
    }
}
