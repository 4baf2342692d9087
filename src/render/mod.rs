//! Render: from an issue record, the pool and the templates to what a
//! reader sees. Takes the loaded project and a record; gives an
//! [`email::Email`] prepared once per issue (Markdown, template contexts,
//! CSS inlining) that personalises each reader's copy cheaply (by
//! splicing, see `splice`), plus the preflight checks of `check` and
//! `send`; and the signup letters `serve` mails one at a time (`signup`).

pub mod context;
#[cfg(test)]
mod contrast;
pub mod edition;
pub mod email;
pub mod markdown;
pub mod preflight;
pub mod signup;
mod splice;
pub mod typography;
