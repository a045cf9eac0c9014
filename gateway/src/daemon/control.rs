//! The control socket: a Unix stream socket, one JSON request per line, one JSON response
//! per line. Each request is handed to the main loop, which owns all state.

use super::status::{Request, Response};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// Longest request line accepted.
const MAX_LINE: usize = 64 * 1024;

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
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(client(stream, calls.clone()));
    }
}

async fn client(stream: UnixStream, calls: mpsc::Sender<Call>) {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let response = if line.len() > MAX_LINE {
            Response::err("request too long")
        } else {
            match serde_json::from_str::<Request>(line.trim()) {
                Ok(req) => {
                    let (tx, rx) = oneshot::channel();
                    if calls.send((req, tx)).await.is_err() {
                        return;
                    }
                    rx.await
                        .unwrap_or_else(|_| Response::err("daemon shutting down"))
                }
                Err(e) => Response::err(format!("bad request: {e}")),
            }
        };
        let mut out = serde_json::to_string(&response)
            .unwrap_or_else(|_| r#"{"ok":false,"error":"unserialisable response"}"#.to_owned());
        out.push('\n');
        if wr.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Removes the socket file when the daemon stops.
#[derive(Debug)]
pub struct SocketFile(pub PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
