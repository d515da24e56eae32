//! Requests checked against the service's own OpenAPI document.
//!
//! Every JSON body and query parameter is checked first against the schema the document
//! publishes for its operation (JSON Schema draft 2020-12, formats included), so what the
//! document admits and what the server accepts agree by construction, and every invalid member
//! or parameter is reported in one 422. serde and `validator` run after it, for the rules a
//! schema cannot state and as a second line; their errors are mapped here too.
//!
//! No message repeats a submitted value, nor the name of an undocumented member or parameter
//! unless it is a plain identifier ([`is_plain_name`]): a name can itself carry personal data.

use std::collections::HashMap;

use actix_web::http::Method;
use jsonschema::error::{TypeKind, ValidationErrorKind as Kind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::error::{ApiError, ErrorCode, FieldError};

/// How many schema errors one request is read for before they are sorted and cut to
/// [`crate::error::MAX_FIELD_ERRORS`]: a 64 KiB body of junk can hold thousands.
const MAX_FINDINGS: usize = 1000;

/// `extract::ISSUED_ID_PATTERN`, repeated (this file is below `extract` in the imports).
const ISSUED_ID_PATTERN: &str = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// `extract::plain_text` as a schema pattern: no control character (Unicode `Cc`), no invisible
/// direction or joining mark (`extract::INVISIBLE`), and not only white space (ECMA-262 `\s`,
/// which also counts U+FEFF).
pub const PLAIN_TEXT_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*\
    [^\\s\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]\
    [^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$";

/// `extract::person_text` as a schema pattern: [`PLAIN_TEXT_PATTERN`] with U+200C and U+200D
/// (`extract::JOINERS`) allowed, and not made only of white space and joiners.
pub const PERSON_TEXT_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B\\u200E\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*\
    [^\\s\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B-\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]\
    [^\\u0000-\\u001F\\u007F-\\u009F\\u061C\\u200B\\u200E\\u200F\\u202A-\\u202E\\u2060-\\u2064\\u2066-\\u2069\\uFEFF]*$";

/// `referrals::model::e164` as a schema pattern.
pub const E164_PATTERN: &str = r"^\+[1-9][0-9]{1,14}$";

/// The expected form of every `pattern` in the document: words, and examples that match it.
/// The one place these texts live; a test checks that every pattern the document holds has an
/// entry and that every example matches its pattern.
const PATTERNS: &[(&str, &str, &[&str])] = &[
    (
        ISSUED_ID_PATTERN,
        "an id this service issued: a lowercase, hyphenated UUID",
        &["0190f3a2-7c1d-7e4b-9a55-3f0c2d8e4b61"],
    ),
    (
        r"^[0-9]{1,18}$",
        "the next_cursor of the previous page: 1–18 digits",
        &["4711"],
    ),
    (
        r"^[0-9]{1,18}\.[0-9]{1,18}$",
        "the next_cursor of the previous call: two numbers of 1–18 digits joined by a dot",
        &["812.4711"],
    ),
    (
        r"^[0-9]{1,18}\.[0-9]{1,9}$",
        "the next_cursor of the previous page: a number of 1–18 digits, a dot, and one of 1–9",
        &["812.3"],
    ),
    (
        r#"^([!#-\[\]-~]{1,255}|"[!#-\[\]-~]{1,255}")$"#,
        "1–255 visible ASCII characters other than \" and \\, optionally in double quotes",
        &["3f2a9c1e-submission-1"],
    ),
    (
        r"^2[0-9]{3}-(0[1-9]|1[0-2])$",
        "a month as YYYY-MM, years 2000–2999",
        &["2026-01"],
    ),
    (
        PLAIN_TEXT_PATTERN,
        "printable text that is not blank: no control characters, no bidirectional overrides, \
         isolates or marks, no zero-width characters",
        &["Sam"],
    ),
    (
        PERSON_TEXT_PATTERN,
        "printable text that is not blank: no control characters, no bidirectional overrides, \
         isolates or marks, no zero-width characters but the joiner and non-joiner \
         (U+200D, U+200C), which names and emoji sequences use",
        &["Sam", "می\u{200c}خواهم", "👨\u{200d}👩\u{200d}👧"],
    ),
    (
        E164_PATTERN,
        "E.164: + and 2–15 digits, the first not 0, no spaces",
        &["+447700900123"],
    ),
    (
        crate::directory::model::LANGUAGE_PATTERN,
        "BCP 47 primary language subtag, 2–3 letters in any case (stored and returned in lower \
         case)",
        &["en", "yue"],
    ),
    (
        crate::directory::model::REGION_PATTERN,
        "ISO 3166-1 alpha-2 country, optionally an ISO 3166-2 subdivision, in any case (stored \
         and returned in upper case)",
        &["GB", "GB-SCT"],
    ),
];

/// The expected form of every `format` the server checks, like [`PATTERNS`].
const FORMATS: &[(&str, &str, &[&str])] = &[
    ("email", "an email address", &["sam@example.org"]),
    (
        "date-time",
        "an RFC 3339 date-time with a time zone",
        &["2026-11-25T09:30:00Z"],
    ),
];

fn expected_text(table: &[(&str, &str, &[&str])], key: &str) -> Option<String> {
    table
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, words, examples)| format!("{words}, e.g. {}", examples.join(" or ")))
}

/// The expected form of a documented pattern, in words with an example.
pub fn expected_for_pattern(pattern: &str) -> String {
    // A pattern without an entry fails a test; should one slip through, naming it is still
    // better than nothing (it is the document's text, not the caller's).
    expected_text(PATTERNS, pattern).unwrap_or_else(|| format!("text matching {pattern}"))
}

pub fn expected_for_format(format: &str) -> String {
    expected_text(FORMATS, format).unwrap_or_else(|| format!("a valid {format}"))
}

/// A member or parameter name that may be repeated in an answer: ASCII letters and `_`, at
/// most 40. Anything else (`ssn 123-45-6789`) could be the caller's data.
pub fn is_plain_name(name: &str) -> bool {
    (1..=40).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_')
}

const UNNAMED_MEMBER: &str =
    "holds a member that is not in the schema (its name is not repeated: it is not a plain \
     identifier)";

/// The compiled request rules of every documented operation: its JSON body's schema and its
/// query parameters'. Built once at start-up from the document and held as app data.
pub struct RequestSchemas {
    by_path: HashMap<String, Vec<(Method, Operation)>>,
    /// `{"components": …}` of the document, where an error's schema path leads (to name the
    /// members an object admits).
    schemas: Value,
}

#[derive(Default)]
struct Operation {
    body: Option<Validator>,
    query: Vec<QueryParameter>,
}

struct QueryParameter {
    name: String,
    required: bool,
    scalar: Scalar,
    schema: Validator,
}

/// How a query parameter's text is read as the JSON value its schema describes (OpenAPI's
/// `form` style: one `name=value` pair per scalar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Integer,
    Number,
    Boolean,
    Text,
}

impl Scalar {
    fn read(self, text: &str) -> Value {
        let parsed = match self {
            // Read as the handlers' serde reads it (`FromStr`), so the two agree.
            Scalar::Integer => text
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| text.parse::<u64>().map(Value::from))
                .ok(),
            Scalar::Number => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
            Scalar::Boolean => text.parse::<bool>().ok().map(Value::Bool),
            Scalar::Text => None,
        };
        // Text that is not of the type stays text, and the schema refuses it as the wrong type.
        parsed.unwrap_or_else(|| Value::String(text.to_owned()))
    }
}

/// The component schemas `schema` reaches through `$ref`s, transitively. Each compiled
/// validator keeps its own copy of the document it was built from: handing all ~70 of them
/// every component cost 44 MB of resident memory at start-up, this about 10 MB for all.
fn reachable_components(schema: &Value, components: &Value) -> Value {
    let mut reached = serde_json::Map::new();
    let mut pending = vec![schema];
    while let Some(value) = pending.pop() {
        match value {
            Value::Object(object) => {
                let name = object
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/components/schemas/"));
                if let Some(name) = name.filter(|n| !reached.contains_key(*n)) {
                    if let Some(target) = components.get("schemas").and_then(|s| s.get(name)) {
                        reached.insert(name.to_owned(), target.clone());
                        pending.push(target);
                    }
                }
                pending.extend(object.values());
            }
            Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    serde_json::json!({ "schemas": reached })
}

const METHODS: [(&str, Method); 5] = [
    ("get", Method::GET),
    ("put", Method::PUT),
    ("post", Method::POST),
    ("delete", Method::DELETE),
    ("patch", Method::PATCH),
];

impl RequestSchemas {
    /// Compiles the request schemas of every operation in `document` (the OpenAPI document as
    /// JSON). `$ref`s point into the document's own components; nothing is fetched.
    pub fn from_document(document: &Value) -> Result<Self, String> {
        let components = document.get("components").cloned().unwrap_or(Value::Null);
        let compile = |schema: &Value| -> Result<Validator, String> {
            let mut root = match schema {
                Value::Object(o) => o.clone(),
                other => return Err(format!("not a schema: {other}")),
            };
            root.insert(
                "components".into(),
                reachable_components(schema, &components),
            );
            jsonschema::draft202012::options()
                .should_validate_formats(true)
                // Linear-time matching: the document's patterns need no backtracking.
                .with_pattern_options(jsonschema::PatternOptions::regex())
                .build(&Value::Object(root))
                .map_err(|e| format!("a schema does not compile: {e}"))
        };
        let mut by_path: HashMap<String, Vec<(Method, Operation)>> = HashMap::new();
        let paths = document
            .get("paths")
            .and_then(Value::as_object)
            .ok_or("the document has no paths")?;
        for (path, item) in paths {
            for (key, method) in &METHODS {
                let Some(op) = item.get(*key) else {
                    continue;
                };
                let mut compiled = Operation::default();
                let body = op.pointer("/requestBody/content/application~1json/schema");
                if let Some(schema) = body {
                    compiled.body = Some(compile(schema)?);
                }
                let parameters = op.get("parameters").and_then(Value::as_array);
                for p in parameters.into_iter().flatten() {
                    if p["in"] != "query" {
                        continue;
                    }
                    let name = p["name"].as_str().ok_or("a parameter without a name")?;
                    let schema = &p["schema"];
                    compiled.query.push(QueryParameter {
                        name: name.to_owned(),
                        required: p["required"] == true,
                        scalar: scalar_of(schema, &components),
                        schema: compile(schema)?,
                    });
                }
                by_path
                    .entry(path.clone())
                    .or_default()
                    .push((method.clone(), compiled));
            }
        }
        let schemas = serde_json::json!({ "components": components });
        Ok(RequestSchemas { by_path, schemas })
    }

    fn operation(&self, method: &Method, template: &str) -> Result<&Operation, ApiError> {
        self.by_path
            .get(template)
            .and_then(|ops| ops.iter().find(|(m, _)| m == method))
            .map(|(_, op)| op)
            // Every route is registered from the document, so this is a wiring fault.
            .ok_or_else(|| ApiError::Internal(format!("{method} {template} is not documented")))
    }

    /// Checks a JSON body against the schema its operation documents: every invalid member,
    /// by JSON pointer.
    pub fn check_body(
        &self,
        method: &Method,
        template: &str,
        body: &Value,
    ) -> Result<(), ApiError> {
        let Some(schema) = &self.operation(method, template)?.body else {
            return Err(ApiError::Internal(format!(
                "{method} {template} documents no JSON body"
            )));
        };
        if schema.is_valid(body) {
            return Ok(());
        }
        let mut findings = Vec::new();
        for e in schema.iter_errors(body).take(MAX_FINDINGS) {
            describe(&self.schemas, &e, &mut findings);
        }
        Err(ApiError::Validation(finish(
            findings.into_iter().map(Finding::in_body).collect(),
        )))
    }

    /// Checks a query string against the parameters its operation documents: every unknown,
    /// repeated, missing or invalid parameter, by name.
    pub fn check_query(
        &self,
        method: &Method,
        template: &str,
        query: &str,
    ) -> Result<(), ApiError> {
        let op = self.operation(method, template)?;
        let mut errors = Vec::new();
        let mut given: Vec<&str> = Vec::new();
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        for (position, (name, text)) in pairs.iter().enumerate() {
            let Some(p) = op.query.iter().find(|p| p.name == *name) else {
                errors.push(unknown_parameter(position, name, &op.query));
                continue;
            };
            if given.contains(&p.name.as_str()) {
                errors.push(FieldError::parameter(
                    name,
                    ErrorCode::InvalidValue,
                    "is given more than once",
                ));
                continue;
            }
            given.push(&p.name);
            let value = p.scalar.read(text);
            if p.schema.is_valid(&value) {
                continue;
            }
            let mut findings = Vec::new();
            for e in p.schema.iter_errors(&value).take(MAX_FINDINGS) {
                describe(&self.schemas, &e, &mut findings);
            }
            errors.extend(findings.into_iter().map(|f| f.on_parameter(name)));
        }
        for p in &op.query {
            if p.required && !given.contains(&p.name.as_str()) {
                errors.push(FieldError::parameter(
                    &p.name,
                    ErrorCode::Required,
                    "is required",
                ));
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        Err(ApiError::Validation(finish(errors)))
    }
}

fn unknown_parameter(position: usize, name: &str, known: &[QueryParameter]) -> FieldError {
    let names: Vec<&str> = known.iter().map(|p| p.name.as_str()).collect();
    let error = if is_plain_name(name) {
        FieldError::parameter(
            name,
            ErrorCode::UnknownField,
            "is not a parameter of this operation",
        )
    } else {
        FieldError::parameter(
            "",
            ErrorCode::UnknownField,
            format!(
                "parameter {} of the query string is not one of this operation's (its name is \
                 not repeated: it is not a plain identifier)",
                position + 1
            ),
        )
    };
    if names.is_empty() {
        error.expecting("no query parameters")
    } else {
        error.expecting(format!("one of: {}", names.join(", ")))
    }
}

/// The JSON type a parameter's schema gives, following a `$ref` into the components.
fn scalar_of(schema: &Value, components: &Value) -> Scalar {
    let mut schema = schema;
    for _ in 0..8 {
        let target = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/"))
            .and_then(|r| components.pointer(&format!("/{r}")));
        match target {
            Some(t) => schema = t,
            None => break,
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.contains(&"integer") {
        Scalar::Integer
    } else if types.contains(&"number") {
        Scalar::Number
    } else if types.contains(&"boolean") {
        Scalar::Boolean
    } else {
        Scalar::Text
    }
}

/// One schema error, before it is placed in the body or on a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finding {
    /// JSON pointer into the checked value; every segment a plain name or an index.
    pointer: String,
    code: ErrorCode,
    message: String,
    expected: Option<String>,
}

impl Finding {
    fn new(pointer: &str, code: ErrorCode, message: impl Into<String>) -> Self {
        Finding {
            pointer: pointer.to_owned(),
            code,
            message: message.into(),
            expected: None,
        }
    }

    fn expecting(mut self, expected: String) -> Self {
        self.expected = Some(expected);
        self
    }

    fn in_body(self) -> FieldError {
        FieldError {
            expected: self.expected,
            ..FieldError::member(self.pointer, self.code, self.message)
        }
    }

    /// A query parameter is a scalar, so its findings are all about the parameter itself.
    fn on_parameter(self, name: &str) -> FieldError {
        FieldError {
            expected: self.expected,
            ..FieldError::parameter(name, self.code, self.message)
        }
    }
}

/// The instance location as a JSON pointer, cut before the first segment that is not a plain
/// name or an index. The schema's own names are plain (a test checks), so only a name the
/// caller made up is ever cut.
fn pointer_of(e: &ValidationError<'_>) -> String {
    let mut out = String::new();
    for segment in e.instance_path().segments() {
        match segment {
            jsonschema::paths::LocationSegment::Index(i) => {
                out.push('/');
                out.push_str(&i.to_string());
            }
            jsonschema::paths::LocationSegment::Property(name) if is_plain_name(&name) => {
                out.push('/');
                out.push_str(&name);
            }
            jsonschema::paths::LocationSegment::Property(_) => break,
        }
    }
    out
}

fn child(pointer: &str, name: &str) -> String {
    format!("{pointer}/{name}")
}

/// Turns one schema error into findings, in words of our own: jsonschema's `Display` quotes
/// the instance, which may be personal data.
fn describe(schemas: &Value, e: &ValidationError<'_>, out: &mut Vec<Finding>) {
    let at = pointer_of(e);
    let f = |code, message: String| Finding::new(&at, code, message);
    out.push(match e.kind() {
        Kind::AdditionalProperties { unexpected } | Kind::UnevaluatedProperties { unexpected } => {
            let members = members_admitted(schemas, e);
            for name in unexpected {
                let finding = if is_plain_name(name) {
                    Finding::new(
                        &child(&at, name),
                        ErrorCode::UnknownField,
                        "is not a member of this object",
                    )
                } else {
                    Finding::new(&at, ErrorCode::UnknownField, UNNAMED_MEMBER)
                };
                out.push(match &members {
                    Some(names) => finding.expecting(names.clone()),
                    None => finding,
                });
            }
            return;
        }
        Kind::Required { property } => {
            // The name is the schema's.
            let name = property.as_str().unwrap_or_default();
            Finding::new(&child(&at, name), ErrorCode::Required, "is required")
        }
        Kind::Type { kind } => f(
            ErrorCode::InvalidType,
            format!("must be {}", type_words(kind)),
        ),
        Kind::Enum { options } => f(ErrorCode::InvalidValue, "is not an allowed value".into())
            .expecting(one_of(options.as_array().map_or(&[][..], Vec::as_slice))),
        Kind::Constant { expected_value } => {
            f(ErrorCode::InvalidValue, "is not the allowed value".into())
                .expecting(one_of(std::slice::from_ref(&**expected_value)))
        }
        Kind::Pattern { pattern } => {
            f(ErrorCode::Pattern, "does not have the expected form".into())
                .expecting(expected_for_pattern(pattern))
        }
        Kind::BacktrackLimitExceeded { .. } | Kind::RegexEngineFailure { .. } => f(
            ErrorCode::Pattern,
            "could not be checked against its form".into(),
        ),
        Kind::Format { format } => f(ErrorCode::Format, format!("is not a valid {format}"))
            .expecting(expected_for_format(format)),
        Kind::MinLength { limit } => f(
            ErrorCode::Length,
            format!("must be at least {limit} characters long"),
        ),
        Kind::MaxLength { limit } => f(
            ErrorCode::Length,
            format!("must be at most {limit} characters long"),
        ),
        Kind::Minimum { limit } => f(ErrorCode::Range, format!("must be at least {limit}")),
        Kind::Maximum { limit } => f(ErrorCode::Range, format!("must be at most {limit}")),
        Kind::ExclusiveMinimum { limit } => {
            f(ErrorCode::Range, format!("must be greater than {limit}"))
        }
        Kind::ExclusiveMaximum { limit } => {
            f(ErrorCode::Range, format!("must be less than {limit}"))
        }
        Kind::MinItems { limit } => f(
            ErrorCode::ItemCount,
            format!("must have at least {limit} items"),
        ),
        Kind::MaxItems { limit } => f(
            ErrorCode::ItemCount,
            format!("must have at most {limit} items"),
        ),
        Kind::AnyOf { context } => return choice(schemas, &at, context, false, out),
        Kind::OneOfNotValid { context } => return choice(schemas, &at, context, true, out),
        Kind::OneOfMultipleValid { .. } => f(
            ErrorCode::InvalidValue,
            "matches more than one of the allowed forms".into(),
        ),
        Kind::UniqueItems => f(ErrorCode::InvalidValue, "must not repeat an item".into()),
        _ => f(ErrorCode::InvalidValue, "is not valid here".into()),
    });
}

/// `one of: a, b` for the members the object's schema lists, found beside the
/// `additionalProperties` keyword the error came from. The names are the schema's.
fn members_admitted(schemas: &Value, e: &ValidationError<'_>) -> Option<String> {
    let keyword = e.schema_path().as_str();
    let object = keyword.strip_suffix("/additionalProperties")?;
    let properties = schemas.pointer(object)?.get("properties")?.as_object()?;
    let names: Vec<Value> = properties
        .keys()
        .map(|k| Value::String(k.clone()))
        .collect();
    (!names.is_empty()).then(|| one_of(&names))
}

fn type_words(kind: &TypeKind) -> String {
    let words = |t: jsonschema::JsonType| match t {
        jsonschema::JsonType::Array => "a list",
        jsonschema::JsonType::Boolean => "true or false",
        jsonschema::JsonType::Integer => "an integer",
        jsonschema::JsonType::Null => "null",
        jsonschema::JsonType::Number => "a number",
        jsonschema::JsonType::Object => "an object",
        jsonschema::JsonType::String => "a string",
    };
    match kind {
        TypeKind::Single(t) => words(*t).to_owned(),
        TypeKind::Multiple(set) => set.iter().map(words).collect::<Vec<_>>().join(" or "),
    }
}

/// `one of: a, b, c`, from the schema's own values.
fn one_of(options: &[Value]) -> String {
    let names: Vec<String> = options
        .iter()
        .map(|o| match o {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    format!("one of: {}", names.join(", "))
}

/// An `anyOf` or `oneOf` none of whose branches matched. Reported as what the caller most
/// likely meant: the one branch of the value's type and tag (the non-null branch of a nullable
/// member; the branch of the `role` given), else what every branch asks, else the choice.
fn choice(
    schemas: &Value,
    at: &str,
    branches: &[Vec<ValidationError<'static>>],
    one: bool,
    out: &mut Vec<Finding>,
) {
    let other_type = |b: &Vec<ValidationError<'static>>| {
        b.iter()
            .all(|e| matches!(e.kind(), Kind::Type { .. }) && pointer_of(e) == at)
    };
    let tag = |e: &ValidationError<'static>| {
        match e.kind() {
            Kind::Enum { options } if options.as_array().is_some_and(|o| o.len() == 1) => {
                options.as_array().cloned()
            }
            Kind::Constant { expected_value } => Some(vec![(**expected_value).clone()]),
            _ => None,
        }
        .filter(|_| {
            pointer_of(e)
                .rsplit_once('/')
                .is_some_and(|(parent, _)| parent == at)
        })
    };
    let other_tag = |b: &Vec<ValidationError<'static>>| b.iter().any(|e| tag(e).is_some());
    let meant: Vec<&Vec<ValidationError<'static>>> = branches
        .iter()
        .filter(|b| !other_type(b) && !other_tag(b))
        .collect();
    match meant.as_slice() {
        [branch] => branch.iter().for_each(|e| describe(schemas, e, out)),
        [] => {
            // No branch fits the value's type or tag: say which tags, or types, there are.
            let mut tags: Vec<(String, Vec<Value>)> = Vec::new();
            for e in branches.iter().flatten() {
                if let Some(values) = tag(e) {
                    let pointer = pointer_of(e);
                    match tags.iter_mut().find(|(p, _)| *p == pointer) {
                        Some((_, all)) => all.extend(values),
                        None => tags.push((pointer, values)),
                    }
                }
            }
            if tags.is_empty() {
                let mut types: Vec<String> = Vec::new();
                for e in branches.iter().flatten() {
                    if let Kind::Type { kind } = e.kind() {
                        types.push(type_words(kind));
                    }
                }
                types.dedup();
                let message = format!("must be {}", types.join(" or "));
                out.push(Finding::new(at, ErrorCode::InvalidType, message));
            }
            for (pointer, mut values) in tags {
                values.dedup();
                out.push(
                    Finding::new(&pointer, ErrorCode::InvalidValue, "is not an allowed value")
                        .expecting(one_of(&values)),
                );
            }
        }
        several => {
            let found: Vec<Vec<Finding>> = several
                .iter()
                .map(|b| {
                    let mut v = Vec::new();
                    b.iter().for_each(|e| describe(schemas, e, &mut v));
                    v
                })
                .collect();
            let common: Vec<Finding> = found[0]
                .iter()
                .filter(|f| {
                    found[1..].iter().all(|other| {
                        other
                            .iter()
                            .any(|g| g.pointer == f.pointer && g.code == f.code)
                    })
                })
                .cloned()
                .collect();
            if !common.is_empty() {
                out.extend(common);
                return;
            }
            // Each branch asks for a member of its own (a phone, or an email): name the choice.
            let wanted: Option<Vec<String>> = several.iter().map(|b| missing(at, b)).collect();
            let how_many = if one { "exactly one" } else { "at least one" };
            out.push(match wanted {
                Some(names) => Finding::new(
                    at,
                    ErrorCode::Required,
                    format!("needs {how_many} of: {}", names.join(", ")),
                ),
                None => Finding::new(
                    at,
                    ErrorCode::InvalidValue,
                    "matches none of the allowed forms",
                ),
            });
        }
    }
}

/// The members a branch of a choice found missing at `at` (`null` counts as missing), when
/// that is all it found wrong.
fn missing(at: &str, branch: &[ValidationError<'static>]) -> Option<String> {
    let names: Option<Vec<String>> = branch
        .iter()
        .map(|e| match e.kind() {
            Kind::Required { property } if pointer_of(e) == at => {
                property.as_str().map(str::to_owned)
            }
            Kind::Type { .. } if e.instance().is_null() => pointer_of(e)
                .strip_prefix(at)
                .and_then(|rest| rest.strip_prefix('/'))
                .filter(|name| !name.is_empty() && !name.contains('/'))
                .map(str::to_owned),
            _ => None,
        })
        .collect();
    names.filter(|n| !n.is_empty()).map(|n| n.join(" and "))
}

/// Orders the entries by where they are (list indices numerically), drops what a wrong type
/// makes moot (a string's pattern on a number), and removes repeats.
pub fn finish(mut errors: Vec<FieldError>) -> Vec<FieldError> {
    let wrong_type: Vec<crate::error::ErrorLocation> = errors
        .iter()
        .filter(|e| e.code == ErrorCode::InvalidType)
        .map(|e| e.at.clone())
        .collect();
    errors.retain(|e| e.code == ErrorCode::InvalidType || !wrong_type.contains(&e.at));
    errors.sort_by(|a, b| {
        location_key(&a.at)
            .cmp(&location_key(&b.at))
            .then(a.code.cmp(&b.code))
            .then(a.message.cmp(&b.message))
    });
    errors.dedup();
    errors
}

/// Sorts pointers segment by segment, indices as numbers (`/items/2` before `/items/10`);
/// body members before parameters.
fn location_key(at: &crate::error::ErrorLocation) -> (u8, Vec<(u64, &str)>) {
    match at {
        crate::error::ErrorLocation::Pointer(p) => (
            0,
            p.split('/')
                .map(|s| match s.parse::<u64>() {
                    Ok(i) => (i, ""),
                    Err(_) => (u64::MAX, s),
                })
                .collect(),
        ),
        crate::error::ErrorLocation::Parameter(name) => (1, vec![(u64::MAX, name.as_str())]),
    }
}

/// Where serde stopped, as a JSON pointer (cut at a name that is not plain), and the name of a
/// missing or unknown member when it may be repeated.
pub fn serde_pointer(path: &serde_path_to_error::Path) -> (String, bool) {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            serde_path_to_error::Segment::Map { key } if is_plain_name(key) => {
                out.push('/');
                out.push_str(key);
            }
            serde_path_to_error::Segment::Enum { variant } if is_plain_name(variant) => {
                out.push('/');
                out.push_str(variant);
            }
            // A name the caller made up, or serde could not tell: stop at the parent.
            _ => return (out, false),
        }
    }
    (out, true)
}

/// `validator`'s errors, for a body (`in_body`: by JSON pointer) or a query (by parameter).
pub fn validator_errors(errors: &validator::ValidationErrors, in_body: bool) -> ApiError {
    let mut found = Vec::new();
    flatten_validation("", errors, &mut found);
    let errors = found
        .into_iter()
        .map(|f| {
            let e = if in_body {
                FieldError::member(f.pointer, f.code, f.message)
            } else {
                let name = f.pointer.trim_start_matches('/').to_owned();
                FieldError::parameter(name, f.code, f.message)
            };
            FieldError {
                expected: f.expected,
                ..e
            }
        })
        .collect();
    ApiError::Validation(finish(errors))
}

fn flatten_validation(prefix: &str, errors: &validator::ValidationErrors, out: &mut Vec<Finding>) {
    use validator::ValidationErrorsKind as K;
    for (field, kind) in errors.errors() {
        let path = child(prefix, field);
        match kind {
            K::Field(list) => out.extend(list.iter().map(|e| {
                let message = e
                    .message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| describe_validation(e));
                // `__all__` is a struct-level rule; it is about the object it applies to.
                let at = if field == "__all__" { prefix } else { &path };
                let (code, pattern) = validator_code(&e.code);
                let finding = Finding::new(at, code, message);
                match pattern {
                    Some(p) => finding.expecting(expected_for_pattern(p)),
                    None => finding,
                }
            })),
            K::Struct(inner) => flatten_validation(&path, inner, out),
            K::List(items) => {
                for (i, inner) in items {
                    flatten_validation(&child(&path, &i.to_string()), inner, out);
                }
            }
        }
    }
}

/// The closed set of codes for `validator`'s rules, and the documented pattern a rule
/// restates (for its `expected`).
fn validator_code(code: &str) -> (ErrorCode, Option<&'static str>) {
    match code {
        "length" => (ErrorCode::Length, None),
        "range" => (ErrorCode::Range, None),
        "e164" => (ErrorCode::Pattern, Some(E164_PATTERN)),
        "plain_text" => (ErrorCode::Pattern, Some(PLAIN_TEXT_PATTERN)),
        "person_text" => (ErrorCode::Pattern, Some(PERSON_TEXT_PATTERN)),
        "issued_id" => (ErrorCode::Pattern, Some(ISSUED_ID_PATTERN)),
        "phone_or_email" => (ErrorCode::Required, None),
        _ => (ErrorCode::InvalidValue, None),
    }
}

/// Describes a failed rule from its parameters, leaving out the submitted `value`.
fn describe_validation(e: &validator::ValidationError) -> String {
    let p = |k: &str| e.params.get(k).map(|v| v.to_string());
    match (e.code.as_ref(), p("min"), p("max")) {
        ("length", Some(min), Some(max)) => format!("length must be between {min} and {max}"),
        ("length", None, Some(max)) => format!("length must be at most {max}"),
        ("length", Some(min), None) => format!("length must be at least {min}"),
        ("range", Some(min), Some(max)) => format!("must be between {min} and {max}"),
        (code, _, _) => format!("failed rule `{code}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorLocation, MAX_FIELD_ERRORS};
    use serde_json::json;
    use std::sync::OnceLock;

    fn document() -> &'static Value {
        static DOC: OnceLock<Value> = OnceLock::new();
        DOC.get_or_init(|| serde_json::to_value(crate::openapi::spec()).unwrap())
    }

    fn schemas() -> &'static RequestSchemas {
        static SCHEMAS: OnceLock<RequestSchemas> = OnceLock::new();
        SCHEMAS.get_or_init(|| RequestSchemas::from_document(document()).unwrap())
    }

    fn body_errors(method: Method, path: &str, body: Value) -> Vec<FieldError> {
        match schemas().check_body(&method, path, &body) {
            Err(ApiError::Validation(v)) => v,
            other => panic!("expected a 422 for {body}, got {other:?}"),
        }
    }

    fn query_errors(path: &str, query: &str) -> Vec<FieldError> {
        match schemas().check_query(&Method::GET, path, query) {
            Err(ApiError::Validation(v)) => v,
            other => panic!("expected a 422 for {query}, got {other:?}"),
        }
    }

    /// (where, code) of each entry, for compact assertions.
    fn places(errors: &[FieldError]) -> Vec<(String, ErrorCode)> {
        errors
            .iter()
            .map(|e| {
                let at = match &e.at {
                    ErrorLocation::Pointer(p) => p.clone(),
                    ErrorLocation::Parameter(n) => format!("?{n}"),
                };
                (at, e.code)
            })
            .collect()
    }

    fn referral() -> Value {
        json!({
            "service_type": "counselling",
            "urgency": "routine",
            "modality": "video",
            "language": "en",
            "region": "GB-ENG",
            "contact": {
                "preferred_name": "Sam",
                "phone": "+447700900123",
                "email": "sam@example.org",
                "voicemail_consent": true
            }
        })
    }

    fn pattern_matcher(pattern: &str) -> Validator {
        let schema = json!({"type": "string", "pattern": pattern});
        jsonschema::draft202012::options()
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(&schema)
            .unwrap()
    }

    fn walk<'a>(v: &'a Value, key: &str, found: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(s) = m.get(key).and_then(Value::as_str) {
                    found.push(s);
                }
                m.values().for_each(|v| walk(v, key, found));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, key, found)),
            _ => {}
        }
    }

    /// Every pattern and checked format the document holds has its expected form in words,
    /// and every example given matches its pattern as the server reads it.
    #[test]
    fn every_documented_pattern_and_format_has_an_expected_form() {
        let mut patterns = Vec::new();
        walk(document(), "pattern", &mut patterns);
        assert!(patterns.len() >= 9, "{patterns:?}");
        for p in patterns {
            assert!(
                PATTERNS.iter().any(|(k, _, _)| *k == p),
                "no expected form for the pattern {p}"
            );
        }
        for (pattern, _, examples) in PATTERNS {
            let matcher = pattern_matcher(pattern);
            for example in *examples {
                assert!(matcher.is_valid(&json!(example)), "{example} vs {pattern}");
            }
        }
        let mut formats = Vec::new();
        walk(document(), "format", &mut formats);
        // The formats JSON Schema defines are checked; int32/int64 are OpenAPI's, and bounded
        // by each schema's minimum and maximum.
        for f in formats.iter().filter(|f| !f.starts_with("int")) {
            assert!(
                FORMATS.iter().any(|(k, _, _)| k == f),
                "no expected form for {f}"
            );
        }
        let checks_format = |format: &str, text: &str| {
            jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&json!({"format": format}))
                .unwrap()
                .is_valid(&json!(text))
        };
        for (format, _, examples) in FORMATS {
            assert!(!checks_format(format, "not valid"), "{format} is checked");
            for example in *examples {
                assert!(checks_format(format, example), "{example} is a {format}");
            }
        }
        for (_, pattern) in ["e164", "plain_text", "person_text", "issued_id"].map(validator_code) {
            let pattern = pattern.unwrap();
            assert!(PATTERNS.iter().any(|(k, _, _)| *k == pattern), "{pattern}");
        }
        assert_eq!(ISSUED_ID_PATTERN, crate::extract::ISSUED_ID_PATTERN);
    }

    /// The pointers name members by the schema's own names, so those must survive
    /// [`pointer_of`]: every member of a request body and every query parameter is plain.
    #[test]
    fn documented_member_and_parameter_names_are_plain() {
        fn names(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::Object(props)) = m.get("properties") {
                        out.extend(props.keys().cloned());
                    }
                    if let Some(Value::Array(req)) = m.get("required") {
                        out.extend(req.iter().filter_map(Value::as_str).map(str::to_owned));
                    }
                    m.values().for_each(|v| names(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| names(v, out)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        names(&document()["components"], &mut found);
        for item in document()["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if p["in"] == "query" {
                        found.push(p["name"].as_str().unwrap().to_owned());
                    }
                }
            }
        }
        assert!(found.len() > 50);
        for name in found {
            assert!(is_plain_name(&name), "{name}");
        }
    }

    /// Whether the compiled pattern accepts `s`; fails when `rule` does not agree.
    fn pattern_agrees_with_rule(
        matcher: &Validator,
        rule: fn(&str) -> Result<(), validator::ValidationError>,
        s: &str,
    ) -> bool {
        let by_schema = matcher.is_valid(&json!(s));
        assert_eq!(by_schema, rule(s).is_ok(), "{s:?}");
        by_schema
    }

    /// Runs `check` on strings of up to four characters drawn from the regex class `alphabet`.
    fn any_string_of(alphabet: &str, check: impl Fn(&str) -> bool) {
        let strings = proptest::string::string_regex(alphabet).unwrap();
        proptest::test_runner::TestRunner::default()
            .run(&strings, |s| {
                check(&s);
                Ok(())
            })
            .unwrap();
    }

    /// `extract::plain_text` and the documented pattern, read as JSON Schema reads it
    /// (ECMA-262, `\u0000` escapes, `\s` with U+FEFF), accept the same strings.
    #[test]
    fn the_plain_text_pattern_reads_as_plain_text_checks() {
        let matcher = pattern_matcher(PLAIN_TEXT_PATTERN);
        let agree = |s: &str| pattern_agrees_with_rule(&matcher, crate::extract::plain_text, s);
        for ok in ["Sam", " Sam ", "é", "a\u{a0}b", "Zoë O'Brien", "名前"] {
            assert!(agree(ok), "{ok:?}");
        }
        for bad in [
            "",
            " ",
            "\t",
            "\u{a0}",
            "\u{3000}",
            "\u{2028}",
            "\u{feff}",
            "a\0b",
            "a\u{1f}",
            "x\u{7f}",
            "a\u{85}",
            "a\u{9f}",
            "line\nbreak",
            "\u{200b}",
            "a\u{200d}b",
            "admin\u{202e}txt.exe",
            "x\u{2066}y\u{2069}",
            "a\u{61c}",
            "a\u{2060}",
            "a\u{feff}b",
            "\u{200f}",
        ] {
            assert!(!agree(bad), "{bad:?}");
        }
        any_string_of("[ a\\t\\n\\x00\\x1f\\x7f\\u{85}\\u{9f}\\u{a0}\\u{feff}\\u{2028}\\u{3000}é\\u{200b}\\u{200e}\\u{202e}\\u{2066}\\u{2069}\\u{2064}\\u{2065}\\u{61c}]{0,4}", agree);
    }

    /// `extract::person_text` and its documented pattern agree too: the joiners pass, alone
    /// they are blank, and every other invisible character is refused as before.
    #[test]
    fn the_person_text_pattern_reads_as_person_text_checks() {
        let matcher = pattern_matcher(PERSON_TEXT_PATTERN);
        let agree = |s: &str| pattern_agrees_with_rule(&matcher, crate::extract::person_text, s);
        for ok in [
            "Sam",
            "محمدرضا",
            "می\u{200c}خواهم",
            "👨\u{200d}👩\u{200d}👧",
            "क्\u{200d}ष",
            "\u{200c}a",
        ] {
            assert!(agree(ok), "{ok:?}");
        }
        for bad in [
            "",
            " ",
            "\u{200c}",
            "\u{200d} \u{200c}",
            "\u{feff}",
            "a\u{1f}",
            "line\nbreak",
            "\u{200b}",
            "a\u{200e}b",
            "a\u{200f}b",
            "admin\u{202e}txt.exe",
            "x\u{2066}y\u{2069}",
            "a\u{61c}",
            "a\u{2060}",
            "a\u{feff}b",
        ] {
            assert!(!agree(bad), "{bad:?}");
        }
        any_string_of("[ a\\t\\n\\x00\\x7f\\u{85}\\u{a0}\\u{feff}\\u{3000}é\\u{200b}\\u{200c}\\u{200d}\\u{200e}\\u{202e}\\u{2066}\\u{2064}\\u{61c}]{0,4}", agree);
    }

    /// The issue's own example: four bad members answer one 422 with four entries, each with
    /// its pointer and expected form, sorted by pointer.
    #[test]
    fn every_invalid_member_is_reported_with_its_expected_form() {
        let mut body = referral();
        body["language"] = json!("english");
        body["region"] = json!("GBR");
        body["contact"]["phone"] = json!("07700 900123");
        body["contact"]["email"] = json!("not an email");
        let errors = body_errors(Method::POST, "/v1/referrals", body);
        assert_eq!(
            places(&errors),
            [
                ("/contact/email".into(), ErrorCode::Format),
                ("/contact/phone".into(), ErrorCode::Pattern),
                ("/language".into(), ErrorCode::Pattern),
                ("/region".into(), ErrorCode::Pattern),
            ]
        );
        let expected: Vec<&str> = errors
            .iter()
            .map(|e| e.expected.as_deref().unwrap())
            .collect();
        assert_eq!(
            expected,
            [
                "an email address, e.g. sam@example.org",
                "E.164: + and 2–15 digits, the first not 0, no spaces, e.g. +447700900123",
                "BCP 47 primary language subtag, 2–3 letters in any case (stored and returned \
                 in lower case), e.g. en or yue",
                "ISO 3166-1 alpha-2 country, optionally an ISO 3166-2 subdivision, in any case \
                 (stored and returned in upper case), e.g. GB or GB-SCT",
            ]
        );
        let text = serde_json::to_string(&errors).unwrap();
        for value in ["english", "GBR", "07700", "not an email"] {
            assert!(!text.contains(value), "{value} echoed: {text}");
        }
    }

    #[test]
    fn unknown_members_are_named_only_when_plain() {
        let mut body = referral();
        body["contact"]["ssn 123-45-6789"] = json!(1);
        body["contact"]["home_address"] = json!("1 High St");
        body["x".repeat(41)] = json!(1);
        let errors = body_errors(Method::POST, "/v1/referrals", body);
        assert_eq!(
            places(&errors),
            [
                (String::new(), ErrorCode::UnknownField),
                ("/contact".into(), ErrorCode::UnknownField),
                ("/contact/home_address".into(), ErrorCode::UnknownField),
            ]
        );
        let members = "one of: best_time_to_contact, email, phone, preferred_name, \
                       voicemail_consent";
        assert_eq!(errors[1].expected.as_deref(), Some(members));
        assert_eq!(errors[2].expected.as_deref(), Some(members));
        assert!(errors[0]
            .expected
            .as_deref()
            .unwrap()
            .contains("contact, employee_ref"));
        let text = serde_json::to_string(&errors).unwrap();
        for leak in ["123-45", "ssn", "High St", &"x".repeat(41)] {
            assert!(!text.contains(leak), "{leak} echoed: {text}");
        }
    }

    /// Wrong types and enums: the type alone is reported (a pattern on a number is moot), an
    /// enum names its values, and codes stay exact (`Counselling` is not `counselling`).
    #[test]
    fn types_and_enum_values_are_exact() {
        let mut body = referral();
        body["service_type"] = json!("Counselling");
        body["urgency"] = json!(3);
        body["language"] = json!(12);
        let errors = body_errors(Method::POST, "/v1/referrals", body);
        assert_eq!(
            places(&errors),
            [
                ("/language".into(), ErrorCode::InvalidType),
                ("/service_type".into(), ErrorCode::InvalidValue),
                ("/urgency".into(), ErrorCode::InvalidType),
            ]
        );
        assert_eq!(
            errors[1].expected.as_deref(),
            Some(
                "one of: counselling, crisis, financial, legal, family, substance_use, \
                 workplace"
            )
        );
        assert_eq!(errors[0].message, "must be a string");
    }

    /// The contact's phone-or-email rule is one entry on the contact, naming the choice; a
    /// `null` counts as absent, as serde reads it.
    #[test]
    fn a_contact_without_phone_or_email_is_one_required_entry() {
        for contact in [
            json!({"preferred_name": "Sam", "voicemail_consent": true}),
            json!({"preferred_name": "Sam", "voicemail_consent": true, "phone": null,
                   "email": null}),
        ] {
            let mut body = referral();
            body["contact"] = contact;
            let errors = body_errors(Method::POST, "/v1/referrals", body);
            assert_eq!(places(&errors), [("/contact".into(), ErrorCode::Required)]);
            assert_eq!(errors[0].message, "needs at least one of: phone, email");
        }
    }

    /// A body documented as one variant per role is reported against the variant of the role
    /// given; an unknown role names the roles.
    #[test]
    fn a_client_body_is_checked_against_its_roles_variant() {
        let path = "/v1/admin/clients";
        let errors = body_errors(
            Method::POST,
            path,
            json!({"name": "x", "role": "hr_portal"}),
        );
        assert_eq!(
            places(&errors),
            [("/employer_id".into(), ErrorCode::Required)]
        );
        let id = "0190f3a2-7c1d-7e4b-9a55-3f0c2d8e4b61";
        let body = json!({"name": "x", "role": "hr_portal", "employer_id": id, "provider_id": id});
        let errors = body_errors(Method::POST, path, body);
        assert_eq!(
            places(&errors),
            [("/provider_id".into(), ErrorCode::UnknownField)]
        );
        assert_eq!(
            errors[0].expected.as_deref(),
            Some("one of: employer_id, name, role")
        );
        let errors = body_errors(Method::POST, path, json!({"name": "\t", "role": "king"}));
        assert_eq!(places(&errors), [("/role".into(), ErrorCode::InvalidValue)]);
        assert_eq!(
            errors[0].expected.as_deref(),
            Some("one of: admin, auditor, hr_portal, provider")
        );
        let errors = body_errors(Method::POST, path, json!({"name": "x"}));
        assert_eq!(places(&errors), [("/role".into(), ErrorCode::Required)]);
    }

    /// A nullable member documented as `oneOf: [null, X]` is reported against X.
    #[test]
    fn a_nullable_member_is_reported_against_its_non_null_form() {
        let path = "/v1/admin/providers/{id}";
        let errors = body_errors(Method::PATCH, path, json!({"status": "closed"}));
        assert_eq!(
            places(&errors),
            [("/status".into(), ErrorCode::InvalidValue)]
        );
        assert_eq!(
            errors[0].expected.as_deref(),
            Some("one of: active, paused")
        );
        let errors = body_errors(Method::PATCH, path, json!({"status": 5, "capacity": -1}));
        assert_eq!(
            places(&errors),
            [
                ("/capacity".into(), ErrorCode::Range),
                ("/status".into(), ErrorCode::InvalidType),
            ]
        );
        let errors = body_errors(Method::PATCH, path, json!({"languages": ["en", "e1", 3]}));
        assert_eq!(
            places(&errors),
            [
                ("/languages/1".into(), ErrorCode::Pattern),
                ("/languages/2".into(), ErrorCode::InvalidType),
            ]
        );
    }

    /// Every invalid parameter in one answer, by name; unknown names only when plain.
    #[test]
    fn every_invalid_query_parameter_is_reported_by_name() {
        let errors = query_errors(
            "/v1/audit/events",
            "outcome=ok&limit=0&from=yesterday&ssn%20123-45-6789=1&bogus=1&actor=a&actor=b",
        );
        assert_eq!(
            places(&errors),
            [
                ("?".into(), ErrorCode::UnknownField),
                ("?actor".into(), ErrorCode::InvalidValue),
                ("?bogus".into(), ErrorCode::UnknownField),
                ("?from".into(), ErrorCode::Format),
                ("?limit".into(), ErrorCode::Range),
                ("?outcome".into(), ErrorCode::InvalidValue),
            ]
        );
        assert!(
            errors[0].message.contains("parameter 4 "),
            "{}",
            errors[0].message
        );
        assert_eq!(
            errors[5].expected.as_deref(),
            Some("one of: success, denied, failure")
        );
        let text = serde_json::to_string(&errors).unwrap();
        assert!(
            !text.contains("123-45") && !text.contains("yesterday"),
            "{text}"
        );
        let errors = query_errors("/v1/reports/utilization", "months=x&from_month=2026-13");
        assert_eq!(
            places(&errors),
            [
                ("?from_month".into(), ErrorCode::Pattern),
                ("?group_by".into(), ErrorCode::Required),
                ("?months".into(), ErrorCode::InvalidType),
            ]
        );
        let ok = schemas().check_query(&Method::GET, "/v1/audit/events", "limit=5&outcome=denied");
        assert!(ok.is_ok(), "{ok:?}");
    }

    /// A hostile body cannot make a huge answer: 100 entries at most, and the detail says how
    /// many more there were.
    #[test]
    fn the_list_is_bounded() {
        let mut body = referral();
        let letters = |i: usize| -> String {
            [i / 676, i / 26 % 26, i % 26]
                .iter()
                .map(|d| char::from(b'a' + *d as u8))
                .collect()
        };
        for i in 0..5000 {
            body[format!("extra_{}", letters(i % 17576))] = json!(i);
            body[format!("bad {i}")] = json!(i);
        }
        let err = schemas()
            .check_body(&Method::POST, "/v1/referrals", &body)
            .unwrap_err();
        let resp = crate::error::render(&err, None, None);
        let read = actix_web::body::to_bytes(resp.into_body());
        let bytes = actix_web::rt::System::new().block_on(read).unwrap();
        let problem: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            problem["errors"].as_array().unwrap().len(),
            MAX_FIELD_ERRORS
        );
        assert!(problem["detail"].as_str().unwrap().contains("first 100"));
    }
}
