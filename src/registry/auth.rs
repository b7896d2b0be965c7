//! `WWW-Authenticate` handling: Basic, and Bearer tokens fetched from the
//! challenge's realm (docker token protocol).

use super::RegistryError;
use base64::Engine as _;

/// What a 401 asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Challenge {
    /// Send `Authorization: Basic`.
    Basic,
    /// Get a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value; Bearer is preferred over Basic.
pub(super) fn parse_challenge(header: &str) -> Option<Challenge> {
    let challenges = http_auth::parse_challenges(header).ok()?;
    let param = |c: &http_auth::ChallengeRef<'_>, name: &str| {
        c.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.to_unescaped())
    };
    let bearer = challenges
        .iter()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|c| {
            Some(Challenge::Bearer {
                realm: param(c, "realm")?,
                service: param(c, "service"),
                scope: param(c, "scope"),
            })
        });
    bearer.or_else(|| {
        challenges
            .iter()
            .any(|c| c.scheme.eq_ignore_ascii_case("basic"))
            .then_some(Challenge::Basic)
    })
}

/// `Basic <base64(user:password)>`.
pub(super) fn basic_header(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Percent-encodes a query parameter value.
pub(super) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How to ask a token service for a token.
#[derive(Clone, Copy)]
pub(super) enum Grant<'a> {
    /// Anonymously.
    Anonymous,
    /// With this `Authorization: Basic …` value (docker token protocol, `GET`).
    Basic(&'a str),
    /// With a Docker identity token, as an OAuth2 refresh token (`POST`, `grant_type=refresh_token`).
    RefreshToken(&'a str),
}

/// The OAuth2 `client_id` himg names itself with.
const CLIENT_ID: &str = "himg";

/// Fetches a bearer token from `realm` for the given scopes.
pub(super) fn fetch_token(
    agent: &ureq::Agent,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    grant: Grant<'_>,
) -> Result<Option<String>, RegistryError> {
    let is_http = realm.split_once("://").is_some_and(|(scheme, _)| {
        matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
    });
    if !is_http {
        return Err(RegistryError::Protocol(format!(
            "the token realm `{}` is not an http(s):// URL",
            realm.escape_debug()
        )));
    }
    let bad_url = |e: ureq::http::Error| RegistryError::Protocol(format!("bad token URL: {e}"));
    let mut resp = match grant {
        Grant::RefreshToken(token) => send_token_request(
            agent,
            oauth2_request(realm, service, scopes, token).map_err(bad_url)?,
            realm,
        )?,
        Grant::Basic(_) | Grant::Anonymous => send_token_request(
            agent,
            token_get_request(realm, service, scopes, grant).map_err(bad_url)?,
            realm,
        )?,
    };
    match resp.status().as_u16() {
        200 => {}
        401 | 403 => return Ok(None),
        // OAuth2's `invalid_grant`: the identity token was refused.
        400 if matches!(grant, Grant::RefreshToken(_)) => return Ok(None),
        status => {
            return Err(RegistryError::Status {
                method: "GET".into(),
                url: realm.to_owned(),
                status,
                body: Box::default(),
            });
        }
    }
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_vec()
        .map_err(|source| RegistryError::Http {
            method: "GET".into(),
            url: realm.to_owned(),
            source,
        })?;
    let json: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| RegistryError::Protocol(format!("token response is not JSON: {e}")))?;
    let token = json
        .get("token")
        .or_else(|| json.get("access_token"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RegistryError::Protocol("token response has no token".into()))?;
    Ok(Some(token.to_owned()))
}

/// Sends a request to the token service.
fn send_token_request(
    agent: &ureq::Agent,
    req: ureq::http::Request<impl ureq::AsSendBody>,
    realm: &str,
) -> Result<ureq::http::Response<ureq::Body>, RegistryError> {
    let method = req.method().to_string();
    // The registry's own requests follow redirects by hand (`Client::send`); a token service
    // may redirect as ureq allows (never with credentials, never to another scheme than http(s)).
    let req = agent.configure_request(req).max_redirects(10).build();
    agent.run(req).map_err(|source| RegistryError::Http {
        method,
        url: realm.to_owned(),
        source,
    })
}

/// `GET realm?service=…&scope=…`, with Basic auth when given (docker token protocol).
fn token_get_request(
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    grant: Grant<'_>,
) -> Result<ureq::http::Request<()>, ureq::http::Error> {
    let mut url = realm.to_owned();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    if let Some(s) = service {
        url.push_str(&format!("{sep}service={}", query_escape(s)));
        sep = '&';
    }
    for s in scopes {
        url.push_str(&format!("{sep}scope={}", query_escape(s)));
        sep = '&';
    }
    let mut req = ureq::http::Request::get(&url);
    if let Grant::Basic(b) = grant {
        req = req.header("Authorization", b);
    }
    req.body(())
}

/// `POST realm` with the OAuth2 refresh-token grant (how Docker uses an identity token).
fn oauth2_request(
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    refresh_token: &str,
) -> Result<ureq::http::Request<String>, ureq::http::Error> {
    let mut form = format!(
        "grant_type=refresh_token&client_id={CLIENT_ID}&refresh_token={}",
        query_escape(refresh_token)
    );
    if let Some(s) = service {
        form.push_str(&format!("&service={}", query_escape(s)));
    }
    if !scopes.is_empty() {
        form.push_str(&format!("&scope={}", query_escape(&scopes.join(" "))));
    }
    ureq::http::Request::post(realm)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_realm_is_an_http_url() {
        let agent = ureq::Agent::new_with_defaults();
        for realm in ["file:///etc/passwd", "/token", "ftp://host/token"] {
            let err = fetch_token(&agent, realm, None, &[], Grant::Anonymous).unwrap_err();
            assert!(
                err.to_string().contains("is not an http(s):// URL"),
                "{err}"
            );
        }
    }

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.registry.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.registry.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(basic_header("u", "p"), "Basic dTpw");
    }
}
