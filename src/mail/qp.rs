//! Quoted-printable (RFC 2045) for the two text bodies.
//!
//! Written by hand, not taken from a crate, for speed: the email is encoded
//! once per issue in segments that each end at a line boundary
//! ([`end_line`]), so a reader's copy is those pre-encoded segments with the
//! reader's few personal values encoded and spliced between them (see
//! `render::splice`); no body is encoded per reader. A general-purpose
//! encoder cannot resume at a column like this.

/// Quoted-printable (RFC 2045) for text: `\n` becomes a CRLF hard break,
/// lines are soft-broken before 76 characters, `=`, non-ASCII bytes and
/// trailing whitespace are escaped, and a `.` at the start of a line is
/// escaped too so no line can end the SMTP DATA.
pub fn encode(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut col = current_column(out);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        if b == b'\n' {
            out.extend_from_slice(b"\r\n");
            col = 0;
            i += 1;
            continue;
        }
        // At the end of a piece, `end_line` adds a soft break after it, so
        // trailing whitespace there is safe as is.
        let at_line_end = matches!(bytes.get(i + 1), Some(b'\n') | Some(b'\r'));
        let literal = match b {
            b' ' | b'\t' => !at_line_end,
            b'.' => col != 0,
            b'=' => false,
            33..=126 => true,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        if col + width > 75 {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        if literal {
            out.push(b);
        } else if b == b'.' {
            out.extend_from_slice(b"=2E");
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        col += width;
        i += 1;
    }
}

/// Ends the current encoded line with a soft break unless it already ended,
/// so the next piece starts at column 0.
pub fn end_line(out: &mut Vec<u8>) {
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"=\r\n");
    }
}

fn current_column(out: &[u8]) -> usize {
    out.iter().rev().take_while(|&&b| b != b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qp(s: &str) -> String {
        let mut out = Vec::new();
        encode(s, &mut out);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn encodes_quoted_printable() {
        assert_eq!(
            qp("a=b é\n.dot \nend "),
            "a=3Db =C3=A9\r\n=2Edot=20\r\nend "
        );
        let long = "x".repeat(200);
        let encoded = qp(&long);
        assert!(encoded.split("\r\n").all(|l| l.len() <= 76), "{encoded}");
        assert_eq!(encoded.replace("=\r\n", ""), long);
    }
}
