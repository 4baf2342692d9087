//! `schedule`: ready-made crontab lines or systemd units for this project:
//! absolute paths (the binary that runs now, the project), the newsletter's
//! time zone, and the environment file that holds the secrets, the same for
//! every run (the first and its retries). The runs come from the delivery
//! mode's [`Timing`](crate::timer::Timing): the daily mode, or every 15
//! minutes for local mornings (`delivery = "local"`).

use std::path::PathBuf;

use crate::problem::Failure;
use crate::project::Project;
use crate::timer::{self, Job};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cron,
    Systemd,
}

#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    pub kind: Kind,
    /// The running `dailyissue` (absolute).
    pub binary: PathBuf,
    /// The environment file (absolute).
    pub env_file: PathBuf,
    /// Who runs it, when known (`$USER`).
    pub user: Option<String>,
}

/// The units: one text for cron, two files for systemd.
#[derive(Debug, serde::Serialize)]
pub struct Schedule {
    pub files: Vec<Unit>,
}

#[derive(Debug, serde::Serialize)]
pub struct Unit {
    /// Where it goes: `crontab` or the unit's file name.
    pub name: String,
    pub text: String,
}

impl crate::cmd::Report for Schedule {
    fn text(&self) -> String {
        match self.files.as_slice() {
            [one] => one.text.clone(),
            many => many
                .iter()
                .map(|u| format!("# /etc/systemd/system/{}\n{}", u.name, u.text))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

pub fn schedule(project: &Project, opts: &ScheduleOptions) -> Result<Schedule, Failure> {
    let settings = &project.settings;
    let timing = match settings.delivery {
        crate::project::settings::Delivery::Zone => {
            timer::daily(settings.timezone, settings.send_time, settings.max_lateness)
        }
        crate::project::settings::Delivery::Local => {
            timer::local_mornings(settings.timezone, settings.send_time)
        }
    };
    let root = project.root.canonicalize().map_err(|e| {
        anyhow::Error::from(e).context(format!("cannot resolve {}", project.root.display()))
    })?;
    let mut env_vars = vec![settings.unsubscribe.secret_env.clone()];
    if let Some(var) = settings.smtp.as_ref().and_then(|s| s.password_env.clone()) {
        env_vars.push(var);
    }
    let job = Job {
        name: settings.name.clone(),
        binary: opts.binary.clone(),
        project: root,
        env_file: opts.env_file.clone(),
        env_vars,
        user: opts.user.clone(),
    };
    let files = match opts.kind {
        Kind::Cron => vec![Unit {
            name: "crontab".into(),
            text: timer::crontab(&timing, &job),
        }],
        Kind::Systemd => timer::systemd(&timing, &job)
            .into_iter()
            .map(|(name, text)| Unit { name, text })
            .collect(),
    };
    Ok(Schedule { files })
}
