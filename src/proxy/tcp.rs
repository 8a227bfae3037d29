//! TCP mode: each new connection goes to a routed backend (round-robin, the next one when a
//! backend refuses); bytes are copied both ways until either side closes, or until the
//! backend's drain timeout runs out after it was switched away.
//!
//! IO (tokio). With `proxy_protocol`, the backend first receives a PROXY protocol v2 header
//! carrying the client's address (`ppv2_header`, pure).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::table::{BackendState, Pool};

/// Longest wait to connect to one backend before the next is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest time a client waits for a first backend (a listener whose backends are all
/// being replaced) before its connection is closed.
pub const NO_BACKEND_WAIT: Duration = Duration::from_secs(5);

/// Accepts connections on `listener` forever, one task each.
pub async fn serve(listener: TcpListener, pool: Arc<Pool>) {
    loop {
        match listener.accept().await {
            Ok((client, peer)) => {
                let pool = Arc::clone(&pool);
                tokio::spawn(async move { handle(client, peer, pool).await });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle(mut client: TcpStream, peer: SocketAddr, pool: Arc<Pool>) {
    let _ = client.set_nodelay(true);
    let local = client.local_addr().unwrap_or(peer);
    let Some((backend, mut upstream)) = connect_any(&pool).await else {
        pool.unserved();
        return;
    };
    let _active = backend.begin();
    if pool.proxy_protocol() {
        let header = ppv2_header(peer, local);
        if upstream.write_all(&header).await.is_err() {
            backend.error();
            return;
        }
    }
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if r.is_err() {
                // A reset by either side; the client sees the same thing it would see
                // without the proxy.
                tracing::debug!(backend = %backend.name, "tcp connection ended with an error");
            }
        }
        () = backend.closed() => {
            tracing::debug!(backend = %backend.name, "drain timeout: connection closed");
        }
    }
}

/// Connects to the first routed backend that accepts, waiting a bounded time for one to be
/// routed when there is none.
pub async fn connect_any(pool: &Pool) -> Option<(Arc<BackendState>, TcpStream)> {
    let deadline = tokio::time::Instant::now() + NO_BACKEND_WAIT;
    loop {
        for b in pool.candidates() {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(b.addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    return Some((b, s));
                }
                _ => b.error(),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The PROXY protocol v2 header for a TCP connection from `src` to `dst` (mixed families
/// are sent as IPv6, IPv4 mapped).
pub fn ppv2_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            h.push(0x11); // TCP over IPv4
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => a,
            };
            h.push(0x21); // TCP over IPv6
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&v6(s).octets());
            h.extend_from_slice(&v6(d).octets());
        }
    }
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&dst.port().to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::ppv2_header;

    #[test]
    fn ppv2_header_for_ipv4_carries_both_addresses_and_ports() {
        let h = ppv2_header(
            "192.0.2.7:51000".parse().unwrap(),
            "10.0.0.1:443".parse().unwrap(),
        );
        assert_eq!(&h[..12], b"\r\n\r\n\0\r\nQUIT\n");
        assert_eq!(h[12], 0x21);
        assert_eq!(h[13], 0x11);
        assert_eq!(&h[14..16], &[0, 12]);
        assert_eq!(&h[16..20], &[192, 0, 2, 7]);
        assert_eq!(&h[20..24], &[10, 0, 0, 1]);
        assert_eq!(&h[24..26], &51000u16.to_be_bytes());
        assert_eq!(&h[26..28], &443u16.to_be_bytes());
        assert_eq!(h.len(), 28);
    }

    #[test]
    fn ppv2_header_for_ipv6_is_52_bytes() {
        let h = ppv2_header(
            "[2001:db8::1]:5".parse().unwrap(),
            "[::1]:80".parse().unwrap(),
        );
        assert_eq!(h[13], 0x21);
        assert_eq!(&h[14..16], &[0, 36]);
        assert_eq!(h.len(), 16 + 36);
    }
}
