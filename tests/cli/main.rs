//! CLI tests: drive the real `dailyissue` binary in temporary folders.
//! One test binary (`autotests = false`) keeps link time down.

mod support;

mod archive;
mod bounces;
mod check;
mod deliver;
mod faults;
mod history;
mod hooks;
mod init;
mod input;
mod json;
mod ledger;
mod live;
mod local;
mod logs;
mod output;
mod plan;
mod proxy;
mod render;
mod schedule;
mod sections;
mod send;
mod signup;
mod smtp;
mod subscribers;
