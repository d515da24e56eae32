//! Directory codes: the fixed vocabularies providers are described with and referrals ask for.
//! No I/O.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::codes::Code;

/// Kinds of help a provider offers and a referral asks for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Counselling,
    Crisis,
    Financial,
    Legal,
    Family,
    SubstanceUse,
    Workplace,
}

/// How the person meets the provider.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    InPerson,
    Video,
    Phone,
    Chat,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Routine,
    Urgent,
    Crisis,
}

impl Code for Service {
    const ALL: &'static [Self] = &[
        Service::Counselling,
        Service::Crisis,
        Service::Financial,
        Service::Legal,
        Service::Family,
        Service::SubstanceUse,
        Service::Workplace,
    ];
    fn code(self) -> &'static str {
        match self {
            Service::Counselling => "counselling",
            Service::Crisis => "crisis",
            Service::Financial => "financial",
            Service::Legal => "legal",
            Service::Family => "family",
            Service::SubstanceUse => "substance_use",
            Service::Workplace => "workplace",
        }
    }
}

impl Code for Modality {
    const ALL: &'static [Self] = &[
        Modality::InPerson,
        Modality::Video,
        Modality::Phone,
        Modality::Chat,
    ];
    fn code(self) -> &'static str {
        match self {
            Modality::InPerson => "in_person",
            Modality::Video => "video",
            Modality::Phone => "phone",
            Modality::Chat => "chat",
        }
    }
}

impl Code for Urgency {
    const ALL: &'static [Self] = &[Urgency::Routine, Urgency::Urgent, Urgency::Crisis];
    fn code(self) -> &'static str {
        match self {
            Urgency::Routine => "routine",
            Urgency::Urgent => "urgent",
            Urgency::Crisis => "crisis",
        }
    }
}

// Whether a provider takes new referrals; stored in `providers.status` (a doc comment would
// change the OpenAPI description).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
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
pub enum ProviderStatus {
    /// Takes new referrals.
    #[default]
    Active,
    /// Keeps its current referrals but is offered no new ones.
    Paused,
}

impl Code for ProviderStatus {
    const ALL: &'static [Self] = &[ProviderStatus::Active, ProviderStatus::Paused];
    fn code(self) -> &'static str {
        match self {
            ProviderStatus::Active => "active",
            ProviderStatus::Paused => "paused",
        }
    }
}

crate::text_code!(Service, Modality, Urgency, ProviderStatus);

/// Joins codes for a TEXT column (`counselling,crisis`), sorted and without repeats.
pub fn join_codes<C: Code + Ord>(codes: &[C]) -> String {
    let mut v: Vec<C> = codes.to_vec();
    v.sort();
    v.dedup();
    v.iter().map(|c| c.code()).collect::<Vec<_>>().join(",")
}

/// Reads a TEXT column written by [`join_codes`]; unknown codes are dropped (never written).
pub fn split_codes<C: Code>(text: &str) -> Vec<C> {
    text.split(',').filter_map(C::from_code).collect()
}

/// Joins plain codes (languages, regions) for a TEXT column, sorted and without repeats.
pub fn join_plain<T: AsRef<str>>(items: &[T]) -> String {
    let mut v: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    v.sort_unstable();
    v.dedup();
    v.join(",")
}

/// Reads a TEXT column written by [`join_plain`].
pub fn split_plain(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The longest contract window, in days (100 years).
pub const MAX_DAYS: u32 = 36500;

/// The latest instant a window may end: the last one with a four-digit year. RFC 3339 cannot
/// write a later one, and SQLite keeps times as text, where `10099-…` sorts before `9999-…`, so
/// a later end would be compared wrongly there (and PostgreSQL would accept what SQLite cannot
/// read back).
pub const LATEST_END: chrono::NaiveDateTime = chrono::NaiveDateTime::new(
    chrono::NaiveDate::from_ymd_opt(9999, 12, 31).expect("a valid date"),
    chrono::NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).expect("a valid time"),
);

/// Why a window was refused: it would end after [`LATEST_END`].
pub const ENDS_TOO_LATE: &str = "the window would end after 9999-12-31T23:59:59.999999Z";

/// Where a window of `days` days from `start` ends: always after `start`, so every request that
/// is valid by its schema gives a non-empty window; `None` past [`LATEST_END`].
/// A contract is in force when not deactivated and `now` is within [starts_at, ends_at).
pub fn in_force(
    active: bool,
    starts_at: chrono::NaiveDateTime,
    ends_at: Option<chrono::NaiveDateTime>,
    now: chrono::NaiveDateTime,
) -> bool {
    active && starts_at <= now && ends_at.is_none_or(|end| now < end)
}

pub fn window_end(start: chrono::NaiveDateTime, days: u32) -> Option<chrono::NaiveDateTime> {
    shifted_end(
        start,
        chrono::TimeDelta::days(i64::from(days.clamp(1, MAX_DAYS))),
    )
}

/// `start + length`, or `None` past [`LATEST_END`].
pub fn shifted_end(
    start: chrono::NaiveDateTime,
    length: chrono::TimeDelta,
) -> Option<chrono::NaiveDateTime> {
    start
        .checked_add_signed(length)
        .filter(|end| *end <= LATEST_END)
}

const REGION_FORM: &str = "expected an ISO 3166-1 alpha-2 country, optionally with an ISO \
    3166-2 subdivision (GB, GB-SCT)";

/// [`Region::parse`] as a schema pattern: letters in any case, no surrounding space. The
/// attribute below repeats the literal; a test compares, and a property test holds the two
/// accepting the same strings.
pub const REGION_PATTERN: &str = "^[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?$";

/// An ISO 3166-1 alpha-2 country, optionally narrowed to an ISO 3166-2 subdivision:
/// `GB` or `GB-SCT`. Accepted in any letter case (`gb-sct`); stored and returned in upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(
    value_type = String,
    pattern = "^[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?$",
    example = "GB-SCT"
)]
pub struct Region(String);

impl Region {
    /// Checks the shape (not membership of the ISO lists, which change): two letters, then
    /// optionally a dash and one to three letters or digits; the canonical form is upper case.
    /// Surrounding space is refused, as the documented pattern refuses it: one rule.
    pub fn parse(s: &str) -> Result<Region, &'static str> {
        let (country, sub) = match s.split_once('-') {
            Some((c, sub)) => (c, Some(sub)),
            None => (s, None),
        };
        let country_ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_alphabetic());
        let sub_ok = sub.is_none_or(|x| {
            (1..=3).contains(&x.len()) && x.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if country_ok && sub_ok {
            Ok(Region(s.to_ascii_uppercase()))
        } else {
            Err(REGION_FORM)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn country(&self) -> &str {
        &self.0[..2]
    }

    /// A provider region covers a referral region when it is the same, or the whole country
    /// the referral's subdivision lies in.
    pub fn covers(&self, wanted: &Region) -> bool {
        self.0 == wanted.0 || (self.0.len() == 2 && wanted.country() == self.0)
    }
}

impl TryFrom<String> for Region {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Region::parse(&s)
    }
}

impl AsRef<str> for Region {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}

/// [`Language::parse`] as a schema pattern, like [`REGION_PATTERN`].
pub const LANGUAGE_PATTERN: &str = "^[A-Za-z]{2,3}$";

/// A BCP 47 primary language subtag (`en`, `fr`, `yue`). Accepted in any letter case (`EN`);
/// stored and returned in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, pattern = "^[A-Za-z]{2,3}$", example = "en")]
pub struct Language(String);

impl Language {
    /// Two or three ASCII letters in any case, no surrounding space; the canonical form is
    /// lower case.
    pub fn parse(s: &str) -> Result<Language, &'static str> {
        if (2..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()) {
            Ok(Language(s.to_ascii_lowercase()))
        } else {
            Err("expected a BCP 47 primary language subtag of 2–3 letters (en, fr, yue)")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Language {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Language::parse(&s)
    }
}

impl AsRef<str> for Language {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<Language> for String {
    fn from(l: Language) -> String {
        l.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_text() {
        let services = [
            Service::Crisis,
            Service::Counselling,
            Service::Crisis,
            Service::SubstanceUse,
        ];
        let text = join_codes(&services);
        assert_eq!(text, "counselling,crisis,substance_use");
        assert_eq!(
            split_codes::<Service>(&text),
            vec![Service::Counselling, Service::Crisis, Service::SubstanceUse]
        );
        for m in Modality::ALL {
            assert_eq!(Modality::from_code(m.code()), Some(*m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.code());
        }
        for s in Service::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.code());
        }
    }

    #[test]
    fn regions_parse_and_cover() {
        let gb = Region::parse("gb").unwrap();
        let sct = Region::parse("GB-SCT").unwrap();
        let wls = Region::parse("GB-WLS").unwrap();
        assert!(gb.covers(&sct) && gb.covers(&gb));
        assert!(sct.covers(&sct) && !sct.covers(&gb) && !sct.covers(&wls));
        assert!(!Region::parse("FR").unwrap().covers(&sct));
        for bad in [
            "G", "GBR", "G1", "GB-", "GB-ABCD", "GB_SCT", "", " GB", "GB\n",
        ] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
    }

    /// Codes are accepted in any letter case and kept in one canonical form, so `EN` and `en`
    /// route alike; surrounding space is refused, not trimmed.
    #[test]
    fn codes_are_canonicalised_not_trimmed() {
        assert_eq!(Language::parse("EN").unwrap().as_str(), "en");
        assert_eq!(Language::parse("Yue").unwrap().as_str(), "yue");
        assert_eq!(Region::parse("gb").unwrap().as_str(), "GB");
        assert_eq!(Region::parse("gb-sct").unwrap().as_str(), "GB-SCT");
        assert_eq!(Region::parse("fr-75c").unwrap().as_str(), "FR-75C");
        for bad in [" en", "en ", "e1", "english", "en-GB", "e", ""] {
            assert!(Language::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn documented_pattern<T: utoipa::PartialSchema>() -> String {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["pattern"].as_str().unwrap().to_owned()
    }

    /// The document and the server agree on codes: the documented pattern, read as JSON Schema
    /// reads it, accepts exactly the strings the parser accepts, and what the parser stores
    /// matches the pattern too.
    #[test]
    fn documented_code_patterns_accept_what_the_parsers_accept() {
        assert_eq!(documented_pattern::<Language>(), LANGUAGE_PATTERN);
        assert_eq!(documented_pattern::<Region>(), REGION_PATTERN);
        let matcher = |pattern: &str| {
            jsonschema::draft202012::options()
                .with_pattern_options(jsonschema::PatternOptions::regex())
                .build(&serde_json::json!({"type": "string", "pattern": pattern}))
                .unwrap()
        };
        let (language, region) = (matcher(LANGUAGE_PATTERN), matcher(REGION_PATTERN));
        let check = |s: &str| {
            let text = serde_json::json!(s);
            let parsed = Language::parse(s);
            assert_eq!(language.is_valid(&text), parsed.is_ok(), "language {s:?}");
            if let Ok(l) = parsed {
                assert!(language.is_valid(&serde_json::json!(l.as_str())));
                assert_eq!(l.as_str(), s.to_ascii_lowercase());
            }
            let parsed = Region::parse(s);
            assert_eq!(region.is_valid(&text), parsed.is_ok(), "region {s:?}");
            if let Ok(r) = parsed {
                assert!(region.is_valid(&serde_json::json!(r.as_str())));
                assert_eq!(r.as_str(), s.to_ascii_uppercase());
            }
        };
        for s in [
            "EN", "en", "Yue", "gb", "GB-SCT", "gb-sct", "e1", "GBR", " en", "GB-", "ÉN",
        ] {
            check(s);
        }
        let mut runner = proptest::test_runner::TestRunner::default();
        let near = proptest::string::string_regex("[A-Za-z0-9 \\-_é\\n\\u{212A}]{0,6}").unwrap();
        runner
            .run(&near, |s| {
                check(&s);
                Ok(())
            })
            .unwrap();
        runner
            .run(&"\\PC{0,5}", |s| {
                check(&s);
                Ok(())
            })
            .unwrap();
    }
}
