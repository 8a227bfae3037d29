//! The read-only web dashboard served at `/` by the telemetry server: one HTML page, its
//! script and its style sheet, embedded in the binary (`include_str!`; no build chain, no
//! CDN, works offline). The page polls the JSON APIs (`/api/v1/status`, `/api/v1/events`)
//! of the same origin and renders them with `textContent` only. Pure: the assets and the
//! headers that keep them safe; `telemetry::http` routes to [`asset`].

/// The page.
pub const INDEX_HTML: &str = include_str!("index.html");
/// Its script.
pub const DASHBOARD_JS: &str = include_str!("dashboard.js");
/// Its style sheet.
pub const DASHBOARD_CSS: &str = include_str!("dashboard.css");

/// The Content-Security-Policy of every dashboard answer: only this origin's own script,
/// style and API; no inline code, no frames, no forms, no other origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
                       frame-ancestors 'none'";

/// The headers besides the content type that every dashboard answer carries.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

/// The asset at `path` and its content type, if `path` is one of the dashboard's.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" | "/index.html" => Some((INDEX_HTML, "text/html; charset=utf-8")),
        "/dashboard.js" => Some((DASHBOARD_JS, "text/javascript; charset=utf-8")),
        "/dashboard.css" => Some((DASHBOARD_CSS, "text/css; charset=utf-8")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_assets_and_no_inline_code() {
        assert!(INDEX_HTML.contains(r#"<script src="dashboard.js" defer></script>"#));
        assert!(INDEX_HTML.contains(r#"<link rel="stylesheet" href="dashboard.css">"#));
        // No inline script or style (the CSP would refuse it) and nothing from elsewhere.
        assert_eq!(INDEX_HTML.matches("<script").count(), 1);
        assert!(!INDEX_HTML.contains("style=") && !INDEX_HTML.contains("<style"));
        for text in [INDEX_HTML, DASHBOARD_JS, DASHBOARD_CSS] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
        // Server data is never parsed as HTML.
        assert!(!DASHBOARD_JS.contains("innerHTML") && !DASHBOARD_JS.contains("eval("));
        assert_eq!(asset("/").map(|a| a.1), Some("text/html; charset=utf-8"));
        assert!(asset("/etc/passwd").is_none());
    }
}
