//! A TCP proxy in front of a real server that resets chosen client connections at the worst
//! moment: after the server has read the whole request and started to answer, before any of the
//! answer reaches the client. The client sees "connection reset by peer" and cannot know whether
//! the call was executed (it was).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with one client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conn {
    /// Forward both ways until either side closes.
    Forward,
    /// Forward the client's bytes to the server, and the server's frames to the client until the
    /// first response `HEADERS` frame: that frame is dropped and the client connection reset
    /// (`SO_LINGER` 0, then close).
    ResetOnResponse,
}

/// The proxy's view of what happened.
#[derive(Debug, Default)]
pub(crate) struct ProxyStats {
    connections: AtomicUsize,
    resets: AtomicUsize,
}

impl ProxyStats {
    /// Client connections accepted.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
    /// Client connections reset.
    pub(crate) fn resets(&self) -> usize {
        self.resets.load(Ordering::SeqCst)
    }
}

/// A proxy to `upstream`: client connection `i` is handled by `script[i]`, connections past the
/// script are forwarded.
pub(crate) async fn spawn(
    upstream: SocketAddr,
    script: Vec<Conn>,
) -> (SocketAddr, Arc<ProxyStats>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    let stats = Arc::new(ProxyStats::default());
    let task_stats = stats.clone();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let index = task_stats.connections.fetch_add(1, Ordering::SeqCst);
            let conn = script.get(index).copied().unwrap_or(Conn::Forward);
            let stats = task_stats.clone();
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = server.set_nodelay(true);
                match conn {
                    Conn::Forward => forward(client, server).await,
                    Conn::ResetOnResponse => {
                        reset_on_response(client, server).await;
                        stats.resets.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    (addr, stats)
}

async fn forward(mut client: TcpStream, mut server: TcpStream) {
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

const HEADERS: u8 = 0x1;

async fn reset_on_response(mut client: TcpStream, mut server: TcpStream) {
    {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        let up = tokio::io::copy(&mut client_read, &mut server_write);
        let down = async {
            // Forward whole frames until the first response HEADERS (stream id > 0).
            loop {
                let mut header = [0u8; 9];
                server_read.read_exact(&mut header).await?;
                let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
                let stream_id =
                    u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
                let mut payload = vec![0u8; len];
                server_read.read_exact(&mut payload).await?;
                if header[3] == HEADERS && stream_id != 0 {
                    return Ok::<_, std::io::Error>(());
                }
                client_write.write_all(&header).await?;
                client_write.write_all(&payload).await?;
            }
        };
        tokio::select! {
            _ = up => {}
            _ = down => {}
        }
    }
    let _ = client.set_zero_linger();
    drop(client);
    drop(server);
}
