//! Who may do what: bearer tokens mapped to a tenant and roles.
//!
//! Off by default (local use: the tenant comes from `X-Scope-OrgID`). On,
//! every request but health, readiness and `/metrics` needs a token, as
//! `Authorization: Bearer <token>` or HTTP Basic with the token as the
//! password (what Grafana's data sources send). Tokens are stored as
//! SHA-256 hex digests, in the config (`[[auth.tokens]]`) and/or a tokens
//! file that is re-read when it changes, so tokens rotate without a
//! restart. A token names one tenant: a request naming another tenant in
//! `X-Scope-OrgID` is refused (403), never served.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use strata_types::{ErrorKind, TenantId};

use crate::error::{ApiError, Shape};
use crate::tenant::{self, TENANT_HEADER};

/// What a token allows. `admin` allows everything on its tenant;
/// `operator` (which no other role implies) the server-wide operations:
/// flushing every tenant, every tenant's series on `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Read,
    Write,
    Admin,
    Operator,
}

impl Role {
    fn verb(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "administer",
            Role::Operator => "operate the server",
        }
    }
}

/// One token as configured: never the token itself, its SHA-256.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// For logs and error messages ("token grafana-odoo may not write").
    #[serde(default)]
    pub name: String,
    /// Lower-case hex SHA-256 of the token (`strata token new` prints it).
    pub sha256: String,
    pub tenant: String,
    pub roles: Vec<Role>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(Debug)]
struct Grant {
    name: String,
    tenant: TenantId,
    roles: Vec<Role>,
}

type Table = HashMap<[u8; 32], Arc<Grant>>;

/// Builds the lookup table, refusing anything malformed (so a bad edit
/// never silently locks everybody out or lets anybody in).
fn table(entries: &[TokenEntry]) -> Result<Table, String> {
    let mut out = Table::new();
    for (i, e) in entries.iter().enumerate() {
        let which = if e.name.is_empty() {
            format!("token #{}", i + 1)
        } else {
            format!("token {:?}", e.name)
        };
        let digest: [u8; 32] = hex::decode(&e.sha256)
            .ok()
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| format!("{which}: sha256 must be 64 hex digits"))?;
        let tenant =
            TenantId::try_new(&e.tenant).map_err(|err| format!("{which}: tenant: {err}"))?;
        if e.roles.is_empty() {
            return Err(format!("{which}: no roles"));
        }
        let grant = Grant {
            // Messages say "token {name}": an unnamed one is "#2", not
            // "token #2" (which would read "token token #2").
            name: if e.name.is_empty() {
                format!("#{}", i + 1)
            } else {
                e.name.clone()
            },
            tenant,
            roles: e.roles.clone(),
        };
        if out.insert(digest, Arc::new(grant)).is_some() {
            return Err(format!("{which}: the same token is listed twice"));
        }
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<Vec<TokenEntry>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file: TokenFile = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(file.token)
}

/// The token table and where it comes from.
#[derive(Debug)]
pub struct Authenticator {
    enabled: bool,
    inline: Vec<TokenEntry>,
    file: Option<PathBuf>,
    file_mtime: Mutex<Option<SystemTime>>,
    tokens: RwLock<Table>,
}

/// The password of HTTP Basic credentials (`base64(user:password)`, any
/// user name): the token. Padding is optional, as Go's and other clients
/// leave it out.
pub fn basic_password(encoded: &str) -> Option<String> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let decoded = LENIENT.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_owned())
}

/// SHA-256 of a token, hex: what the config stores.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Authenticator {
    /// Disabled: tenants come from `X-Scope-OrgID`.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            inline: Vec::new(),
            file: None,
            file_mtime: Mutex::new(None),
            tokens: RwLock::new(Table::new()),
        }
    }

    /// Loads the configured tokens; an invalid file or entry is an error.
    pub fn new(
        enabled: bool,
        inline: Vec<TokenEntry>,
        file: Option<PathBuf>,
    ) -> Result<Self, String> {
        let auth = Self {
            enabled,
            inline,
            file,
            file_mtime: Mutex::new(None),
            tokens: RwLock::new(Table::new()),
        };
        if enabled {
            auth.reload()?;
        }
        Ok(auth)
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn reload(&self) -> Result<usize, String> {
        let mut entries = self.inline.clone();
        let mtime = match &self.file {
            Some(path) => {
                entries.extend(read_file(path)?);
                std::fs::metadata(path).and_then(|m| m.modified()).ok()
            }
            None => None,
        };
        let t = table(&entries)?;
        let n = t.len();
        *self.tokens.write() = t;
        *self.file_mtime.lock() = mtime;
        Ok(n)
    }

    /// Re-reads the tokens file if it changed since the last load. A file
    /// that no longer parses keeps the previous tokens (and says why).
    pub fn reload_if_changed(&self) -> Result<Option<usize>, String> {
        let Some(path) = &self.file else {
            return Ok(None);
        };
        if !self.enabled {
            return Ok(None);
        }
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if mtime.is_some() && mtime == *self.file_mtime.lock() {
            return Ok(None);
        }
        self.reload().map(Some)
    }

    fn credentials(headers: &HeaderMap) -> Option<String> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, rest) = value.split_once(' ')?;
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" => Some(rest.trim().to_owned()),
            "basic" => basic_password(rest),
            _ => None,
        }
    }

    fn grant(&self, headers: &HeaderMap, shape: Shape) -> Result<Arc<Grant>, ApiError> {
        let Some(token) = Self::credentials(headers) else {
            return Err(ApiError::new(
                ErrorKind::Unauthenticated,
                "authentication required: send \"Authorization: Bearer <token>\" or HTTP Basic auth with the token as password",
                shape,
            ));
        };
        self.grant_for_token(token.as_bytes(), shape)
    }

    fn grant_for_token(&self, token: &[u8], shape: Shape) -> Result<Arc<Grant>, ApiError> {
        let digest: [u8; 32] = Sha256::digest(token).into();
        self.tokens
            .read()
            .get(&digest)
            .cloned()
            .ok_or_else(|| ApiError::new(ErrorKind::Unauthenticated, "invalid token", shape))
    }

    /// A login that presents a token as its password (the Postgres wire
    /// protocol) for `tenant` (its database name): allowed if the token is
    /// valid, is for that tenant and may do `role`.
    pub fn authorize_login(
        &self,
        token: &[u8],
        tenant: &TenantId,
        role: Role,
        shape: Shape,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let grant = self.grant_for_token(token, shape)?;
        Self::check_role(&grant, role, shape)?;
        if &grant.tenant != tenant {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!(
                    "token {} is for tenant {}, not {}",
                    grant.name,
                    grant.tenant.as_str(),
                    tenant.as_str()
                ),
                shape,
            ));
        }
        Ok(())
    }

    /// The tenant a request acts for, if it may do `role`.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        role: Role,
        require_tenant: bool,
        shape: Shape,
    ) -> Result<TenantId, ApiError> {
        if !self.enabled {
            return tenant::resolve(headers, require_tenant, shape);
        }
        let grant = self.grant_with(headers, role, shape)?;
        if let Some(asked) = headers.get(TENANT_HEADER)
            && asked.as_bytes() != grant.tenant.as_str().as_bytes()
        {
            return Err(ApiError::new(
                ErrorKind::Forbidden,
                format!(
                    "token {} is for tenant {}, not {}",
                    grant.name,
                    grant.tenant.as_str(),
                    String::from_utf8_lossy(asked.as_bytes())
                ),
                shape,
            ));
        }
        Ok(grant.tenant.clone())
    }

    /// What an admin request may act on: every tenant with auth off or
    /// for an operator token, else its token's tenant (which must have the
    /// admin role). `None`: every tenant.
    pub fn admin_scope(
        &self,
        headers: &HeaderMap,
        shape: Shape,
    ) -> Result<Option<TenantId>, ApiError> {
        if !self.enabled {
            return Ok(None);
        }
        let grant = self.grant(headers, shape)?;
        if grant.roles.contains(&Role::Operator) {
            return Ok(None);
        }
        Self::check_role(&grant, Role::Admin, shape)?;
        Ok(Some(grant.tenant.clone()))
    }

    /// Who the request's token is: its name, tenant and roles; `None`
    /// with auth off (anybody may act for any tenant).
    pub fn whoami(
        &self,
        headers: &HeaderMap,
        shape: Shape,
    ) -> Result<Option<(String, TenantId, Vec<Role>)>, ApiError> {
        if !self.enabled {
            return Ok(None);
        }
        let grant = self.grant(headers, shape)?;
        Ok(Some((
            grant.name.clone(),
            grant.tenant.clone(),
            grant.roles.clone(),
        )))
    }

    /// Whether the request carries an operator token (always, with auth
    /// off): for what is shown only to operators.
    pub fn is_operator(&self, headers: &HeaderMap) -> bool {
        !self.enabled
            || self
                .grant(headers, Shape::Json)
                .is_ok_and(|g| g.roles.contains(&Role::Operator))
    }

    /// A token with `role`, whatever its tenant (server-wide operations).
    pub fn require_role(
        &self,
        headers: &HeaderMap,
        role: Role,
        shape: Shape,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        self.grant_with(headers, role, shape).map(|_| ())
    }

    /// The request's grant, if it allows `role` (admin allows all).
    fn grant_with(
        &self,
        headers: &HeaderMap,
        role: Role,
        shape: Shape,
    ) -> Result<Arc<Grant>, ApiError> {
        let grant = self.grant(headers, shape)?;
        Self::check_role(&grant, role, shape)?;
        Ok(grant)
    }

    fn check_role(grant: &Grant, role: Role, shape: Shape) -> Result<(), ApiError> {
        if grant
            .roles
            .iter()
            .any(|r| *r == role || (*r == Role::Admin && role != Role::Operator))
        {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorKind::Forbidden,
                format!(
                    "token {} may not {} (roles: {:?})",
                    grant.name,
                    role.verb(),
                    grant.roles
                ),
                shape,
            ))
        }
    }

    /// Enabled, with no valid token: what a tokens file that stopped
    /// parsing between validation and start-up leaves (fail closed).
    pub fn locked() -> Self {
        Self {
            enabled: true,
            ..Self::disabled()
        }
    }

    /// Any valid token (endpoints that are not about one tenant's data).
    pub fn authenticate(&self, headers: &HeaderMap, shape: Shape) -> Result<(), ApiError> {
        if self.enabled {
            self.grant(headers, shape)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    /// Finding 13: Basic credentials without base64 padding (Go clients)
    /// are read like padded ones.
    #[test]
    fn basic_credentials_with_or_without_padding() {
        use base64::Engine as _;
        for user_token in ["grafana:acme-token1", "u:t", "grafana:acme-token"] {
            for engine in [
                base64::engine::general_purpose::STANDARD,
                base64::engine::general_purpose::STANDARD_NO_PAD,
            ] {
                let encoded = engine.encode(user_token);
                assert_eq!(
                    basic_password(&encoded).as_deref(),
                    user_token.split_once(':').map(|(_, t)| t),
                    "{encoded}"
                );
            }
        }
        assert_eq!(basic_password("!!"), None);
    }

    use axum::http::HeaderValue;

    use super::*;

    fn entry(token: &str, tenant: &str, roles: Vec<Role>) -> TokenEntry {
        TokenEntry {
            name: format!("{tenant}-token"),
            sha256: token_digest(token),
            tenant: tenant.into(),
            roles,
        }
    }

    fn headers(auth: &str, tenant: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        if let Some(t) = tenant {
            h.insert(TENANT_HEADER, HeaderValue::from_str(t).unwrap());
        }
        h
    }

    #[test]
    fn tokens_map_to_their_tenant_and_roles() {
        let auth = Authenticator::new(
            true,
            vec![
                entry("r-secret", "odoo", vec![Role::Read]),
                entry("w-secret", "odoo", vec![Role::Write]),
            ],
            None,
        )
        .unwrap();
        let t = auth
            .authorize(
                &headers("Bearer r-secret", None),
                Role::Read,
                false,
                Shape::Json,
            )
            .unwrap();
        assert_eq!(t.as_str(), "odoo");
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("grafana:r-secret")
        );
        assert!(
            auth.authorize(
                &headers(&basic, Some("odoo")),
                Role::Read,
                false,
                Shape::Json
            )
            .is_ok()
        );
        let e = auth
            .authorize(
                &headers("Bearer r-secret", None),
                Role::Write,
                false,
                Shape::Json,
            )
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden);
        let e = auth
            .authorize(
                &headers("Bearer r-secret", Some("other")),
                Role::Read,
                false,
                Shape::Json,
            )
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Forbidden);
        let e = auth
            .authorize(
                &headers("Bearer nope", None),
                Role::Read,
                false,
                Shape::Json,
            )
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthenticated);
        let e = auth
            .authorize(&HeaderMap::new(), Role::Read, false, Shape::Json)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unauthenticated);
    }

    #[test]
    fn bad_entries_are_refused() {
        let mut bad = entry("x", "odoo", vec![Role::Read]);
        bad.sha256 = "abc".into();
        assert!(Authenticator::new(true, vec![bad], None).is_err());
        assert!(
            Authenticator::new(true, vec![entry("x", "../etc", vec![Role::Read])], None).is_err()
        );
        assert!(Authenticator::new(true, vec![entry("x", "odoo", vec![])], None).is_err());
        assert!(
            Authenticator::new(
                true,
                vec![
                    entry("x", "a", vec![Role::Read]),
                    entry("x", "b", vec![Role::Read])
                ],
                None
            )
            .is_err()
        );
    }

    #[test]
    fn a_changed_tokens_file_is_reloaded_and_a_broken_one_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let write = |token: &str| {
            let text = format!(
                "[[token]]\nname = \"t\"\nsha256 = \"{}\"\ntenant = \"odoo\"\nroles = [\"read\"]\n",
                token_digest(token)
            );
            std::fs::write(&path, text).unwrap();
        };
        write("old");
        let auth = Authenticator::new(true, Vec::new(), Some(path.clone())).unwrap();
        assert!(
            auth.authorize(&headers("Bearer old", None), Role::Read, false, Shape::Json)
                .is_ok()
        );
        // Rotate: the new token works, the old one no longer does.
        std::thread::sleep(std::time::Duration::from_millis(20));
        write("new");
        let f = std::fs::File::options().append(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() + std::time::Duration::from_secs(1))
            .unwrap();
        assert_eq!(auth.reload_if_changed(), Ok(Some(1)));
        assert!(
            auth.authorize(&headers("Bearer new", None), Role::Read, false, Shape::Json)
                .is_ok()
        );
        assert!(
            auth.authorize(&headers("Bearer old", None), Role::Read, false, Shape::Json)
                .is_err()
        );
        // A broken edit keeps the tokens that work.
        std::fs::write(&path, "[[token]]\nsha256 = 12\n").unwrap();
        let f = std::fs::File::options().append(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() + std::time::Duration::from_secs(2))
            .unwrap();
        assert!(auth.reload_if_changed().is_err());
        assert!(
            auth.authorize(&headers("Bearer new", None), Role::Read, false, Shape::Json)
                .is_ok()
        );
    }
}
