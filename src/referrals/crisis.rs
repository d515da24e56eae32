//! Crisis resources: where a person in crisis can turn right now, by country, shown with a
//! crisis referral so nobody waits for a provider to learn where help is.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::directory::model::Region;

/// One place a person in crisis can turn to now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CrisisResource {
    #[schema(example = "Samaritans")]
    pub name: String,
    #[schema(example = "116 123")]
    pub phone: Option<String>,
    pub text: Option<String>,
    pub url: Option<String>,
    #[schema(example = "24/7")]
    pub hours: Option<String>,
}

/// Crisis resources by ISO 3166-1 country, with `*` as the fallback for any other.
pub type CrisisTable = std::collections::BTreeMap<String, Vec<CrisisResource>>;

/// The built-in table. Operators can replace it with `EAP_CRISIS_RESOURCES_FILE`.
pub fn default_table() -> CrisisTable {
    let r = |name: &str, phone: Option<&str>, text: Option<&str>, url: &str| CrisisResource {
        name: name.into(),
        phone: phone.map(Into::into),
        text: text.map(Into::into),
        url: Some(url.into()),
        hours: Some("24/7".into()),
    };
    let samaritans = r(
        "Samaritans",
        Some("116 123"),
        None,
        "https://www.samaritans.org",
    );
    let mut t = CrisisTable::new();
    t.insert(
        "GB".into(),
        vec![
            samaritans.clone(),
            r(
                "Shout",
                None,
                Some("Text SHOUT to 85258"),
                "https://giveusashout.org",
            ),
        ],
    );
    t.insert(
        "IE".into(),
        vec![
            samaritans,
            r(
                "Text About It",
                None,
                Some("Text HELLO to 50808"),
                "https://www.textaboutit.ie",
            ),
        ],
    );
    t.insert(
        "US".into(),
        vec![r(
            "988 Suicide & Crisis Lifeline",
            Some("988"),
            Some("Text 988"),
            "https://988lifeline.org",
        )],
    );
    t.insert(
        "CA".into(),
        vec![r(
            "9-8-8 Suicide Crisis Helpline",
            Some("988"),
            Some("Text 988"),
            "https://988.ca",
        )],
    );
    t.insert(
        "AU".into(),
        vec![r(
            "Lifeline",
            Some("13 11 14"),
            Some("Text 0477 13 11 14"),
            "https://www.lifeline.org.au",
        )],
    );
    t.insert(
        "NZ".into(),
        vec![r(
            "Need to talk?",
            Some("1737"),
            Some("Text 1737"),
            "https://1737.org.nz",
        )],
    );
    t.insert(
        "*".into(),
        vec![CrisisResource {
            name: "Local emergency services".into(),
            phone: Some("112 (or your local emergency number)".into()),
            text: None,
            url: Some("https://findahelpline.com".into()),
            hours: Some("24/7".into()),
        }],
    );
    t
}

/// The resources for a region: its country's, else the fallback.
pub fn crisis_resources(table: &CrisisTable, region: &Region) -> Vec<CrisisResource> {
    table
        .get(region.country())
        .or_else(|| table.get("*"))
        .cloned()
        .unwrap_or_default()
}

/// The table in `EAP_CRISIS_RESOURCES_FILE`, or the built-in one; the message names the
/// problem for the start-up error.
pub fn load(path: Option<&std::path::Path>) -> Result<CrisisTable, String> {
    let Some(path) = path else {
        return Ok(default_table());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let table: CrisisTable =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    if !table.contains_key("*") {
        return Err("needs a \"*\" entry for regions without their own".into());
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crisis_resources_fall_back() {
        let t = default_table();
        let gb = crisis_resources(&t, &Region::parse("GB-SCT").unwrap());
        assert_eq!(gb[0].name, "Samaritans");
        let other = crisis_resources(&t, &Region::parse("ZZ").unwrap());
        assert_eq!(other[0].name, "Local emergency services");
    }
}
