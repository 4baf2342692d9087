//! Logging: notes, warnings, progress and `-v` details are `tracing`
//! events, written to stderr one line each; reports go to stdout and are
//! printed by `run`, never logged. The command layer sets the one
//! subscriber up with [`init`]; every other module only emits events.
//!
//! A line reads `LEVEL: message`, with `error`, `warning`, `note` (info),
//! `debug` and `trace` as the levels. When stderr is not a terminal (cron,
//! a pipe, a file) every line starts with an RFC 3339 UTC timestamp, so a
//! log file appended to by many runs stays readable; on a terminal there
//! is none, and `send` shows a progress bar instead of progress lines
//! (lines are printed above the bar, see [`progress_bar`]). Nor is there
//! one when stderr is systemd's journal, which stamps lines itself.
//!
//! Which events show: `RUST_LOG` when set (`tracing_subscriber`'s
//! `EnvFilter` syntax, e.g. `dailyissue=debug`), otherwise `-q` errors only,
//! by default notes and warnings, `-v` debug, `-vv` trace. Whatever the
//! filter, warnings from this crate are also kept for the `--json`
//! document ([`warnings`]).
//!
//! Invariant: no full address and no token reaches a log line; addresses
//! are written through [`mask`].

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// How much the user asked to see (`-q`, `-v`, `-vv`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Verbosity {
    pub quiet: bool,
    pub verbose: u8,
}

impl Verbosity {
    /// The filter when `RUST_LOG` is not set: this crate at the asked
    /// level, libraries at warnings (errors only with `-q`).
    fn directives(self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "warn,dailyissue=info",
            (false, 1) => "warn,dailyissue=debug",
            (false, _) => "info,dailyissue=trace",
        }
    }
}

/// Warnings emitted so far, for the `--json` document.
static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The progress bar on screen, if any: lines are printed above it.
static BAR: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// Sets up the subscriber for this process: lines on stderr (timestamped
/// unless a terminal or the journal reads them), filtered by `RUST_LOG` or
/// `verbosity`, and the warnings kept for `--json`. A second call changes
/// nothing.
pub fn init(verbosity: Verbosity) {
    let timestamps = !std::io::stderr().is_terminal() && !stderr_is_journal();
    let from_env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (filter, bad_env) =
        match from_env.map(|v| EnvFilter::builder().parse(&v).map_err(|e| (v, e))) {
            Some(Ok(filter)) => (filter, None),
            Some(Err(bad)) => (EnvFilter::new(verbosity.directives()), Some(bad)),
            None => (EnvFilter::new(verbosity.directives()), None),
        };
    let kept = filter_fn(|meta| {
        *meta.level() == Level::WARN && meta.target().starts_with(env!("CARGO_CRATE_NAME"))
    });
    let subscriber = tracing_subscriber::registry()
        .with(Lines { timestamps }.with_filter(filter))
        .with(Kept.with_filter(kept));
    if tracing::subscriber::set_global_default(subscriber).is_ok()
        && let Some((value, e)) = bad_env
    {
        tracing::warn!("RUST_LOG = {value:?} is not a valid filter ({e}); using the default");
    }
}

/// Whether stderr is systemd's journal: `JOURNAL_STREAM` names its
/// `device:inode`, and a redirection inside the service would not match.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream.to_string_lossy() == format!("{}:{}", stderr.dev(), stderr.ino())
}

/// Warnings this crate logged so far (also those `-q` hid).
pub fn warnings() -> Vec<String> {
    WARNINGS.lock().map(|w| w.clone()).unwrap_or_default()
}

/// A progress bar on stderr of `total` steps; until it is finished (or
/// another one starts), log lines are printed above it rather than
/// through it.
pub fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {rate} eta {eta} {msg}")
    {
        bar.set_style(style.with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&rate(state.per_sec()));
            },
        ));
    }
    if let Ok(mut slot) = BAR.lock() {
        *slot = Some(bar.clone());
    }
    bar
}

/// A send rate as people read it: `1,730 msg/s` (whole messages, thousands
/// grouped), for the bar, the progress lines and the summary alike.
pub fn rate(per_second: f64) -> String {
    let whole = if per_second.is_finite() && per_second > 0.0 {
        per_second.round() as u64
    } else {
        0
    };
    format!("{} msg/s", thousands(whole))
}

/// `1,730`, `20,000`, `999`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `a***@example.org`: enough to follow a log, not enough to harvest.
pub fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// `text` with every occurrence of `address` (any ASCII case) masked: for
/// server replies and paths that quote the recipient.
pub fn mask_in(text: &str, address: &str) -> String {
    let needle = address.to_ascii_lowercase();
    if needle.is_empty() {
        return text.to_string();
    }
    let haystack = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(at) = haystack[from..].find(&needle) {
        out.push_str(&text[from..from + at]);
        out.push_str(&mask(address));
        from += at + needle.len();
    }
    out.push_str(&text[from..]);
    out
}

/// The layer that writes lines to stderr.
struct Lines {
    timestamps: bool,
}

impl<S: Subscriber> Layer<S> for Lines {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut prefix = String::new();
        if self.timestamps {
            prefix
                .push_str(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            prefix.push(' ');
        }
        prefix.push_str(label(*event.metadata().level()));
        prefix.push_str(": ");
        // Every physical line carries the prefix, so a log file can be
        // filtered line by line.
        let mut text = String::new();
        for line in message(event).lines() {
            text.push_str(&prefix);
            text.push_str(line);
            text.push('\n');
        }
        write_above_bar(text.as_bytes());
    }
}

/// The layer that keeps warnings for `--json`.
struct Kept;

impl<S: Subscriber> Layer<S> for Kept {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if let Ok(mut w) = WARNINGS.lock() {
            w.push(message(event));
        }
    }
}

fn label(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "note",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

fn write_above_bar(bytes: &[u8]) {
    let write = || {
        let _ = std::io::stderr().lock().write_all(bytes);
    };
    let bar = BAR.lock().ok().and_then(|b| b.clone());
    match bar {
        Some(bar) if !bar.is_finished() => bar.suspend(write),
        _ => write(),
    }
}

/// The event's message, then its other fields as ` key=value`.
fn message(event: &Event<'_>) -> String {
    let mut fields = Fields::default();
    event.record(&mut fields);
    fields.message + &fields.rest
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_whole_messages_with_thousands_grouped() {
        assert_eq!(rate(1729.9004), "1,730 msg/s");
        assert_eq!(rate(196.2), "196 msg/s");
        assert_eq!(rate(0.0), "0 msg/s");
        assert_eq!(rate(f64::NAN), "0 msg/s");
        assert_eq!(thousands(20_000), "20,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn masks_addresses() {
        assert_eq!(mask("ada.park@example.net"), "a***@example.net");
        assert_eq!(mask("nope"), "***");
    }

    #[test]
    fn masks_addresses_inside_replies() {
        assert_eq!(
            mask_in(
                "550 5.1.1 <Ada.Park@Example.net>: unknown; ada.park@example.net",
                "ada.park@example.net"
            ),
            "550 5.1.1 <a***@example.net>: unknown; a***@example.net"
        );
        assert_eq!(mask_in("250 ok", "ada@example.net"), "250 ok");
    }

    #[test]
    fn quiet_wins_and_verbose_adds_detail() {
        let v = |quiet, verbose| Verbosity { quiet, verbose }.directives();
        assert_eq!(v(true, 2), "error");
        assert_eq!(v(false, 0), "warn,dailyissue=info");
        assert_eq!(v(false, 1), "warn,dailyissue=debug");
        assert_eq!(v(false, 5), "info,dailyissue=trace");
    }
}
