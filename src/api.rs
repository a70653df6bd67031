//! The query API (contract section 12): `GET /v1/deadlines`, `GET
//! /v1/deadlines/{rule}/{key}` and `GET /v1/openapi.json`, routed by axum on the HTTP
//! server of `/metrics` (see [`crate::http`]).
//!
//! # Ground rules
//!
//! * **Token.** Every `/v1/` route needs `Authorization: Bearer <http.api_token>`,
//!   compared in constant time; a request without it, or with another, gets 401 (with
//!   `WWW-Authenticate: Bearer`). While no token is configured the routes answer 404
//!   naming `http.api_token`, whatever the request bears.
//! * **Errors** are JSON `{"error": ...}`: 400 naming the bad parameter, 404 for an
//!   unknown instance (or rule), 503 (with `Retry-After`) when a worker is too busy to
//!   answer within the bound of [`crate::query::ask`].
//! * **Document.** `/v1/openapi.json` is `src/openapi.json` with the configured rule names
//!   as the `rule` parameters' enum; the responses follow it (checked by schemathesis,
//!   `scripts/api-check.sh`).

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::config::{Secret, Settings};
use crate::core::rules::RuleSet;
use crate::query::ask::{Querier, Question, Unanswered};
use crate::query::{merge, params};

/// The OpenAPI 3.1 document, before the rule names are filled in.
const OPENAPI: &str = include_str!("openapi.json");

/// What the `/v1/` routes need.
pub struct Api {
    token: Option<Secret>,
    querier: Querier,
    rules: Arc<RuleSet>,
    openapi: String,
}

impl Api {
    pub fn new(settings: &Settings, querier: Querier) -> Api {
        Api {
            token: settings.http.api_token.clone(),
            querier,
            rules: Arc::new(settings.rules.clone()),
            openapi: openapi_document(&settings.rules),
        }
    }

    /// The `/v1/` routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/deadlines", get(list))
            .route("/v1/deadlines/{rule}/{key}", get(one))
            .route("/v1/openapi.json", get(openapi))
            .with_state(Arc::new(self))
    }

    /// The response to a request that may not be answered, or `None`.
    fn refuse(&self, headers: &HeaderMap) -> Option<Response> {
        let Some(token) = &self.token else {
            return Some(error(
                StatusCode::NOT_FOUND,
                "the query API is off: set http.api_token (or SLA_TIMERD__HTTP__API_TOKEN) to turn it on",
            ));
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()));
        match presented {
            Some(p) if same(p, token.expose().as_bytes()) => None,
            _ => {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "this route needs the header Authorization: Bearer <http.api_token>",
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                Some(r)
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(token)
}

/// Byte equality in time that depends on the lengths only, not on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i).copied(), b.get(i).copied());
        diff |= usize::from(x.unwrap_or(0) ^ y.unwrap_or(0));
    }
    std::hint::black_box(diff) == 0
}

async fn list(State(api): State<Arc<Api>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if let Some(r) = api.refuse(&headers) {
        return r;
    }
    let query = match params::parse(q.as_deref(), &api.rules) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.0),
    };
    let limit = query.limit;
    match api.querier.ask(Question::Page(Arc::new(query))).await {
        Ok(answers) => ok(merge(answers, limit).to_json()),
        Err(e) => unanswered(&e),
    }
}

async fn one(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    if let Some(r) = api.refuse(&headers) {
        return r;
    }
    let Ok(Path((rule, key))) = path else {
        return error(
            StatusCode::BAD_REQUEST,
            "rule, key: the path is /v1/deadlines/{rule}/{key}, each UTF-8 once decoded",
        );
    };
    let id = match params::rule_id(&api.rules, &rule) {
        Ok(id) => id,
        Err(e) => return error(StatusCode::NOT_FOUND, &format!("rule: {e}")),
    };
    let question = Question::One {
        rule: id,
        key: key.as_str().into(),
    };
    match api.querier.ask(question).await {
        Ok(answers) => match merge(answers, 1).entries.first() {
            Some(entry) => ok(entry.to_json()),
            None => error(
                StatusCode::NOT_FOUND,
                &format!("no open instance of {rule} with key {key:?}"),
            ),
        },
        Err(e) => unanswered(&e),
    }
}

async fn openapi(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    if let Some(r) = api.refuse(&headers) {
        return r;
    }
    json_response(StatusCode::OK, api.openapi.clone())
}

/// The document with the configured rule names as the enum of every `rule` parameter.
fn openapi_document(rules: &RuleSet) -> String {
    let mut doc: Value = serde_json::from_str(OPENAPI).expect("src/openapi.json is JSON");
    let names: Vec<Value> = rules.rules.iter().map(|r| json!(&*r.name)).collect();
    for p in ["RuleFilter", "RulePath"] {
        doc["components"]["parameters"][p]["schema"]["enum"] = Value::Array(names.clone());
    }
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    doc.to_string()
}

fn ok(body: Value) -> Response {
    json_response(StatusCode::OK, body.to_string())
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({ "error": message }).to_string())
}

fn unanswered(e: &Unanswered) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_equal() {
        assert!(same(b"abc", b"abc"));
        for other in [&b"abd"[..], b"ab", b"abcd", b"", b"ABC"] {
            assert!(!same(other, b"abc"), "{other:?}");
        }
        assert_eq!(bearer(b"Bearer t0k"), Some(&b"t0k"[..]));
        assert_eq!(bearer(b"bearer t0k"), Some(&b"t0k"[..]));
        assert_eq!(bearer(b"Basic dXNlcg=="), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    #[test]
    fn the_document_is_openapi_3_1_and_lists_the_configured_rules() {
        let rules = crate::config::load_rules(None).unwrap();
        let doc: Value = serde_json::from_str(&openapi_document(&rules)).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let names = &doc["components"]["parameters"]["RulePath"]["schema"]["enum"];
        assert_eq!(names[0], "customer_reply");
        assert_eq!(names.as_array().unwrap().len(), rules.rules.len());
        for path in [
            "/v1/deadlines",
            "/v1/deadlines/{rule}/{key}",
            "/v1/openapi.json",
        ] {
            assert!(doc["paths"][path]["get"].is_object(), "{path}");
        }
    }
}
