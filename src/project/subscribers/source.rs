//! Where the list's bytes come from, and reading them again: positioned
//! reads on the one handle opened when the list was checked (or on bytes
//! in memory), past a UTF-8 BOM, keeping a window of recent text for the
//! scanner to look back at.

use std::sync::Arc;

/// Where the list's bytes come from: the file, read again through the one
/// handle opened when it was checked (a file replaced meanwhile, as editors
/// and exports do by renaming, is not seen), or bytes in memory.
#[derive(Debug, Clone)]
pub(super) enum Source {
    File(Arc<std::fs::File>),
    Bytes(Arc<[u8]>),
}

/// Reads a [`Source`] from the start (after a UTF-8 BOM) with positioned
/// reads, keeping the last bytes read so the scanner can look at a record's
/// raw text (quotes, blank lines before it) without holding the file.
pub(super) struct SourceReader {
    source: Source,
    /// Where the text starts (3 after a BOM).
    base: u64,
    /// Bytes of text in the source.
    pub(super) len: u64,
    pos: u64,
    window: Vec<u8>,
    /// The position (from `base`) of `window[0]`.
    window_start: u64,
}

/// How much of the recently read text [`SourceReader`] keeps.
const WINDOW: usize = 256 * 1024;

impl SourceReader {
    pub(super) fn new(source: Source) -> std::io::Result<SourceReader> {
        let total = match &source {
            Source::File(f) => f.metadata()?.len(),
            Source::Bytes(b) => b.len() as u64,
        };
        let mut head = [0u8; 3];
        let n = read_at(&source, &mut head, 0)?;
        let base = if n == 3 && head == *b"\xEF\xBB\xBF" {
            3
        } else {
            0
        };
        Ok(SourceReader {
            source,
            base,
            len: total - base,
            pos: 0,
            window: Vec::new(),
            window_start: 0,
        })
    }

    /// The text between two positions: from the window when it is still
    /// there, else read again.
    pub(super) fn raw(&self, start: u64, end: u64) -> std::borrow::Cow<'_, [u8]> {
        let in_window = start >= self.window_start
            && end <= self.window_start + self.window.len() as u64
            && start <= end;
        if in_window {
            let from = (start - self.window_start) as usize;
            let to = (end - self.window_start) as usize;
            return std::borrow::Cow::Borrowed(&self.window[from..to]);
        }
        let mut buf = vec![0u8; end.saturating_sub(start) as usize];
        let n = read_at(&self.source, &mut buf, self.base + start).unwrap_or(0);
        buf.truncate(n);
        std::borrow::Cow::Owned(buf)
    }
}

impl std::io::Read for SourceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = read_at(&self.source, buf, self.base + self.pos)?;
        self.pos += n as u64;
        self.window.extend_from_slice(&buf[..n]);
        if self.window.len() > 2 * WINDOW {
            let drop = self.window.len() - WINDOW;
            self.window.drain(..drop);
            self.window_start += drop as u64;
        }
        Ok(n)
    }
}

/// Reads at an absolute offset without moving a shared cursor, so any
/// number of passes can read one open file.
fn read_at(source: &Source, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    match source {
        Source::File(f) => {
            use std::os::unix::fs::FileExt;
            f.read_at(buf, offset)
        }
        Source::Bytes(b) => {
            let start = (offset as usize).min(b.len());
            let n = buf.len().min(b.len() - start);
            buf[..n].copy_from_slice(&b[start..start + n]);
            Ok(n)
        }
    }
}
