//! `preview`: exactly what `send` would send to one reader, without sending
//! and without touching the ledger. It writes the issue record when the day
//! has none, as `plan` would. Without `--date` it shows the next issue:
//! today's until it has gone out, then tomorrow's. `preview --serve` is
//! [`live`]: a local page that renders on every request and writes nothing
//! at all.

pub(crate) mod live;

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

    fn name(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Text => "text",
            Format::Eml => "eml",
        }
    }

    /// The format a file's extension names, if it names one.
    fn of_extension(ext: &str) -> Option<Format> {
        match ext.to_ascii_lowercase().as_str() {
            "html" | "htm" => Some(Format::Html),
            "txt" | "text" => Some(Format::Text),
            "eml" => Some(Format::Eml),
            _ => None,
        }
    }
}

/// Where `--out` writes: a folder (all three formats) or one file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Folder(PathBuf),
    File(PathBuf, Format),
}

impl Out {
    /// A folder that exists, a path that ends in `/`, or one without an
    /// extension is a folder; anything else a file, in `--format` or else
    /// the format its extension names (html when it names none). A file
    /// whose extension names another format than `--format` is refused:
    /// `x.html` holding plain text would mislead whoever opens it.
    fn of(path: &Path, format: Option<Format>) -> Result<Out, Failure> {
        let text = path.to_string_lossy();
        let ext = path.extension().map(|e| e.to_string_lossy().into_owned());
        if path.is_dir() || text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR) {
            return Ok(Out::Folder(path.to_path_buf()));
        }
        let Some(ext) = ext else {
            return Ok(Out::Folder(path.to_path_buf()));
        };
        let named = Format::of_extension(&ext);
        match (format, named) {
            (Some(asked), Some(named)) if asked != named => {
                Err(Failure::Usage(crate::problem::Usage::OutFormat {
                    out: path.to_path_buf(),
                    named: named.name(),
                    asked: asked.name(),
                    instead: path.with_extension(asked.extension()),
                }))
            }
            (Some(asked), _) => Ok(Out::File(path.to_path_buf(), asked)),
            (None, named) => Ok(Out::File(path.to_path_buf(), named.unwrap_or(Format::Html))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PreviewOptions {
    /// `--date`; without it, the next issue (see [`next_issue`]).
    pub date: Option<NaiveDate>,
    /// Today in the newsletter's time zone.
    pub today: NaiveDate,
    pub now: DateTime<Utc>,
    /// Render as this address (a listed reader, or any address).
    pub reader: Option<String>,
    /// `--format`; without it, what `--out`'s extension names, else HTML.
    pub format: Option<Format>,
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

/// The issue a preview without `--date` shows: today's until it has gone
/// out (the ledger has a delivery of it), then tomorrow's. Says which, and
/// why, as a note.
pub fn next_issue(project: &Project, today: NaiveDate) -> Result<NaiveDate, Failure> {
    let gone = match crate::ledger::read(project)? {
        Some(ledger) => ledger
            .counts(today)?
            .get(&crate::ledger::DeliveryStatus::Sent)
            .is_some_and(|n| *n > 0),
        None => false,
    };
    let date = match today.succ_opt() {
        Some(tomorrow) if gone => {
            tracing::info!(
                "the next issue is tomorrow's, {tomorrow}: today's has gone out (pass --date to choose another)"
            );
            tomorrow
        }
        _ => {
            tracing::info!(
                "the next issue is today's, {today}: it has not gone out yet (pass --date to choose another)"
            );
            today
        }
    };
    Ok(date)
}

pub fn preview(project: &Project, opts: &PreviewOptions) -> Result<Preview, Failure> {
    // Where it goes is settled before anything is rendered or written.
    let out = opts
        .out
        .as_deref()
        .map(|o| Out::of(o, opts.format))
        .transpose()?;
    let date = match opts.date {
        Some(d) => d,
        None => next_issue(project, opts.today)?,
    };
    let day = open_day(
        project,
        DayOptions {
            date,
            now: opts.now,
            secrets: SecretUse::Local,
            write_record: true,
        },
    )?;
    day.log_notes();
    if day.created {
        tracing::info!("wrote {}", day.edition.record.path.display());
    }
    let reader = reader(project, &day.loaded.list, opts)?;
    let send_time = crate::cmd::mornings::reader_morning(&project.settings, &reader, date);
    if opts.out.is_none() {
        // The message is the output: the send time goes to the log.
        tracing::info!("{} gets it at {send_time}", reader.email);
    }
    let copy = ReaderCopy {
        email: &day.edition.email,
        reader: &reader,
    };
    let mut written = Vec::new();
    let stdout = copy.output(out.as_ref(), opts, date, &mut written)?;
    if opts.open {
        copy.show(date, &mut written)?;
    }
    Ok(Preview {
        stdout,
        written,
        reader: reader.email.to_string(),
        send_time,
    })
}

/// Who the preview is for: `--as` (a reader of the CSV or a confirmed
/// signup, with their data; any other address as an unnamed reader), else
/// the first active reader, else a sample reader.
fn reader(project: &Project, list: &List, opts: &PreviewOptions) -> Result<Subscriber, Failure> {
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
    if listed {
        return Ok(reader);
    }
    if let Some(ledger) = crate::ledger::read(project).map_err(Failure::Other)?
        && let Some(signup) = crate::deliver::readers::confirmed_signup(list, &ledger, &reader.key)
            .map_err(Failure::Other)?
    {
        return Ok(signup);
    }
    tracing::info!("the --as address is not on the list; rendering for an unnamed reader");
    Ok(reader)
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
        out: Option<&Out>,
        opts: &PreviewOptions,
        date: NaiveDate,
        written: &mut Vec<PathBuf>,
    ) -> Result<Option<Vec<u8>>, Failure> {
        match out {
            Some(Out::Folder(dir)) => {
                for format in [Format::Html, Format::Text, Format::Eml] {
                    let path = dir.join(format!("{date}.{}", format.extension()));
                    atomic::write(&path, &self.render(format)?)?;
                    written.push(path);
                }
            }
            Some(Out::File(file, format)) => {
                atomic::write(file, &self.render(*format)?)?;
                written.push(file.clone());
            }
            None if opts.open => {}
            None => return Ok(Some(self.render(opts.format.unwrap_or(Format::Html))?)),
        }
        Ok(None)
    }

    /// Opens the HTML in a browser: the file just written, or else one
    /// written to the temporary folder (and added to `written`).
    fn show(&self, date: NaiveDate, written: &mut Vec<PathBuf>) -> Result<(), Failure> {
        let html = match written
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "html"))
        {
            Some(p) => p.clone(),
            None => {
                let path = std::env::temp_dir().join(format!("dailyissue-preview-{date}.html"));
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
    fn out_is_a_folder_unless_it_names_a_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let existing = tmp.path().join("existing.d");
        std::fs::create_dir(&existing).expect("mkdir");
        let folder = |p: &Path| Out::of(p, None).ok() == Some(Out::Folder(p.to_path_buf()));
        assert!(folder(Path::new("previews/")));
        assert!(folder(Path::new("previews")), "no extension");
        assert!(folder(&existing), "a folder that exists, dot or not");
        let file = |p: &str, f: Option<Format>| Out::of(Path::new(p), f).ok();
        assert_eq!(
            file("x.html", None),
            Some(Out::File("x.html".into(), Format::Html))
        );
        assert_eq!(
            file("x.txt", None),
            Some(Out::File("x.txt".into(), Format::Text)),
            "the extension names the format"
        );
        assert_eq!(
            file("x.eml", Some(Format::Eml)),
            Some(Out::File("x.eml".into(), Format::Eml))
        );
        assert_eq!(
            file("x.out", Some(Format::Text)),
            Some(Out::File("x.out".into(), Format::Text))
        );
        assert!(matches!(
            Out::of(Path::new("x.html"), Some(Format::Text)),
            Err(Failure::Usage(_))
        ));
    }

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
