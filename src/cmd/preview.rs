//! `preview`: exactly what `send` would send to one reader, without sending
//! and without touching the ledger. It writes the issue record when the day
//! has none, as `plan` would.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use crate::atomic;
use crate::cmd::{DayOptions, SecretUse, open_day};
use crate::problem::Failure;
use crate::project::Project;
use crate::render::email;

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
}

impl crate::cmd::Report for Preview {
    fn text(&self) -> String {
        self.written
            .iter()
            .map(|p| format!("wrote {} (as {})\n", p.display(), self.reader))
            .collect()
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
    let edition = &day.edition;
    let list = &day.loaded.list;
    if day.created {
        tracing::info!("wrote {}", edition.record.path.display());
    }
    let reader = match &opts.reader {
        Some(addr) => {
            let (reader, listed) = list
                .reader(addr)
                .ok_or_else(|| Failure::Usage(format!("--as {addr}: not a valid email address")))?;
            if !listed {
                tracing::info!(
                    "the --as address is not on the list; rendering for an unnamed reader"
                );
            }
            reader
        }
        None => match list.active().next() {
            Some(r) => r.clone(),
            None => email::sample_reader(list.columns.len()),
        },
    };
    let mail = &edition.email;
    let render = |format: Format| -> Result<Vec<u8>, Failure> {
        Ok(match format {
            Format::Html => mail
                .render(&reader)
                .map_err(Failure::one)?
                .html
                .into_bytes(),
            Format::Text => mail
                .render(&reader)
                .map_err(Failure::one)?
                .text
                .into_bytes(),
            Format::Eml => mail.message(&reader)?,
        })
    };
    let mut written = Vec::new();
    let mut stdout = None;
    match &opts.out {
        Some(out) if out.is_dir() || out.to_string_lossy().ends_with('/') => {
            for format in [Format::Html, Format::Text, Format::Eml] {
                let path = out.join(format!("{}.{}", opts.date, format.extension()));
                atomic::write(&path, &render(format)?)?;
                written.push(path);
            }
        }
        Some(out) => {
            atomic::write(out, &render(opts.format)?)?;
            written.push(out.clone());
        }
        None if opts.open => {}
        None => stdout = Some(render(opts.format)?),
    }
    if opts.open {
        let html = match written
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == "html"))
        {
            Some(p) => p.clone(),
            None => {
                let path =
                    std::env::temp_dir().join(format!("dailyissue-preview-{}.html", opts.date));
                atomic::write(&path, &render(Format::Html)?)?;
                written.push(path.clone());
                path
            }
        };
        open_in_browser(&html)?;
    }
    Ok(Preview {
        stdout,
        written,
        reader: reader.email.to_string(),
    })
}

fn open_in_browser(path: &Path) -> Result<(), Failure> {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|_| ())
        .map_err(|e| {
            Failure::Other(anyhow::anyhow!(
                "cannot run {opener} to open {}: {e}",
                path.display()
            ))
        })
}
