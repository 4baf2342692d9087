//! `preview`: exactly what `send` would send to one reader, without sending
//! and without touching the ledger. It writes the issue record when the day
//! has none, as `plan` would.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};

use crate::atomic;
use crate::cmd::{DayOptions, SecretUse, open_day};
use crate::problem::Failure;
use crate::project::Project;
use crate::project::subscribers::{List, Subscriber};
use crate::render::email::{self, Email};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Text,
    Eml,
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Text => "txt",
            Format::Eml => "eml",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PreviewOptions {
    pub date: NaiveDate,
    pub now: DateTime<Utc>,
    /// Render as this address (a listed reader, or any address).
    pub reader: Option<String>,
    pub format: Format,
    /// A file for `format`, or a folder for all three formats.
    pub out: Option<PathBuf>,
    pub open: bool,
}

/// What `preview` made: the message itself for stdout, or the files it
/// wrote (the report then names them, and the reader, on stdout).
#[derive(Debug, serde::Serialize)]
pub struct Preview {
    /// What to print on stdout when there is no `--out`.
    #[serde(skip)]
    pub stdout: Option<Vec<u8>>,
    /// Files written.
    pub written: Vec<PathBuf>,
    pub reader: String,
    /// When this reader gets the issue: `06:00 Asia/Tokyo (2027-02-28
    /// 21:00 UTC)`.
    pub send_time: String,
}

impl crate::cmd::Report for Preview {
    fn text(&self) -> String {
        let mut out: String = self
            .written
            .iter()
            .map(|p| format!("wrote {} (as {})\n", p.display(), self.reader))
            .collect();
        out.push_str(&format!("{} gets it at {}\n", self.reader, self.send_time));
        out
    }
}

pub fn preview(project: &Project, opts: &PreviewOptions) -> Result<Preview, Failure> {
    let day = open_day(
        project,
        DayOptions {
            date: opts.date,
            now: opts.now,
            secrets: SecretUse::Local,
            write_record: true,
        },
    )?;
    day.log_notes();
    if day.created {
        tracing::info!("wrote {}", day.edition.record.path.display());
    }
    let mut reader = reader(&day.loaded.list, opts)?;
    if opts.reader.is_some() && reader.line == 0 {
        // Not on the CSV: a confirmed signup brings its name and zone.
        signup_details(project, &mut reader)?;
    }
    let send_time = crate::cmd::mornings::reader_morning(&project.settings, &reader, opts.date);
    if opts.out.is_none() {
        // The message is the output: the send time goes to the log.
        tracing::info!("{} gets it at {send_time}", reader.email);
    }
    let copy = ReaderCopy {
        email: &day.edition.email,
        reader: &reader,
    };
    let mut written = Vec::new();
    let stdout = copy.output(opts, &mut written)?;
    if opts.open {
        copy.show(opts, &mut written)?;
    }
    Ok(Preview {
        stdout,
        written,
        reader: reader.email.to_string(),
        send_time,
    })
}

/// Who the preview is for: `--as` (a listed reader with their data, any
/// other address as an unnamed reader), else the first active reader, else
/// a sample reader.
fn reader(list: &List, opts: &PreviewOptions) -> Result<Subscriber, Failure> {
    let Some(addr) = &opts.reader else {
        return Ok(match list.active().next() {
            Some(r) => r.clone(),
            None => email::sample_reader(list.columns.len()),
        });
    };
    let (reader, listed) = list.reader(addr).ok_or_else(|| {
        Failure::Usage(crate::problem::Usage::NotAnAddress {
            option: "--as",
            value: addr.clone(),
        })
    })?;
    if !listed {
        tracing::info!("the --as address is not on the list; rendering for an unnamed reader");
    }
    Ok(reader)
}

/// A reader who signed up through the form: the name and zone they gave.
fn signup_details(project: &Project, reader: &mut Subscriber) -> Result<(), Failure> {
    let Some(ledger) = crate::ledger::read(project)? else {
        return Ok(());
    };
    if let Some(s) = ledger.signup(&reader.key)?
        && s.status == crate::ledger::SignupStatus::Confirmed
    {
        reader.name = crate::project::subscribers::clean_line(&s.name);
        reader.zone = s.timezone.as_deref().and_then(|z| z.parse().ok());
    }
    Ok(())
}

/// One reader's copy of the issue, rendered on demand in each format asked
/// for.
struct ReaderCopy<'a> {
    email: &'a Email,
    reader: &'a Subscriber,
}

impl ReaderCopy<'_> {
    /// The copy in `format`: a body, or the complete signed message.
    fn render(&self, format: Format) -> Result<Vec<u8>, Failure> {
        Ok(match format {
            Format::Html => self
                .email
                .render(self.reader)
                .map_err(Failure::one)?
                .html
                .into_bytes(),
            Format::Text => self
                .email
                .render(self.reader)
                .map_err(Failure::one)?
                .text
                .into_bytes(),
            Format::Eml => self.email.message(self.reader)?,
        })
    }

    /// Writes the copy where `--out` says (a folder gets all three formats
    /// as `DATE.html`, `.txt`, `.eml`; a file the format asked for), adding
    /// each file to `written`. Without `--out`, gives what to print on
    /// stdout, unless the copy is only to be opened in a browser.
    fn output(
        &self,
        opts: &PreviewOptions,
        written: &mut Vec<PathBuf>,
    ) -> Result<Option<Vec<u8>>, Failure> {
        match &opts.out {
            Some(out) if out.is_dir() || out.to_string_lossy().ends_with('/') => {
                for format in [Format::Html, Format::Text, Format::Eml] {
                    let path = out.join(format!("{}.{}", opts.date, format.extension()));
                    atomic::write(&path, &self.render(format)?)?;
                    written.push(path);
                }
            }
            Some(out) => {
                atomic::write(out, &self.render(opts.format)?)?;
                written.push(out.clone());
            }
            None if opts.open => {}
            None => return Ok(Some(self.render(opts.format)?)),
        }
        Ok(None)
    }

    /// Opens the HTML in a browser: the file just written, or else one
    /// written to the temporary folder (and added to `written`).
    fn show(&self, opts: &PreviewOptions, written: &mut Vec<PathBuf>) -> Result<(), Failure> {
        let html = match written
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "html"))
        {
            Some(p) => p.clone(),
            None => {
                let path =
                    std::env::temp_dir().join(format!("dailyissue-preview-{}.html", opts.date));
                atomic::write(&path, &self.render(Format::Html)?)?;
                written.push(path.clone());
                path
            }
        };
        open_in_browser(&html)
    }
}

/// Opens the preview in a browser through `opener` (`$BROWSER`, macOS
/// `open`, Windows, WSL, else xdg-open). On Linux and the BSDs opener does
/// not wait for xdg-open, which may not return until the browser closes,
/// so a launch that fails later goes unseen; what can be known beforehand,
/// no browser possible at all (no `$BROWSER`, no graphical session, not
/// WSL: a server or an SSH session), is an error here, as is a browser
/// command that cannot start.
fn open_in_browser(path: &Path) -> Result<(), Failure> {
    let context = || format!("cannot open a browser for {}", path.display());
    if cfg!(all(unix, not(target_os = "macos")))
        && let Some(why) = no_browser(|name| std::env::var_os(name))
    {
        return Err(Failure::Other(anyhow::anyhow!(why).context(context())));
    }
    opener::open_browser(path)
        .with_context(context)
        .map_err(Failure::Other)
}

/// Why no browser can be shown on a Linux or BSD desktop with this
/// environment, if none can.
fn no_browser(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<String> {
    let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
    let session = ["BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "WSL_DISTRO_NAME"];
    (!session.iter().any(|name| set(name))).then(|| {
        "there is no graphical session (DISPLAY and WAYLAND_DISPLAY are unset) and BROWSER is not set: open the file by hand, or set BROWSER to a browser command"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_needs_a_session_or_browser_set() {
        let with = |vars: &[(&str, &str)]| {
            no_browser(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.into()))
        };
        assert!(with(&[]).is_some_and(|why| why.contains("BROWSER is not set")));
        assert!(with(&[("DISPLAY", "")]).is_some());
        for var in ["BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "WSL_DISTRO_NAME"] {
            assert_eq!(with(&[(var, "x")]), None, "{var}");
        }
    }
}
