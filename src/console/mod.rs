//! The console for auditors and operators: a few static files (plain ES modules and CSS)
//! embedded in the binary at compile time and served at `/console`, from this origin only. The
//! page is a client of the public API like any other: it signs in at `/oauth/token` and calls
//! the documented operations with the token it got, so it adds no server-side auth path and no
//! data the API does not already give these roles.

pub mod http;

/// One embedded file: its name under `/console/`, its media type and its bytes.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

macro_rules! assets {
    ($(($name:literal, $type:expr)),* $(,)?) => {
        &[$(Asset {
            name: $name,
            content_type: $type,
            body: include_str!(concat!("assets/", $name)),
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the console is made of. A file not listed here is not served.
pub const ASSETS: &[Asset] = assets![
    ("index.html", "text/html; charset=utf-8"),
    ("console.css", "text/css; charset=utf-8"),
    ("app.js", JS),
    ("api.js", JS),
    ("dom.js", JS),
    ("chart.js", JS),
    ("auditor.js", JS),
    ("admin.js", JS),
];

pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page may run only its own files: no inline script or style, nothing from elsewhere,
    /// and API data is never parsed as HTML.
    #[test]
    fn the_assets_hold_no_inline_code_no_remote_loads_and_no_html_parsing() {
        let html = asset("index.html").unwrap().body;
        assert!(!html.contains("<script>"), "inline script");
        assert!(!html.contains("<style"), "inline style");
        assert!(!html.contains("style="), "inline style attribute");
        for a in ASSETS {
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
            ] {
                assert!(!a.body.contains(banned), "{} uses {banned}", a.name);
            }
            // The SVG namespace is a name, not an address anything is loaded from.
            let body = a.body.replace("http://www.w3.org/2000/svg", "");
            for banned in [
                "http://",
                "https://",
                "//cdn",
                "localStorage",
                "sessionStorage",
            ] {
                assert!(!body.contains(banned), "{} mentions {banned}", a.name);
            }
            assert!(!body.contains("document.cookie"), "{}", a.name);
        }
    }

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            for line in a.body.lines().filter(|l| l.starts_with("import ")) {
                let from = line.rsplit("from ").next().unwrap();
                let name = from.trim_matches(|c| c == '\'' || c == '"' || c == ';' || c == ' ');
                let name = name.trim_start_matches("./");
                assert!(asset(name).is_some(), "{} imports {name}", a.name);
            }
        }
    }
}
