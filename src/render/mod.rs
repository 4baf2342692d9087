//! Render: from an issue record, the pool and the templates to what a
//! reader sees. Takes the loaded project and a record; gives an
//! [`email::Email`] prepared once per issue (Markdown, template contexts,
//! CSS inlining) that personalises each reader's copy cheaply (by
//! splicing, see `splice`), plus the preflight checks of `check` and
//! `send`.

pub mod context;
#[cfg(test)]
mod contrast;
pub mod edition;
pub mod email;
pub mod markdown;
pub mod preflight;
mod splice;
pub mod typography;
