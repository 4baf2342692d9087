//! An edition: one day's issue prepared for its readers from the loaded
//! project, the day's record, the unsubscribe secrets and the DKIM key the
//! command resolved. Pure: it reads no file and no environment. `preview`,
//! `check` and `send` all prepare it the same way (see `cmd::open_day`), so
//! they render exactly the same message.

use chrono::{DateTime, Utc};

use crate::mail::dkim;
use crate::mail::token::Secrets;
use crate::problem::Failure;
use crate::project::content::Pool;
use crate::project::issue::{Issues, Stored};
use crate::project::settings::Settings;
use crate::project::templates::Templates;
use crate::render::email::{Email, Inputs as EmailInputs};

#[derive(Debug)]
pub struct Edition {
    pub email: Email,
    pub record: Stored,
    /// The DNS records to publish, one per `[[dkim]]` key.
    pub dkim_records: Vec<String>,
}

impl Edition {
    /// Set when the development secret stands in for a missing one: worth
    /// telling whoever previews or sends; `check` has its own view of it.
    pub fn secret_warning(&self) -> Option<String> {
        self.email.development_secret().then(|| {
            crate::mail::token::development_note(&self.email.settings().unsubscribe.secret_env)
        })
    }
}

/// What an edition is made from.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub settings: &'a Settings,
    pub pool: &'a Pool,
    pub templates: &'a Templates,
    /// Every record, so the email links only archive pages that exist.
    pub issues: &'a Issues,
    /// The day's record.
    pub record: Stored,
    /// The names of the list's extra columns.
    pub columns: &'a [String],
    pub secrets: Secrets,
    pub dkim: dkim::Keys,
    /// The Date header of every message of this run.
    pub sent_at: DateTime<Utc>,
}

impl Edition {
    pub fn prepare(inputs: Inputs<'_>) -> Result<Edition, Failure> {
        let Inputs {
            settings,
            pool,
            templates,
            issues,
            record,
            columns,
            secrets,
            dkim,
            sent_at,
        } = inputs;
        let problems = record
            .record
            .check_against(pool, &record.path, &record.text);
        if !problems.is_empty() {
            return Err(Failure::input(problems));
        }
        // In date order, so each slug keeps the last date it was featured.
        let featured: crate::render::context::Featured = issues
            .records
            .range(..=record.record.date)
            .flat_map(|(date, s)| {
                s.record
                    .picks
                    .values()
                    .map(move |slug| (slug.clone(), *date))
            })
            .collect();
        let dkim_records = dkim.dns_records();
        let email = Email::prepare(EmailInputs {
            settings,
            pool,
            templates,
            record: &record.record,
            featured: &featured,
            columns,
            secrets,
            sent_at,
            dkim,
        })
        .map_err(Failure::one)?;
        Ok(Edition {
            email,
            record,
            dkim_records,
        })
    }
}
