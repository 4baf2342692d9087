//! Mail: the wire formats around a rendered copy — the RFC 5322 message
//! (MIME, headers, Message-ID), quoted-printable, DKIM signatures, and the
//! signed tokens carried by unsubscribe links, and the VERP envelope
//! senders that bring bounces back to their delivery. Knows nothing of pools or
//! templates.

pub mod dkim;
pub mod mime;
pub mod qp;
pub mod token;
pub mod verp;
