//! No panics on user data: every parser is fed thousands of damaged copies
//! of real inputs (bytes flipped, lines cut, duplicated or swapped,
//! truncated anywhere, non-UTF-8 and control characters inserted) and must
//! return a value or problems, never panic. Deterministic: a fixed-seed
//! xorshift generator, so a failure reproduces. Bounce mail and provider
//! webhook payloads come from strangers, so their parsers are here too.

use std::path::Path;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random damage to `input`.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    let noise: &[&[u8]] = &[
        b"+++",
        b"---",
        b"\n",
        b"\r\n",
        b"\"",
        b"=",
        b"[",
        b"]]",
        b"\0",
        b"\xff\xfe",
        "é".as_bytes(),
        b"\x1b",
        b",",
        b"#",
    ];
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.truncate(at),
            2 => {
                let piece = noise[rng.below(noise.len())];
                out.splice(at..at, piece.iter().copied());
            }
            3 => {
                let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
                let i = rng.below(lines.len());
                let mut copy: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
                let dup = copy[i].clone();
                copy.insert(rng.below(copy.len() + 1), dup);
                out = copy.join(&b'\n');
            }
            _ => {
                let end = (at + rng.below(40)).min(out.len());
                out.drain(at..end);
            }
        }
    }
    out
}

fn corpus(dir: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn each_mutant(seed: u64, inputs: &[Vec<u8>], rounds: usize, mut check: impl FnMut(&str, &[u8])) {
    let mut rng = Rng(seed);
    for input in inputs {
        for _ in 0..rounds {
            let bytes = mutate(&mut rng, input);
            let text = String::from_utf8_lossy(&bytes);
            check(&text, &bytes);
        }
    }
}

#[test]
fn content_parser_never_panics() {
    let section = crate::project::settings::default_sections().remove(0);
    let mut inputs = corpus("content/terms");
    inputs.extend(corpus("content/tips"));
    each_mutant(0x5eed_0001, &inputs, 60, |text, _| {
        let _ = crate::project::content::parse_item(text, &section, "x", Path::new("x.md"));
    });
}

#[test]
fn settings_parser_never_panics() {
    let inputs = vec![
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("dailyissue.toml"))
            .unwrap_or_default(),
        include_bytes!("scaffold/dailyissue.toml").to_vec(),
    ];
    each_mutant(0x5eed_0002, &inputs, 1500, |text, _| {
        let _ = crate::project::settings::Settings::parse(text, Path::new("dailyissue.toml"));
    });
}

#[test]
fn subscriber_and_record_parsers_never_panic() {
    let csv = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("subscribers.example.csv"))
        .unwrap_or_default();
    each_mutant(0x5eed_0003, &[csv], 2000, |_, bytes| {
        let _ = crate::project::subscribers::parse(bytes, Path::new("s.csv"));
    });
    let record = b"number = 3\ndate = 2027-03-01\nsubject = \"A, B, and one tip\"\n\n[picks]\nterm = \"token\"\ntool = \"claude\"\ntip = \"x\"\n".to_vec();
    each_mutant(0x5eed_0004, &[record], 2000, |text, _| {
        let _ =
            crate::project::issue::IssueRecord::parse(text, Path::new("issues/2027-03-01.toml"));
    });
}

#[test]
fn markdown_renderers_never_panic() {
    let inputs = corpus("content/terms");
    each_mutant(0x5eed_0005, &inputs, 40, |text, _| {
        let _ = crate::render::markdown::to_html(text, "https://example.com");
        let _ = crate::render::markdown::to_text(text, "https://example.com");
    });
}

#[test]
fn tokens_never_panic_on_garbage() {
    let secrets = crate::mail::token::Secrets::new(b"k", None);
    let token = crate::mail::token::token(&secrets, "l", &"a@example.org".into()).into_bytes();
    each_mutant(0x5eed_0006, &[token], 3000, |text, _| {
        assert!(
            crate::mail::token::verify(&secrets, "l", text)
                .is_none_or(|a| a.as_str() == "a@example.org")
        );
    });
}

#[test]
fn bounce_classifier_never_panics() {
    let inputs = corpus("tests/fixtures/bounces");
    assert!(inputs.len() >= 10, "the bounce fixtures are there");
    let path = crate::project::settings::ReturnPath {
        prefix: "bounces+".into(),
        suffix: "@example.com".into(),
    };
    each_mutant(0x5eed_0007, &inputs, 150, |_, bytes| {
        let _ = crate::bounces::message::classify(bytes, Some(&path));
        let _ = crate::bounces::message::classify(bytes, None);
    });
}

#[test]
fn webhook_readers_never_panic() {
    use crate::bounces::providers::{mailgun, postmark, sendgrid, ses};
    let inputs = corpus("tests/fixtures/hooks");
    assert!(inputs.len() >= 8, "the webhook fixtures are there");
    let cert = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hooks/sns-signing-cert.pem"),
    )
    .ok()
    .and_then(|pem| ses::certificate_der(&pem).ok())
    .unwrap_or_default();
    let path = crate::project::settings::ReturnPath {
        prefix: "bounces+".into(),
        suffix: "@example.com".into(),
    };
    each_mutant(0x5eed_0008, &inputs, 120, |text, bytes| {
        if let Ok(e) = ses::envelope(bytes) {
            let _ = ses::certificate_url(&e);
            let _ = ses::verify(&e, &cert);
            let _ = ses::event(&e, Some(&path), bytes);
        }
        let _ = ses::certificate_der(bytes);
        let _ = postmark::event(bytes);
        let _ = sendgrid::events(bytes);
        let _ = sendgrid::public_key(text);
        let _ = mailgun::verify(bytes, b"key", 1_900_000_000);
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
            let signed = mailgun::Signed {
                timestamp: 0,
                token: "t".into(),
                event_data: v.get("event-data").cloned().unwrap_or(v),
            };
            let _ = mailgun::event(&signed, Some(&path), bytes);
        }
    });
}
