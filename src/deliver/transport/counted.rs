//! A socket that counts its successful flushes, so the transaction can tell
//! whether the whole message (body and final dot, written and flushed as one
//! piece) was handed to the kernel before a failure.
//!
//! lettre writes a command or the message with `write_all` then `flush`,
//! and TLS flushes its records to this stream before flushing it, so a
//! flush that succeeds after a write means every byte of that write left
//! the process. A flush that was counted while a write was still under way
//! (possible inside TLS) makes the outcome `unknown`, the cautious side.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How many times the stream below was flushed successfully.
#[derive(Debug, Clone, Default)]
pub(super) struct Flushes(Arc<AtomicU64>);

impl Flushes {
    pub(super) fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// A stream that bumps its [`Flushes`] on every successful flush.
#[derive(Debug)]
pub(super) struct Counted<S> {
    inner: S,
    flushes: Flushes,
}

impl<S> Counted<S> {
    pub(super) fn new(inner: S) -> (Self, Flushes) {
        let flushes = Flushes::default();
        let stream = Counted {
            inner,
            flushes: flushes.clone(),
        };
        (stream, flushes)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = result {
            self.flushes.0.fetch_add(1, Ordering::AcqRel);
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for Counted<tokio::net::TcpStream> {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn only_a_successful_flush_counts() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let (mut stream, flushes) = Counted::new(Vec::<u8>::new());
            stream
                .write_all(b"MAIL FROM:<a@b>\r\n")
                .await
                .expect("write to memory");
            assert_eq!(flushes.count(), 0, "a write alone is not a flush");
            stream.flush().await.expect("flush memory");
            assert_eq!(flushes.count(), 1);

            let (mut broken, flushes) = Counted::new(Broken);
            assert!(broken.flush().await.is_err());
            assert_eq!(flushes.count(), 0, "a failed flush does not count");
        });
    }

    struct Broken;

    impl AsyncWrite for Broken {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}
