//! Events (events.k8s.io/v1) as an API server takes them: created, with
//! the checks the real one makes on the fields it requires, and patched
//! (JSON merge patch, RFC 7386) as their series grow. Kept for the tests
//! to read; never listed or watched.

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::Router;
use serde_json::{json, Value};

use super::{status, Server};

/// The routes: create in a namespace, patch one by name.
pub fn routes(router: Router<Server>) -> Router<Server> {
    router
        .route("/apis/events.k8s.io/v1/namespaces/:ns/events", post(create))
        .route(
            "/apis/events.k8s.io/v1/namespaces/:ns/events/:name",
            patch(update),
        )
}

fn refuse(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = axum::Json(status(code.as_u16(), reason, message));
    (code, body).into_response()
}

/// What the real API server requires of a new Event (its validation of
/// events.k8s.io/v1); the first thing missing.
fn invalid(ev: &Value) -> Option<String> {
    if ev["apiVersion"] != "events.k8s.io/v1" || ev["kind"] != "Event" {
        return Some(format!("not an events.k8s.io/v1 Event: {ev}"));
    }
    for field in [
        "eventTime",
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
    ] {
        if ev[field].as_str().is_none_or(str::is_empty) {
            return Some(format!("{field}: Required value"));
        }
    }
    for field in [
        "reportingController",
        "reportingInstance",
        "action",
        "reason",
    ] {
        if ev[field].as_str().is_some_and(|v| v.len() > 128) {
            return Some(format!("{field}: Too long: may not be more than 128 bytes"));
        }
    }
    if ev["note"].as_str().is_some_and(|n| n.len() > 1024) {
        return Some("note: Too long: may not be more than 1024 bytes".into());
    }
    if !matches!(ev["type"].as_str(), Some("Normal" | "Warning")) {
        return Some(format!("type: Unsupported value: {}", ev["type"]));
    }
    if ev["regarding"]["kind"].as_str().is_none_or(str::is_empty) {
        return Some("regarding.kind: Required value".into());
    }
    None
}

async fn create(State(s): State<Server>, UrlPath(ns): UrlPath<String>, body: Bytes) -> Response {
    let Ok(mut ev) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "BadRequest", "not JSON");
    };
    if let Some(why) = invalid(&ev) {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &why);
    }
    let Some(name) = ev["metadata"]["name"].as_str().map(String::from) else {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name: Required value",
        );
    };
    let mut c = s.lock();
    let key = format!("{ns}/{name}");
    if c.node_events.contains_key(&key) {
        let why = format!("events.events.k8s.io \"{name}\" already exists");
        return refuse(StatusCode::CONFLICT, "AlreadyExists", &why);
    }
    c.rv += 1;
    ev["metadata"]["namespace"] = json!(ns);
    ev["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", c.rv));
    ev["metadata"]["resourceVersion"] = json!(c.rv.to_string());
    c.node_events.insert(key, ev.clone());
    c.event_writes.push(("POST".into(), name));
    (StatusCode::CREATED, axum::Json(ev)).into_response()
}

async fn update(
    State(s): State<Server>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let merge = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/merge-patch+json"));
    if !merge {
        let why = "only application/merge-patch+json here";
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            why,
        );
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "BadRequest", "not JSON");
    };
    let mut c = s.lock();
    c.rv += 1;
    let rv = c.rv;
    let Some(ev) = c.node_events.get_mut(&format!("{ns}/{name}")) else {
        let why = format!("events.events.k8s.io \"{name}\" not found");
        return refuse(StatusCode::NOT_FOUND, "NotFound", &why);
    };
    merge_patch(ev, &patch);
    ev["metadata"]["resourceVersion"] = json!(rv.to_string());
    let ev = ev.clone();
    c.event_writes.push(("PATCH".into(), name));
    axum::Json(ev).into_response()
}

/// RFC 7386: objects merge member by member, null removes, anything else
/// replaces.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    for (k, v) in members {
        if v.is_null() {
            if let Some(t) = target.as_object_mut() {
                t.remove(k);
            }
        } else {
            merge_patch(&mut target[k], v);
        }
    }
}
