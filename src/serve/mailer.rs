//! How `serve` mails a signup's letters: through the configured transport
//! (SMTP when `[smtp]` is set, else `.eml` files in the outbox, under
//! `confirm/` and `welcome/`), signed with every DKIM key, one message on
//! one connection at a time (signups are few; a run's pipeline is not
//! needed). The envelope sender is the `from` address, as for issues.

use std::sync::Arc;

use lettre::Address;
use lettre::address::Envelope;

use crate::deliver::transport::{Sink, Smtp};
use crate::mail::dkim;
use crate::problem::{Failure, Usage};
use crate::project::Project;

pub(super) struct Mailer {
    sink: Sink,
    dkim: dkim::Keys,
    sender: Address,
}

impl Mailer {
    /// The transport and keys of `project`: an SMTP password or DKIM key
    /// that cannot be read stops `serve` at its start, not at the first
    /// signup.
    pub(super) fn new(project: &Project) -> Result<Mailer, Failure> {
        let settings = &project.settings;
        let sink = match &settings.smtp {
            Some(smtp) => Sink::Smtp(Arc::new(Smtp::new(smtp, &project.root).map_err(|e| {
                Failure::Usage(Usage::Smtp(format!(
                    "{e} (serve mails the signups' confirmations; set `[subscribe] enabled = false` to take none)"
                )))
            })?)),
            None => Sink::Files(project.path(&settings.outbox)),
        };
        Ok(Mailer {
            sink,
            dkim: crate::mail::dkim::Keys::load(settings, &project.root).map_err(Failure::input)?,
            sender: settings.from.email.clone(),
        })
    }

    /// Where letters go, for the log.
    pub(super) fn describe(&self) -> String {
        self.sink.describe()
    }

    /// Signs and delivers one letter to `to`; `kind` names the outbox
    /// folder. The error says what failed without naming the reader.
    pub(super) async fn send(
        &self,
        to: &Address,
        kind: &str,
        message: Vec<u8>,
    ) -> Result<(), String> {
        let signed = self.dkim.sign(message)?;
        let envelope = Envelope::new(Some(self.sender.clone()), vec![to.clone()])
            .map_err(|e| format!("no envelope: {e}"))?;
        let mut connection = self.sink.connection();
        let sent = connection
            .deliver(&envelope, kind, to.as_ref(), &signed)
            .await
            .map(|_| ())
            .map_err(|e| crate::log::mask_in(&e.to_string(), to.as_ref()));
        connection.close().await;
        sent
    }
}
