//! The server of the benchmark: hyper, in a process of its own, answering every request.
//!
//! The benchmark starts its own executable again with `--serve`: that process binds one
//! HTTP/1.1 listener and one HTTP/2 (prior knowledge, no TLS) listener on 127.0.0.1, prints
//! their ports on a line of stdout (`ports <http1> <h2>`), and serves until its stdin closes,
//! which happens when the benchmark ends, however it ends. Client and server thus never share
//! a runtime, a thread or an allocator.

use std::convert::Infallible;
use std::io::{self, Read, Write};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// The body of every response: about the size of a small JSON answer.
const BODY: &[u8] = &[b'x'; 128];

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy)]
enum Protocol {
    Http1,
    Http2,
}

/// Reads the request body to its end and answers `200` with [`BODY`].
async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // A body that fails is the client's business; the answer is the same.
    let _ = request.into_body().collect().await;
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

async fn serve(listener: TcpListener, protocol: Protocol) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        tokio::spawn(async move {
            let service = service_fn(answer);
            // A connection the client closes ends here; nothing to report.
            let _ = match protocol {
                Protocol::Http1 => {
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await
                }
                Protocol::Http2 => {
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service)
                        .await
                }
            };
        });
    }
}

/// Runs the server until stdin closes. One thread: the benchmark's client runs on the other
/// core.
pub(crate) fn run() -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let http1 = TcpListener::bind("127.0.0.1:0").await?;
        let http2 = TcpListener::bind("127.0.0.1:0").await?;
        println!(
            "ports {} {}",
            http1.local_addr()?.port(),
            http2.local_addr()?.port()
        );
        io::stdout().flush()?;
        tokio::spawn(serve(http1, Protocol::Http1));
        tokio::spawn(serve(http2, Protocol::Http2));
        // The benchmark holds the other end of stdin: its end, or its death, closes it.
        tokio::task::spawn_blocking(|| {
            let mut sink = [0; 64];
            while matches!(io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        })
        .await?;
        Ok(())
    })
}

/// The server process, seen from the benchmark: stopped when dropped.
pub(crate) struct ServerProcess {
    pub(crate) child: std::process::Child,
    /// The HTTP/1.1 and HTTP/2 ports.
    pub(crate) ports: (u16, u16),
}

impl ServerProcess {
    /// Starts this executable again as the server and waits for its ports.
    pub(crate) fn start() -> io::Result<Self> {
        use std::process::{Command, Stdio};
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut line = String::new();
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut byte = [0; 1];
        while stdout.read(&mut byte)? == 1 && byte[0] != b'\n' {
            line.push(char::from(byte[0]));
        }
        let ports: Vec<u16> = line
            .strip_prefix("ports ")
            .unwrap_or_default()
            .split(' ')
            .filter_map(|port| port.parse().ok())
            .collect();
        let [http1, http2] = ports[..] else {
            let _ = child.kill();
            return Err(io::Error::other(format!(
                "the server did not start: {line:?}"
            )));
        };
        Ok(Self {
            child,
            ports: (http1, http2),
        })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Closing stdin ends the server; it is killed if it has not ended within 2 s.
        drop(self.child.stdin.take());
        for _ in 0..200 {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
