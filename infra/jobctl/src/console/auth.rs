//! Who may use the console: the access token of the printed URL (as Jupyter does), kept in an
//! HttpOnly, SameSite=Strict cookie after the first visit, and a CSRF token that every POST's
//! form carries.
//!
//! Invariants: both tokens are random per process and compared in constant time; the access
//! token never appears in a page (the first visit is redirected to the same path without it);
//! the CSRF token is in forms only, never in a URL.

use std::net::SocketAddr;

/// The tokens of one console process.
#[derive(Clone)]
pub(crate) struct Access {
    token: String,
    csrf: String,
    cookie: String,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access").field("cookie", &self.cookie).finish_non_exhaustive()
    }
}

/// How a request stands with the access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Visit {
    /// The cookie carries the token.
    Known,
    /// The URL carries the token: set the cookie and send the browser to `path` without it.
    FromUrl {
        /// Where to, the token taken out of the query.
        path: String,
    },
    /// No token, or a wrong one.
    Refused,
}

impl Access {
    /// Fresh tokens. The cookie is named after the port: browsers share a host's cookies across
    /// ports, and two consoles on one machine must not overwrite each other's.
    pub(crate) fn new(port: u16) -> Self {
        Self { token: random_hex(), csrf: random_hex(), cookie: format!("jobctl_console_{port}") }
    }

    /// The URL to open.
    pub(crate) fn url(&self, addr: SocketAddr) -> String {
        format!("http://{addr}/?token={}", self.token)
    }

    /// The CSRF token forms carry.
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether `given` is the CSRF token.
    pub(crate) fn csrf_ok(&self, given: &str) -> bool {
        same(given, &self.csrf)
    }

    /// The `Set-Cookie` value that keeps the token.
    pub(crate) fn set_cookie(&self) -> String {
        format!("{}={}; Path=/; HttpOnly; SameSite=Strict", self.cookie, self.token)
    }

    /// Judges a request by its path, query and `Cookie` header. A token in the URL is always
    /// taken out of it (with a redirect), so it does not stay in the address bar or history.
    pub(crate) fn visit(&self, path: &str, query: Option<&str>, cookies: Option<&str>) -> Visit {
        let mut rest = Vec::new();
        let mut from_url = false;
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("token", value)) => from_url |= same(value, &self.token),
                _ => rest.push(pair),
            }
        }
        if from_url {
            let path = if rest.is_empty() { path.to_owned() } else { format!("{path}?{}", rest.join("&")) };
            return Visit::FromUrl { path };
        }
        let from_cookie = cookies.into_iter().flat_map(|c| c.split(';')).any(|pair| {
            pair.trim()
                .split_once('=')
                .is_some_and(|(name, value)| name == self.cookie && same(value, &self.token))
        });
        if from_cookie { Visit::Known } else { Visit::Refused }
    }
}

/// 32 random bytes as hex.
fn random_hex() -> String {
    rand::random::<[u8; 32]>().iter().map(|b| format!("{b:02x}")).collect()
}

/// `a == b` in time that depends on the length only, not on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_in_the_url_is_traded_for_the_cookie_and_taken_out_of_the_url() {
        let access = Access::new(8080);
        let query = format!("job=store_sync&token={}", access.token);
        assert_eq!(
            access.visit("/dlq", Some(&query), None),
            Visit::FromUrl { path: "/dlq?job=store_sync".to_owned() }
        );
        let cookie = access.set_cookie();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
        let header = format!("other=1; {}", cookie.split(';').next().unwrap());
        assert_eq!(access.visit("/", None, Some(&header)), Visit::Known);
    }

    #[test]
    fn a_missing_or_wrong_token_is_refused() {
        let access = Access::new(8080);
        let other = Access::new(8081);
        assert_eq!(access.visit("/", None, None), Visit::Refused);
        assert_eq!(access.visit("/", Some("token=nope"), None), Visit::Refused);
        let wrong = format!("jobctl_console_8080={}", other.token);
        assert_eq!(access.visit("/", None, Some(&wrong)), Visit::Refused);
        // Another console's cookie, even with this one's token, is not this one's.
        let elsewhere = format!("jobctl_console_8081={}", access.token);
        assert_eq!(access.visit("/", None, Some(&elsewhere)), Visit::Refused);
        assert!(!access.csrf_ok("") && !access.csrf_ok(&other.csrf) && access.csrf_ok(&access.csrf));
    }
}
