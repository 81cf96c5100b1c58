//! NATS headers → the caller and the tonic metadata a gRPC request would carry.

use api_common::{Auth, Caller};
use async_nats::HeaderMap;
use tonic::Status;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

/// The NATS header carrying `Bearer <token>`.
pub(crate) const AUTHORIZATION: &str = "Authorization";

/// Client headers copied into the request metadata (stored with the events, as over gRPC).
pub(crate) const FORWARDED: &[&str] = &[
    "x-correlation-id",
    "x-causation-id",
    "x-client-version",
    "x-client-platform",
];

/// The first value of header `name`, whatever its case.
fn header<'a>(headers: Option<&'a HeaderMap>, name: &str) -> Option<&'a str> {
    headers?
        .iter()
        .find(|(n, _)| AsRef::<str>::as_ref(*n).eq_ignore_ascii_case(name))
        .and_then(|(_, values)| values.first())
        .map(|v| v.as_str())
}

/// The caller named by header `Authorization: Bearer <token>`, or UNAUTHENTICATED.
pub(crate) fn authenticate(auth: &Auth, headers: Option<&HeaderMap>) -> Result<Caller, Status> {
    let value = header(headers, AUTHORIZATION)
        .ok_or_else(|| Status::unauthenticated("missing header Authorization: Bearer <token>"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| Status::unauthenticated("header Authorization must be: Bearer <token>"))?;
    auth.verify(token.trim())
}

/// The [`FORWARDED`] headers present, as gRPC metadata.
pub(crate) fn forwarded_metadata(headers: Option<&HeaderMap>) -> Result<MetadataMap, Status> {
    let mut metadata = MetadataMap::new();
    for name in FORWARDED {
        if let Some(value) = header(headers, name) {
            let bad = || api_common::invalid_argument(name, "must be printable ASCII");
            if !value.bytes().all(|b| (b' '..=b'~').contains(&b)) {
                return Err(bad());
            }
            let value: AsciiMetadataValue = value.parse().map_err(|_| bad())?;
            metadata.insert(*name, value);
        }
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tonic::Code;

    fn auth() -> Auth {
        Auth::new(b"nats-api unit tests: 32+ bytes of secret")
    }

    #[test]
    fn bearer_tokens_in_any_header_case() {
        let user = uuid::Uuid::now_v7();
        let token = auth().issue(user, Duration::from_secs(60));
        for name in ["Authorization", "authorization", "AUTHORIZATION"] {
            let mut h = HeaderMap::new();
            h.insert(name, format!("Bearer {token}").as_str());
            assert_eq!(authenticate(&auth(), Some(&h)).unwrap().user_id, user);
        }
    }

    #[test]
    fn missing_malformed_and_bad_tokens_are_unauthenticated() {
        let mut basic = HeaderMap::new();
        basic.insert("Authorization", "Basic abc");
        let mut bad = HeaderMap::new();
        bad.insert("Authorization", "Bearer nope");
        for headers in [None, Some(&HeaderMap::new()), Some(&basic), Some(&bad)] {
            let err = authenticate(&auth(), headers).unwrap_err();
            assert_eq!(err.code(), Code::Unauthenticated);
        }
    }

    #[test]
    fn client_headers_become_metadata() {
        let mut h = HeaderMap::new();
        h.insert("X-Correlation-Id", "corr");
        h.insert("x-client-platform", "cli");
        h.insert("x-other", "dropped");
        let m = forwarded_metadata(Some(&h)).unwrap();
        assert_eq!(m.get("x-correlation-id").unwrap(), "corr");
        assert_eq!(m.get("x-client-platform").unwrap(), "cli");
        assert_eq!(m.len(), 2);
        let mut bad = HeaderMap::new();
        bad.insert("x-client-version", "é");
        let err = forwarded_metadata(Some(&bad)).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}
