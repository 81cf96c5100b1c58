//! Bearer-JWT authentication (HS256, `sub` = user UUID, `exp` checked).

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use tonic::service::Interceptor;
use tonic::{Request, Status};
use uuid::Uuid;

/// The claims LifeOS tokens carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (UUID).
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Extra roles (e.g. `analyst`); none for a normal user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// The authenticated caller of an RPC, put in the request extensions by [`Auth`]'s interceptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user the token was issued to.
    pub user_id: Uuid,
    /// The token's roles.
    pub roles: Vec<String>,
}

/// The role that may read any user's history (replay).
pub const ANALYST: &str = "analyst";
/// The role that may operate the engine (projection status, rebuilds).
pub const ADMIN: &str = "admin";

impl Caller {
    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// PERMISSION_DENIED unless the token carries `role`.
    pub fn require_role(&self, role: &str) -> Result<(), Status> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "needs a token with the {role} role"
            )))
        }
    }

    /// The caller of `request`, as the interceptor left it (UNAUTHENTICATED if absent).
    pub fn of<T>(request: &Request<T>) -> Result<Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Status::unauthenticated("missing bearer token"))
    }
}

/// Issues and verifies tokens with one HS256 secret.
///
/// ```
/// let auth = api_common::Auth::new(b"a secret of at least thirty-two bytes!!");
/// let user = uuid::Uuid::now_v7();
/// let token = auth.issue(user, std::time::Duration::from_secs(60));
/// assert_eq!(auth.verify(&token).unwrap().user_id, user);
/// assert!(auth.verify("not a token").is_err());
/// ```
#[derive(Clone)]
pub struct Auth {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// The minimum secret length accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

impl Auth {
    /// Uses `secret` for HS256.
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A new random secret (64 hex characters).
    pub fn generate_secret() -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A token for `user_id`, valid for `ttl`.
    pub fn issue(&self, user_id: Uuid, ttl: Duration) -> String {
        self.issue_with_roles(user_id, ttl, Vec::new())
    }

    /// A token for `user_id` with `roles`, valid for `ttl`.
    pub fn issue_with_roles(&self, user_id: Uuid, ttl: Duration, roles: Vec<String>) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            roles,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The caller a token stands for, or why it is refused.
    pub fn verify(&self, token: &str) -> Result<Caller, Status> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    Status::unauthenticated("token expired")
                }
                _ => Status::unauthenticated(format!("invalid token: {e}")),
            })?;
        let user_id = Uuid::parse_str(&data.claims.sub)
            .map_err(|_| Status::unauthenticated("invalid token: sub is not a user UUID"))?;
        Ok(Caller {
            user_id,
            roles: data.claims.roles,
        })
    }

    /// The caller named by a request's `authorization: Bearer <token>` header.
    pub fn authenticate<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
        let value = header
            .to_str()
            .map_err(|_| Status::unauthenticated("authorization header is not text"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be: Bearer <token>"))?;
        self.verify(token.trim())
    }
}

impl Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.authenticate(&request)?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let auth = Auth::new(b"0123456789abcdef0123456789abcdef");
        let user = Uuid::now_v7();
        let now = chrono::Utc::now().timestamp();
        let expired = Claims {
            sub: user.to_string(),
            iat: now - 3600,
            exp: now - 60,
            roles: vec![],
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &expired, &auth.encoding).unwrap();
        assert_eq!(auth.verify(&token).unwrap_err().message(), "token expired");
        let other = Auth::new(b"another secret entirely, 32 bytes!!");
        let foreign = other.issue(user, Duration::from_secs(60));
        assert!(auth.verify(&foreign).is_err());
        assert_eq!(other.verify(&foreign).unwrap().user_id, user);
    }
}
