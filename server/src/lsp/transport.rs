//! Two repairs around tower-lsp-server's transport, each found by the stdio fuzz (tests/lsp/fuzz.rs).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::io::{BufRead, Write};

use tower_lsp_server::jsonrpc::{self, Request, Response};

/// Copies the client's messages to tower-lsp-server, leaving out empty ones (`Content-Length: 0`).
/// Its decoder takes an empty body for "no message yet" and waits for more bytes from the pipe,
/// so every message already read behind it waits until the client writes again: a request the
/// client sent is not answered while the client waits for that answer. Everything else passes
/// through byte for byte; after a header it cannot read, the rest does too, and tower-lsp-server
/// reports the framing error itself (and ends the session, as it does).
pub fn forward_messages(mut from: impl BufRead, mut to: impl Write) -> std::io::Result<()> {
    loop {
        let mut message = Vec::new();
        let mut length = None;
        let mut unreadable = false;
        loop {
            let before = message.len();
            if from.read_until(b'\n', &mut message)? == 0 {
                return to.write_all(&message);
            }
            let line = &message[before..];
            if line == b"\r\n" || line == b"\n" {
                break;
            }
            if let Some(value) = line.strip_prefix(b"Content-Length:") {
                match std::str::from_utf8(value).ok().and_then(|v| v.trim().parse::<usize>().ok()) {
                    Some(n) => length = Some(n),
                    None => unreadable = true,
                }
            }
        }
        match length.filter(|_| !unreadable) {
            Some(0) => tracing::warn!("skipped a message with an empty body"),
            Some(n) => {
                let headers = message.len();
                message.resize(headers + n, 0);
                from.read_exact(&mut message[headers..])?;
                to.write_all(&message)?;
            }
            None => {
                to.write_all(&message)?;
                std::io::copy(&mut from, &mut to)?;
                return Ok(());
            }
        }
    }
}

/// Serves tower-lsp-server the client's messages: stdin is read on a thread of its own, not the
/// runtime's blocking pool, which the runtime waits for when it shuts down (a read of stdin does
/// not end while a client keeps it open after `exit`).
pub fn client_messages() -> tokio::io::DuplexStream {
    use tokio::io::AsyncWriteExt;
    let (mut client, server_side) = tokio::io::duplex(64 * 1024);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let reader = std::thread::Builder::new().name("stdin".into()).spawn(move || {
        if let Err(err) = forward_messages(std::io::stdin().lock(), ChannelWriter(tx)) {
            tracing::debug!("reading the client's messages stopped: {err}");
        }
    });
    if let Err(err) = reader {
        tracing::error!("cannot start the thread that reads stdin: {err}");
    }
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if client.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = client.shutdown().await;
    });
    server_side
}

/// Bytes written from a plain thread, handed to the async side.
struct ChannelWriter(tokio::sync::mpsc::Sender<Vec<u8>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.blocking_send(buf.to_vec()).map_err(|_| std::io::ErrorKind::BrokenPipe)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// tower-lsp-server drops the "method not found" answer to every `$/` method, requests included,
/// so a client that sends a `$/` request with an id waits for ever. The protocol lets only `$/`
/// notifications go unanswered: "If a server or client receives a request starting with '$/' it
/// must error the request with error code MethodNotFound". This puts that answer back.
pub struct AnswerEveryRequest<S>(pub S);

type ServiceResult<E> = Result<Option<Response>, E>;

impl<S> tower::Service<Request> for AnswerEveryRequest<S>
where
    S: tower::Service<Request, Response = Option<Response>>,
    S::Future: Send + 'static,
{
    type Response = Option<Response>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = ServiceResult<S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let unanswered_id = request.id().filter(|_| request.method().starts_with("$/")).cloned();
        let method = request.method().to_string();
        let answer = self.0.call(request);
        Box::pin(async move {
            match (answer.await?, unanswered_id) {
                (None, Some(id)) => {
                    let error = jsonrpc::Error { data: Some(method.into()), ..jsonrpc::Error::method_not_found() };
                    Ok(Some(Response::from_error(id, error)))
                }
                (answer, _) => Ok(answer),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        forward_messages(input, &mut out).unwrap();
        out
    }

    #[test]
    fn empty_messages_are_left_out_and_the_rest_kept() {
        let a = "Content-Length: 2\r\n\r\n{}";
        let b = "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: 4\r\n\r\n[1 ]";
        let input = format!("{a}Content-Length: 0\r\n\r\n{b}Content-Length:0\r\n\r\n");
        assert_eq!(String::from_utf8(forwarded(input.as_bytes())).unwrap(), format!("{a}{b}"));
        // A body holding a line break, and bytes that are not UTF-8, pass as they are.
        let odd = b"Content-Length: 4\r\n\r\n\n\xff\r\n";
        assert_eq!(forwarded(odd), odd);
    }

    #[test]
    fn after_an_unreadable_header_the_rest_passes_through() {
        for input in [
            &b"Content-Length: abc\r\n\r\n{}Content-Length: 0\r\n\r\n"[..],
            b"Content-Type: x\r\n\r\n{}Content-Length: 2\r\n\r\n{}",
            b"Content-Length: 2\r\n\r",
        ] {
            assert_eq!(forwarded(input), input);
        }
    }
}
