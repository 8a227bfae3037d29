//! The HTTP/1.1 wire format as berth's client speaks it: the request's bytes and the parsing of
//! a (possibly incomplete) response. Pure: no IO, no clock; `super` does the reading and writing.

/// An HTTP answer as far as the client read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The body (decoded if chunked), possibly cut at the read limit.
    pub body: Vec<u8>,
    /// The response was longer than the read limit.
    pub truncated: bool,
}

/// The bytes of one request with `Connection: close`: the request line, `Host`, the `headers`
/// in order, and with a body its `Content-Type` and `Content-Length`.
pub fn request_bytes(
    method: &str,
    path: &str,
    host: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some((content_type, data)) = body {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            data.len()
        ));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut out = head.into_bytes();
    if let Some((_, data)) = body {
        out.extend_from_slice(data);
    }
    out
}

/// Whether `buf` holds a whole response: headers and all of a `Content-Length` or chunked body.
/// (Without either, only the peer closing ends the body.)
pub fn response_complete(buf: &[u8]) -> bool {
    let Some(end) = header_end(buf) else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let body = &buf[end + 4..];
    if let Some(len) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        return body.len() >= len;
    }
    if header(&head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        return decode_chunked(body).is_some_and(|(_, done)| done);
    }
    false
}

fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The value of header `name` (lower case) in `head`.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Decodes a chunked body as far as it goes: the data, and whether the last chunk was seen.
/// `None` when it is not chunked encoding at all.
fn decode_chunked(mut body: &[u8]) -> Option<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return Some((out, false));
        };
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some((out, true));
        }
        if body.len() < size {
            out.extend_from_slice(body);
            return Some((out, false));
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

/// Parses what was read: status line, headers, body.
pub fn parse_response(buf: &[u8], truncated: bool) -> Result<HttpResponse, String> {
    if buf.is_empty() {
        return Err("the connection closed without an answer".into());
    }
    let end = header_end(buf);
    let head_bytes = &buf[..end.unwrap_or(buf.len())];
    let head = String::from_utf8_lossy(head_bytes);
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let status = match status {
        Some(s) if version.starts_with("HTTP/") => s,
        _ => {
            let shown: String = status_line.chars().take(80).collect();
            return Err(format!("not an HTTP answer: {shown:?}"));
        }
    };
    let raw_body = end.map_or(&[][..], |e| &buf[e + 4..]);
    let chunked = header(&head, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let mut body = match chunked.then(|| decode_chunked(raw_body)).flatten() {
        Some((data, _)) => data,
        None => raw_body.to_vec(),
    };
    if let Some(len) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.truncate(len);
    }
    Ok(HttpResponse {
        status,
        body,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_length_chunked_or_close() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok 1\nEXTRA",
            false,
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok 1\n"[..]));
        let chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
                        5\r\nnever\r\n6;x=y\r\n ready\r\n0\r\n\r\n";
        assert!(response_complete(chunked));
        let r = parse_response(chunked, false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (503, &b"never ready"[..]));
        let r = parse_response(b"HTTP/1.0 204 No Content\r\n\r\n", false).unwrap();
        assert_eq!(r.status, 204);
        assert!(!response_complete(
            b"HTTP/1.0 200 OK\r\n\r\nbody until close"
        ));
        let err = parse_response(b"SSH-2.0-OpenSSH_9.2\r\n", false).unwrap_err();
        assert!(err.contains("not an HTTP answer"), "{err}");
        assert!(parse_response(b"", false).is_err());
    }

    #[test]
    fn requests_carry_host_headers_and_a_sized_body() {
        let r = request_bytes(
            "POST",
            "/hook?x=1",
            "example.org:8443",
            &[("User-Agent", "berth")],
            Some(("application/json", b"{}")),
        );
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "POST /hook?x=1 HTTP/1.1\r\nHost: example.org:8443\r\nUser-Agent: berth\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
    }
}
