//! Where a `send` run's messages go: the choice of sink (SMTP, `.eml`
//! files, a dry run) from the options and the settings, the checks on an
//! outbox given on the command line, and the first SMTP connection made
//! before any ledger row changes.

use std::sync::Arc;
use std::time::Duration;

use crate::deliver::transport::{Sink, Smtp};
use crate::problem::{Failure, Usage};
use crate::project::Project;

use super::SendOptions;

/// Where this run's messages go: nowhere for a dry run (`.eml` files if
/// `--outbox` is given), `--outbox`, SMTP when configured, else the
/// settings' outbox. A `--outbox` that would expose the readers' addresses
/// or that cannot be written is refused before anything else happens.
pub(super) fn choose(project: &Project, opts: &SendOptions) -> Result<Sink, Failure> {
    let settings = &project.settings;
    let sink = if opts.dry_run {
        Sink::DryRun(opts.outbox.as_ref().map(|o| project.root.join(o)))
    } else if let Some(outbox) = &opts.outbox {
        Sink::Files(project.root.join(outbox))
    } else {
        match &settings.smtp {
            Some(smtp) => Sink::Smtp(Arc::new(
                Smtp::new(smtp, &project.root).map_err(|e| Failure::Usage(Usage::Smtp(e.0)))?,
            )),
            None => Sink::Files(project.path(&settings.outbox)),
        }
    };
    check_outbox(project, opts, &sink)?;
    Ok(sink)
}

/// Refuses an outbox that cannot hold the messages or must not: `--outbox`
/// is not checked with the settings, so it is kept away here from what is
/// published (the archive) and from the project's own files; and an outbox
/// that is a file (or under one) would fail every write.
fn check_outbox(project: &Project, opts: &SendOptions, sink: &Sink) -> Result<(), Failure> {
    let settings = &project.settings;
    if let Some(outbox) = &opts.outbox {
        let inside_archive = crate::project::settings::lexical(&project.root.join(outbox))
            .starts_with(crate::project::settings::lexical(
                &project.path(&settings.archive_dir),
            ));
        let private = crate::project::settings::private_inside(settings, &project.root, outbox);
        if inside_archive || !private.is_empty() {
            return Err(Failure::Usage(Usage::OutboxExposed {
                outbox: outbox.clone(),
                why: if inside_archive {
                    format!(
                        "it is inside the web archive ({}), which is published",
                        settings.archive_dir.display()
                    )
                } else {
                    format!("it holds {}", private.join(", "))
                },
            }));
        }
    }
    if let Some(dir) = sink.folder()
        && let Some(file) = dir.ancestors().find(|a| a.exists())
        && !file.is_dir()
    {
        let (what, flag) = match &opts.outbox {
            Some(o) => (o.display().to_string(), "--outbox"),
            None => (
                settings.outbox.display().to_string(),
                "outbox in dailyissue.toml",
            ),
        };
        return Err(Failure::Usage(Usage::OutboxIsAFile {
            setting: format!("{flag} {what}"),
            file: file.to_path_buf(),
        }));
    }
    Ok(())
}

/// Opens one connection before any row changes: a server that cannot be
/// reached (or keeps throttling) gets the usual backoff, then the run ends
/// with exit 75 and nothing changed.
pub(super) fn preconnect(
    runtime: &tokio::runtime::Runtime,
    smtp: &Arc<Smtp>,
    settings: Option<&crate::project::settings::SmtpSettings>,
) -> Result<(), Failure> {
    let (retries, base) =
        settings.map_or((0, Duration::from_secs(1)), |s| (s.retries, s.retry_base));
    runtime.block_on(async move {
        let mut attempt = 0;
        loop {
            match smtp.connect().await {
                Ok(session) => {
                    smtp.quit(session).await;
                    return Ok(());
                }
                Err(e) if attempt >= retries => {
                    return Err(Failure::Temporary(crate::problem::Temporary::Smtp {
                        endpoint: smtp.endpoint(),
                        throttled: matches!(
                            e,
                            crate::deliver::transport::ConnectError::Throttled(_)
                        ),
                        reason: e.to_string(),
                    }));
                }
                Err(e) => {
                    let wait = base.saturating_mul(2u32.saturating_pow(attempt));
                    tracing::debug!(
                        "first connection failed ({e}); attempt {} of {} in {wait:?}",
                        attempt + 2,
                        retries + 1
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    })
}
