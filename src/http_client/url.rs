//! `http://` and `https://` URLs as berth's client needs them: scheme, host, port, path and
//! query. Pure. No credentials in the authority (they would end up in logs).

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https`: TLS.
    pub tls: bool,
    /// Host (a name, an IPv4 address, or an IPv6 address without brackets).
    pub host: String,
    /// Port (80 or 443 when the URL names none).
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// The `Host` header's value: `host:port`, an IPv6 host in brackets.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Host` header's value: the host, with the port when it is not the scheme's
    /// default (as browsers and curl send it; signed redirect targets expect it so).
    pub fn host_header(&self) -> String {
        let default = if self.tls { 443 } else { 80 };
        match (self.port == default, self.host.contains(':')) {
            (true, true) => format!("[{}]", self.host),
            (true, false) => self.host.clone(),
            (false, _) => self.authority(),
        }
    }

    /// The scheme, host and port, without the path (which may hold a token): for logs.
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority())
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.origin(), self.path)
    }
}

impl std::str::FromStr for HttpUrl {
    type Err = String;

    /// `http[s]://HOST[:PORT][/PATH[?QUERY]]`; a `#fragment` is not part of it.
    fn from_str(s: &str) -> Result<HttpUrl, String> {
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "{s}: expected http://HOST[:PORT]/PATH or https://…"
            ));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(format!("{s}: credentials in the URL are not supported"));
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, after) = r
                .split_once(']')
                .ok_or_else(|| format!("{s}: unterminated [IPv6] host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(format!("{s}: unexpected {after:?} after the host")),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{s}: no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| format!("{s}: invalid port {p:?}"))?,
            None if tls => 443,
            None => 80,
        };
        Ok(HttpUrl {
            tls,
            host: host.to_string(),
            port,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports_and_ipv6() {
        let u: HttpUrl = "https://hooks.example/services/T/B".parse().unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "hooks.example", 443, "/services/T/B")
        );
        assert_eq!(u.origin(), "https://hooks.example:443");
        assert_eq!(u.host_header(), "hooks.example");
        let u: HttpUrl = "http://[::1]:9/x?y=1".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.authority()),
            ("::1", 9, "[::1]:9".into())
        );
        assert_eq!(u.host_header(), "[::1]:9");
        let u: HttpUrl = "http://relay".parse().unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u: HttpUrl = "http://relay?token=1".parse().unwrap();
        assert_eq!(u.path, "/?token=1");
        assert!("ftp://x".parse::<HttpUrl>().is_err());
        assert!("http://u:p@x/".parse::<HttpUrl>().is_err());
        assert!("http://:80/".parse::<HttpUrl>().is_err());
        assert!("http://x:99999/".parse::<HttpUrl>().is_err());
    }
}
