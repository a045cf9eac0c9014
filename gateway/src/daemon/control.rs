//! The control socket: a Unix stream socket, one JSON request per line, one JSON response
//! per line. Each request is handed to the main loop, which owns all state.

use super::status::{Request, Response};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// Longest request line accepted; a longer one is answered with an error and the
/// connection closed (its end may never come, so it is not read to the end).
const MAX_LINE: usize = 64 * 1024;
/// Pause after a failed accept (e.g. out of file descriptors), which would fail again at
/// once and spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A request and where its answer goes.
pub type Call = (Request, oneshot::Sender<Response>);

/// Binds `path` (mode 0600), replacing a stale socket file.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accepts clients until the main loop goes away.
pub async fn serve(listener: UnixListener, calls: mpsc::Sender<Call>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(client(stream, calls.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn client(stream: UnixStream, calls: mpsc::Sender<Call>) {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
        match (&mut lines).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.len() > MAX_LINE {
            let _ = send(&mut wr, &Response::err("request too long")).await;
            return;
        }
        let response = match serde_json::from_slice::<Request>(line.trim_ascii()) {
            Ok(req) => {
                let (tx, rx) = oneshot::channel();
                if calls.send((req, tx)).await.is_err() {
                    return;
                }
                rx.await
                    .unwrap_or_else(|_| Response::err("daemon shutting down"))
            }
            Err(e) => Response::err(format!("bad request: {e}")),
        };
        if send(&mut wr, &response).await.is_err() {
            return;
        }
    }
}

async fn send(wr: &mut (impl AsyncWriteExt + Unpin), response: &Response) -> std::io::Result<()> {
    let mut out = serde_json::to_string(response)
        .unwrap_or_else(|_| r#"{"ok":false,"error":"unserialisable response"}"#.to_owned());
    out.push('\n');
    wr.write_all(out.as_bytes()).await
}

/// Removes the socket file when the daemon stops.
#[derive(Debug)]
pub struct SocketFile(pub PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    #[tokio::test]
    async fn an_endless_request_line_is_refused_without_reading_it_all() {
        let (ours, theirs) = UnixStream::pair().expect("socket pair");
        let (calls, _rx) = mpsc::channel(1);
        let server = tokio::spawn(client(ours, calls));
        let (rd, mut wr) = theirs.into_split();
        // More than the limit and no newline: the client may never end it.
        let chunk = vec![b'x'; 16 * 1024];
        for _ in 0..(MAX_LINE / chunk.len() + 2) {
            if wr.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let mut answer = String::new();
        BufReader::new(rd)
            .read_line(&mut answer)
            .await
            .expect("an answer");
        assert!(answer.contains("request too long"), "{answer}");
        server.await.expect("the connection handler ends");
    }

    #[tokio::test]
    async fn a_bad_request_gets_an_error_and_the_connection_goes_on() {
        let (ours, theirs) = UnixStream::pair().expect("socket pair");
        let (calls, _rx) = mpsc::channel(1);
        tokio::spawn(client(ours, calls));
        let (rd, mut wr) = theirs.into_split();
        let mut rd = BufReader::new(rd);
        for _ in 0..2 {
            wr.write_all(b"{\"cmd\":\"no-such-command\"}\n")
                .await
                .expect("write");
            let mut answer = String::new();
            rd.read_line(&mut answer).await.expect("an answer");
            assert!(answer.contains("bad request"), "{answer}");
        }
    }
}
