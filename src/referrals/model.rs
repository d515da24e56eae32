//! Referral intake: what a portal may send, what is sealed, statuses as the portal sees them,
//! status tokens, the keyed employee reference. No I/O.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use validator::{Validate, ValidationError};

use crate::directory::model::{Code, Language, Modality, Region, Service, Urgency};
use crate::error::{ErrorCode, FieldError};
use crate::keys::random_bytes;

/// How to reach the person. Sealed before it reaches the database.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "phone_or_email"))]
pub struct Contact {
    /// The name the person wants to be called by (not necessarily their legal name), as they
    /// spell it: zero-width joiners and non-joiners are kept (Persian and Indic names, emoji
    /// sequences); bidirectional controls and other invisible characters are refused.
    #[validate(
        length(min = 1, max = 100),
        custom(function = "crate::extract::person_text")
    )]
    #[schema(
        min_length = 1,
        max_length = 100,
        example = "Sam",
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B\\u200E\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*\
                   [^\\s\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]\
                   [^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B\\u200E\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub preferred_name: String,
    /// E.164, e.g. `+447700900123`.
    #[validate(custom(function = "e164"))]
    #[schema(pattern = r"^\+[1-9][0-9]{1,14}$", example = "+447700900123")]
    pub phone: Option<String>,
    // The form is the document's `format: email`, checked before serde reads the body.
    // `validator`'s own `email` reads RFC 5321 differently (it refuses a quoted local part the
    // format admits), so it is not repeated here: one rule, as documented.
    #[validate(length(max = 254))]
    #[schema(format = "email", max_length = 254)]
    pub email: Option<String>,
    /// When the person prefers to be contacted, in their words.
    #[validate(length(max = 100), custom(function = "crate::extract::person_text"))]
    #[schema(
        max_length = 100,
        example = "weekday evenings",
        pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B\\u200E\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*\
                   [^\\s\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]\
                   [^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B\\u200E\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$"
    )]
    pub best_time_to_contact: Option<String>,
    /// Whether a voicemail may be left.
    pub voicemail_consent: bool,
}

fn e164(phone: &str) -> Result<(), ValidationError> {
    let digits = phone.strip_prefix('+').unwrap_or("");
    let ok = (2..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        let mut e = ValidationError::new("e164");
        e.message = Some("must be an E.164 number: + then 2–15 digits, no spaces".into());
        Err(e)
    }
}

fn phone_or_email(c: &Contact) -> Result<(), ValidationError> {
    if c.phone.is_none() && c.email.is_none() {
        let mut e = ValidationError::new("phone_or_email");
        e.message = Some("give a phone number, an email address, or both".into());
        return Err(e);
    }
    Ok(())
}

/// A request for help, as an HR portal submits it. The employer comes from the token.
#[derive(Debug, Clone, Serialize, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReferral {
    pub service_type: Service,
    pub urgency: Urgency,
    pub modality: Modality,
    /// BCP 47 primary language subtag, in any letter case; stored lower case (`EN` is `en`).
    pub language: Language,
    /// ISO 3166-1 country, optionally an ISO 3166-2 subdivision, in any letter case; stored
    /// upper case (`gb-sct` is `GB-SCT`).
    pub region: Region,
    /// The portal's own reference for the employee, if it needs to recognise repeat requests.
    /// Stored only as a keyed hash; never returned.
    #[validate(length(min = 1, max = 128))]
    #[schema(min_length = 1, max_length = 128)]
    pub employee_ref: Option<String>,
    #[validate(nested)]
    pub contact: Contact,
    /// Anything the person wants the provider to know. Sealed.
    #[validate(length(max = 1000))]
    #[schema(max_length = 1000)]
    pub note: Option<String>,
    /// Providers the person does not want to be seen by (a colleague, a former supervisor, the
    /// clinic down the road): at most 20 ids from `GET /v1/portal/providers`. Honoured on every
    /// offer, re-offer and assignment for the referral's whole life. Personal data: sealed like
    /// the contact block, never shown to anyone, not even as which providers were passed over.
    #[serde(default)]
    #[validate(length(max = 20))]
    #[schema(max_items = 20)]
    pub exclude_providers: Vec<String>,
    /// Care from a provider in the same country that serves none of the person's own area
    /// (where they might be known). `region` must then be a subdivision (`GB-SCT`), and
    /// `modality` remote (`video`, `phone` or `chat`). The provider sees the region, so it can
    /// infer the choice; nobody learns more. Sealed.
    #[serde(default)]
    pub out_of_area: bool,
    /// The person is a health, care or mental-health worker: providers staffed to treat them
    /// (`serves_helping_professionals`) are offered the referral first when eligible. Never
    /// makes a referral unroutable. Sealed; the provider is not told.
    #[serde(default)]
    pub helping_professional: bool,
}

const NOT_A_SUBDIVISION: &str = "out_of_area needs the person's own subdivision, e.g. GB-SCT \
    (care is then sought elsewhere in the country); a whole country leaves no area to be out of";
const IN_PERSON_OUT_OF_AREA: &str = "out_of_area care is given remotely (video, phone or chat): \
    in_person would mean travelling out of the person's area";

impl NewReferral {
    /// The rules across members the body's schema cannot state: out-of-area care needs a
    /// subdivision and a remote modality; excluded providers are issued ids.
    pub fn cross_member_errors(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (i, id) in self.exclude_providers.iter().enumerate() {
            if let Err(e) = crate::extract::issued_id(id) {
                let message = e.message.map(|m| m.to_string()).unwrap_or_default();
                errors.push(FieldError::member(
                    format!("/exclude_providers/{i}"),
                    ErrorCode::Pattern,
                    message,
                ));
            }
        }
        if self.out_of_area && self.region.as_str().len() == 2 {
            errors.push(FieldError::member(
                "/region",
                ErrorCode::InvalidValue,
                NOT_A_SUBDIVISION,
            ));
        }
        if self.out_of_area && self.modality == Modality::InPerson {
            errors.push(FieldError::member(
                "/modality",
                ErrorCode::InvalidValue,
                IN_PERSON_OUT_OF_AREA,
            ));
        }
        errors
    }
}

/// Lifecycle states (docs/DESIGN.md §3). Intake produces `offered` or `unroutable`; the
/// provider workflow moves referrals on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Submitted,
    Offered,
    Accepted,
    Contacted,
    Scheduled,
    InProgress,
    Closed,
    Unroutable,
    Cancelled,
}

impl Code for Status {
    const ALL: &'static [Self] = &[
        Status::Submitted,
        Status::Offered,
        Status::Accepted,
        Status::Contacted,
        Status::Scheduled,
        Status::InProgress,
        Status::Closed,
        Status::Unroutable,
        Status::Cancelled,
    ];
    fn code(self) -> &'static str {
        match self {
            Status::Submitted => "submitted",
            Status::Offered => "offered",
            Status::Accepted => "accepted",
            Status::Contacted => "contacted",
            Status::Scheduled => "scheduled",
            Status::InProgress => "in_progress",
            Status::Closed => "closed",
            Status::Unroutable => "unroutable",
            Status::Cancelled => "cancelled",
        }
    }
}

crate::text_code!(Status);

/// What a portal may know of a referral: enough to reassure, never who is handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CoarseStatus {
    /// Received and being placed with a provider.
    Received,
    /// A provider has taken it up.
    InProgress,
    Closed,
    Cancelled,
}

impl Status {
    pub fn coarse(self) -> CoarseStatus {
        match self {
            Status::Submitted | Status::Offered | Status::Unroutable => CoarseStatus::Received,
            Status::Accepted | Status::Contacted | Status::Scheduled | Status::InProgress => {
                CoarseStatus::InProgress
            }
            Status::Closed => CoarseStatus::Closed,
            Status::Cancelled => CoarseStatus::Cancelled,
        }
    }

    /// A provider holds a slot for the referral in these states.
    pub fn holds_capacity(self) -> bool {
        matches!(
            self,
            Status::Offered
                | Status::Accepted
                | Status::Contacted
                | Status::Scheduled
                | Status::InProgress
        )
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Closed | Status::Cancelled)
    }
}

/// Status tokens: 256 random bits, prefixed so secret scanners can spot a leaked one.
pub const STATUS_TOKEN_PREFIX: &str = "eaprt_";

pub fn generate_status_token() -> String {
    format!(
        "{STATUS_TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    )
}

/// Tokens carry 256 bits of entropy, so a fast hash is enough; only the hash is stored.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// HMAC-SHA256 of `data` under a key derived from the pepper for one purpose and one scope
/// (an employer, a client), so values from different scopes are unrelated and nobody without the
/// pepper can test guesses.
fn keyed_digest(pepper: &[u8], purpose: &str, scope: &str, data: &[u8]) -> String {
    let mut kdf = Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC takes any key length");
    kdf.update(format!("eap-referrals/{purpose}/").as_bytes());
    kdf.update(scope.as_bytes());
    let key = kdf.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(data);
    hex(&mac.finalize().into_bytes())
}

/// The employee reference as stored, keyed per employer: the same reference at two employers
/// gives unrelated values.
pub fn employee_ref_digest(pepper: &[u8], employer_id: &str, employee_ref: &str) -> String {
    keyed_digest(pepper, "employee-ref", employer_id, employee_ref.as_bytes())
}

/// The Idempotency-Key fingerprint of a request body, keyed per client. A plain hash would let
/// anyone holding the database confirm a guessed body (name, phone, service): the body is short
/// and its layout fixed.
pub fn request_fingerprint(pepper: &[u8], client_id: &str, body: &[u8]) -> String {
    keyed_digest(pepper, "idempotency", client_id, body)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Associated data binding a sealed field to its referral.
pub fn aad(referral_id: &str, field: &str) -> Vec<u8> {
    format!("eap-referrals/referral/{referral_id}/{field}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> Contact {
        Contact {
            preferred_name: "Sam".into(),
            phone: Some("+447700900123".into()),
            email: None,
            best_time_to_contact: None,
            voicemail_consent: false,
        }
    }

    #[test]
    fn contact_rules() {
        assert!(contact().validate().is_ok());
        for bad in [
            "447700900123",
            "+0447700900",
            "+44 7700 900123",
            "+1",
            "+1234567890123456",
        ] {
            let c = Contact {
                phone: Some(bad.into()),
                ..contact()
            };
            assert!(c.validate().is_err(), "{bad}");
        }
        let neither = Contact {
            phone: None,
            email: None,
            ..contact()
        };
        assert!(neither.validate().is_err());
        let email_only = Contact {
            phone: None,
            email: Some("sam@example.org".into()),
            ..contact()
        };
        assert!(email_only.validate().is_ok());
        let long_name = Contact {
            preferred_name: "x".repeat(101),
            ..contact()
        };
        assert!(long_name.validate().is_err());
    }

    /// `e164` and the documented pattern (as JSON Schema reads it) accept the same numbers.
    #[test]
    fn the_phone_rule_is_the_documented_pattern() {
        let schema = serde_json::to_value(<Contact as utoipa::PartialSchema>::schema()).unwrap();
        let pattern = schema["properties"]["phone"]["pattern"].as_str().unwrap();
        assert_eq!(pattern, crate::validation::E164_PATTERN);
        let matcher = jsonschema::draft202012::options()
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(&serde_json::json!({"type": "string", "pattern": pattern}))
            .unwrap();
        let mut runner = proptest::test_runner::TestRunner::default();
        let phones = proptest::string::string_regex("\\+?[0-9 \\-٣]{0,17}").unwrap();
        runner
            .run(&phones, |p| {
                let by_schema = matcher.is_valid(&serde_json::json!(p));
                proptest::prop_assert_eq!(by_schema, e164(&p).is_ok(), "{:?}", p);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn coarse_statuses_hide_the_workflow() {
        assert_eq!(Status::Offered.coarse(), CoarseStatus::Received);
        assert_eq!(Status::Unroutable.coarse(), CoarseStatus::Received);
        assert_eq!(Status::Scheduled.coarse(), CoarseStatus::InProgress);
        assert_eq!(Status::Closed.coarse(), CoarseStatus::Closed);
        for s in Status::ALL {
            assert_eq!(Status::from_code(s.code()), Some(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.code());
        }
    }

    #[test]
    fn employee_refs_are_keyed_per_employer() {
        let pepper = [9u8; 32];
        let a = employee_ref_digest(&pepper, "e1", "EMP-001");
        assert_eq!(a, employee_ref_digest(&pepper, "e1", "EMP-001"), "stable");
        assert_ne!(
            a,
            employee_ref_digest(&pepper, "e2", "EMP-001"),
            "per employer"
        );
        assert_ne!(
            a,
            employee_ref_digest(&[8u8; 32], "e1", "EMP-001"),
            "per pepper"
        );
        assert!(!a.contains("EMP"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn fingerprints_are_keyed_per_client() {
        let pepper = [9u8; 32];
        let body = br#"{"contact":{"preferred_name":"Sam"}}"#;
        let a = request_fingerprint(&pepper, "c1", body);
        assert_eq!(a, request_fingerprint(&pepper, "c1", body));
        assert_ne!(a, request_fingerprint(&pepper, "c2", body));
        assert_ne!(a, hex(&Sha256::digest(body)), "not an unkeyed hash");
    }

    #[test]
    fn tokens_are_long_and_stored_hashed() {
        let t = generate_status_token();
        assert!(t.starts_with(STATUS_TOKEN_PREFIX) && t.len() == STATUS_TOKEN_PREFIX.len() + 43);
        assert_ne!(hash_token(&t), t);
        assert_eq!(hash_token(&t), hash_token(&t));
    }
}
