//! `[unsubscribe]`: the link every copy carries (a URL with a `{token}`
//! placeholder, by default under the archive's `url`), an optional mailto
//! address, and the names of the environment variables holding the
//! secret that signs the tokens (and the previous one, while rotating).
//! The secrets themselves are read by the command layer, never here.

use toml::Spanned;

use super::raw::{RawUnsubscribe, default_secret_env};
use super::values::url_problem;
use super::{Problems, env_name};

#[derive(Debug, Clone)]
pub struct UnsubscribeSettings {
    /// URL with a `{token}` placeholder.
    pub url: String,
    pub mailto: Option<String>,
    pub secret_env: String,
    pub previous_secret_env: Option<String>,
}

/// Checks `[unsubscribe]`, or gives the defaults under `base_url` (the
/// archive's URL, checked apart) when the table is left out.
pub(super) fn check(
    raw: Option<&RawUnsubscribe>,
    base_url: &str,
    problems: &mut Problems,
) -> UnsubscribeSettings {
    let Some(u) = raw else {
        return UnsubscribeSettings {
            url: format!("{base_url}/u/{{token}}"),
            mailto: None,
            secret_env: default_secret_env().into_inner(),
            previous_secret_env: None,
        };
    };
    let url = match &u.url {
        Some(url) => link(problems, url),
        None => format!("{base_url}/u/{{token}}"),
    };
    if let Some(mailto) = &u.mailto
        && crate::project::subscribers::parse_address(mailto.get_ref()).is_err()
    {
        problems.bad(
            mailto.span(),
            format!(
                "[unsubscribe] mailto must be a bare address such as \"unsubscribe@example.com\" (the token is added as the subject), not `{}`",
                mailto.get_ref().escape_debug()
            ),
        );
    }
    UnsubscribeSettings {
        url,
        mailto: u.mailto.as_ref().map(|m| m.get_ref().clone()),
        secret_env: env_name(problems, &u.secret_env, "[unsubscribe] secret_env"),
        previous_secret_env: u
            .previous_secret_env
            .as_ref()
            .map(|p| env_name(problems, p, "[unsubscribe] previous_secret_env")),
    }
}

/// The link as written: an absolute https URL with `{token}` exactly once.
fn link(problems: &mut Problems, url: &Spanned<String>) -> String {
    let tokens = url.get_ref().matches("{token}").count();
    if tokens != 1 {
        problems.bad(
            url.span(),
            format!(
                "[unsubscribe] url must contain `{{token}}` exactly once (found {tokens}), e.g. \"https://example.com/u/{{token}}\""
            ),
        );
    }
    if let Some(why) = url_problem(&url.get_ref().replace("{token}", "TOKEN"), true) {
        problems.bad(
            url.span(),
            format!(
                "[unsubscribe] url must be an absolute https URL such as \"https://example.com/u/{{token}}\": {why}"
            ),
        );
    }
    url.get_ref().clone()
}
