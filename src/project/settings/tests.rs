//! `Settings::parse` fed inline text: defaults, every refusal with its line.

use super::*;

const MINIMAL: &str = r#"
name = "Beginners in AI"
url = "https://example.com/"
timezone = "America/New_York"
from = "Beginners in AI <daily@example.com>"
postal_address = "1 Main St, Springfield"
"#;

fn parse(text: &str) -> Result<Settings, Vec<Problem>> {
    Settings::parse(text, Path::new("dailyissue.toml"))
}

fn errors(text: &str) -> Vec<String> {
    parse(text)
        .err()
        .unwrap_or_default()
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn minimal_settings_get_defaults() {
    let s = parse(MINIMAL).expect("valid");
    assert_eq!(s.url, "https://example.com");
    assert_eq!(s.timezone, chrono_tz::America::New_York);
    assert_eq!(s.sections, default_sections());
    assert_eq!(s.subscribers, PathBuf::from("subscribers.csv"));
    assert_eq!(s.max_lateness, chrono::Duration::hours(6));
    assert_eq!(s.unsubscribe.url, "https://example.com/u/{token}");
    assert_eq!(s.list_id, "beginners-in-ai.example.com");
    assert!(s.smtp.is_none());
}

#[test]
fn durations_take_humantime_syntax() {
    let s = parse(&format!(
        "{MINIMAL}max_lateness = \"1h 30m\"\n[smtp]\nhost = \"smtp.example.com\"\ntimeout = \"1.5min\"\nretry_base = \"250ms\"\n"
    ))
    .expect("valid");
    assert_eq!(s.max_lateness, chrono::Duration::minutes(90));
    let smtp = s.smtp.expect("smtp");
    assert_eq!(smtp.timeout, std::time::Duration::from_secs(90));
    assert_eq!(smtp.retry_base, std::time::Duration::from_millis(250));
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let errs = errors(&format!("{MINIMAL}subjet = \"x\"\n"));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0] == "dailyissue.toml:7: unknown key `subjet`; did you mean `subject`?",
        "{errs:?}"
    );
}

#[test]
fn unknown_key_in_a_table_is_named() {
    let errs = errors(&format!("{MINIMAL}[smtp]\nhost = \"x\"\nprot = 25\n"));
    assert_eq!(
        errs[0],
        "dailyissue.toml:9: unknown key `prot`; did you mean `port`?"
    );
}

#[test]
fn bad_time_zone_and_mailbox_are_both_reported() {
    let text = MINIMAL
        .replace("America/New_York", "Mars/Olympus")
        .replace("<daily@example.com>", "<not an address>");
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("dailyissue.toml:4: unknown time zone `Mars/Olympus`"));
    assert!(errs[1].starts_with("dailyissue.toml:5: `from` is not a valid mailbox"));
}

#[test]
fn sections_are_configurable_and_title_is_always_required() {
    let text = format!(
        "{MINIMAL}[[section]]\nname = \"quote\"\nrequired = [\"author\"]\n[[section]]\nname = \"term\"\ndir = \"glossary\"\n"
    );
    let s = parse(&text).expect("valid");
    assert_eq!(s.sections.len(), 2);
    assert_eq!(s.sections[0].dir, PathBuf::from("content/quotes"));
    assert_eq!(s.sections[0].required, vec!["title", "author"]);
    assert_eq!(s.sections[1].dir, PathBuf::from("glossary"));
}

#[test]
fn duplicate_and_malformed_section_names_are_errors() {
    let text = format!(
        "{MINIMAL}[[section]]\nname = \"term\"\n[[section]]\nname = \"term\"\n[[section]]\nname = \"Big Tips\"\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].contains("declared twice"));
    assert!(errs[1].contains("`Big Tips` must start with a lowercase letter"));
}

#[test]
fn plain_smtp_is_refused_for_remote_hosts() {
    let ok = format!("{MINIMAL}[smtp]\nhost = \"127.0.0.1\"\ntls = \"none\"\n");
    assert_eq!(parse(&ok).expect("loopback").smtp.expect("smtp").port, 25);
    let errs = errors(&format!(
        "{MINIMAL}[smtp]\nhost = \"smtp.example.com\"\ntls = \"none\"\n"
    ));
    assert!(
        errs[0].contains("only allowed for a loopback host"),
        "{errs:?}"
    );
}

#[test]
fn values_that_would_break_later_are_refused_with_their_line() {
    // (what replaces or follows MINIMAL, the line, the message starts with)
    let cases: &[(&str, usize, &str)] = &[
        ("name = \"Beginners\\nin AI\"", 2, "`name` must be one line"),
        ("name = \"Bell\\u0007\"", 2, "`name` must be one line"),
        ("subject = \" \"", 7, "`subject` must not be empty"),
        (
            "from = \"Daily\\r\\nBcc: x <daily@example.com>\"",
            5,
            "`from` is not a valid mailbox",
        ),
        (
            "reply_to = \"\\\"Re\\nply\\\" <r@example.com>\"",
            7,
            "`reply_to` is not a valid mailbox",
        ),
        (
            "postal_address = \"1 Main St\\u001b[2J\"",
            6,
            "`postal_address` must not contain control",
        ),
        (
            "url = \"https://exa mple.com\"",
            3,
            "`url` must be an absolute http(s) URL",
        ),
        (
            "url = \"https://example.com/?a=1\"",
            3,
            "`url` must be an absolute http(s) URL",
        ),
        (
            "list_id = \"daily example\"",
            7,
            "`list_id` must be a dotted name",
        ),
        (
            "feedback_id = \"a\\r\\nBcc: x\"",
            7,
            "`feedback_id` must be printable ASCII",
        ),
        (
            "max_lateness = \"100000000d\"",
            7,
            "`max_lateness` = \"100000000d\" is more than 7 days",
        ),
        (
            "max_lateness = \"6M\"",
            7,
            "`max_lateness` = \"6M\" is more than 7 days",
        ),
        (
            "max_lateness = \"6 o'clock\"",
            7,
            "`max_lateness` = \"6 o'clock\" is not a duration; write e.g. \"6h\"",
        ),
        (
            "[smtp]\nhost = \"smtp.example.com\"\ntimeout = \"2 hours\"",
            9,
            "[smtp] timeout = \"2 hours\" is longer than 3600s",
        ),
        (
            "[smtp]\nhost = \"smtp.example.com\"\nretry_base = \"2\"",
            9,
            "[smtp] retry_base = \"2\" is not a duration; write e.g. \"2s\"",
        ),
        (
            "[[section]]\nname = \"issue\"",
            7,
            "section name `issue` is taken",
        ),
        (
            "[[section]]\nname = \"subscriber\"",
            7,
            "section name `subscriber` is taken",
        ),
        (
            "[[section]]\nname = \"unsubscribe_url\"",
            7,
            "section name `unsubscribe_url` is taken",
        ),
        (
            "[smtp]\nhost = \"smtp.example.com\"\nport = 0",
            9,
            "[smtp] port must be between 1 and 65535",
        ),
        (
            "[smtp]\nhost = \"smtp.example.com\"\ntimeout = \"0s\"",
            9,
            "[smtp] timeout must be more than 0",
        ),
        (
            "[smtp]\nhost = \"smtp.example.com\"\nretry_base = \"0\"",
            9,
            "[smtp] retry_base must be more than 0",
        ),
        (
            "[smtp]\nhost = \"smtp.example.com\"\nretries = 1000",
            9,
            "[smtp] retries = 1000 is more than 10",
        ),
        (
            "[smtp]\nhost = \"smtp.example.com\\r\\n\"",
            8,
            "[smtp] host `smtp.example.com\\r\\n` is not a host name",
        ),
        (
            "[smtp]\nhost = \"smtp.example.com\"\nhelo = \"me\\nRCPT\"",
            9,
            "[smtp] helo `me\\nRCPT` must be",
        ),
        (
            "[smtp]\nhost = \"x.org\"\nusername = \"u\\n\"\npassword_env = \"P\"",
            9,
            "[smtp] username must be one line",
        ),
        (
            "[smtp]\nhost = \"x.org\"\nusername = \"u\"\npassword_env = \"A=B\"",
            10,
            "[smtp] password_env must name an environment variable",
        ),
        (
            "[unsubscribe]\nurl = \"https://example.com/u/{token}\\r\\nBcc: x\"",
            8,
            "[unsubscribe] url must be an absolute https URL",
        ),
        (
            "[unsubscribe]\nurl = \"https://example.com/u/{token}/{token}\"",
            8,
            "[unsubscribe] url must contain `{token}` exactly once (found 2)",
        ),
        (
            "[unsubscribe]\nurl = \"https://example.com/u/\"",
            8,
            "[unsubscribe] url must contain `{token}` exactly once (found 0)",
        ),
        (
            "[unsubscribe]\nurl = \"https://example.com/u/{token}>, <https://evil.example\"",
            8,
            "[unsubscribe] url must be an absolute https URL",
        ),
        (
            "[unsubscribe]\nmailto = \"u@example.com\\r\\nBcc: x@evil.example\"",
            8,
            "[unsubscribe] mailto must be a bare address",
        ),
        (
            "[unsubscribe]\nmailto = \"u@example.com?subject=x\"",
            8,
            "[unsubscribe] mailto must be a bare address",
        ),
        (
            "[unsubscribe]\nmailto = \"mailto:u@example.com\"",
            8,
            "[unsubscribe] mailto must be a bare address",
        ),
        (
            "[unsubscribe]\nsecret_env = \"\"",
            8,
            "[unsubscribe] secret_env must name an environment variable",
        ),
        (
            "[dkim]\ndomain = \"example.com\\n\"\nselector = \"daily\"\nprivate_key_file = \"k.pem\"",
            8,
            "[dkim] domain `example.com\\n` must be a DNS name",
        ),
        (
            "[dkim]\ndomain = \"example.com\"\nselector = \"da ily\"\nprivate_key_file = \"k.pem\"",
            9,
            "[dkim] selector `da ily` must be a DNS name",
        ),
    ];
    let mut failures = Vec::new();
    for (extra, line, start) in cases {
        let key = extra.split(" = ").next().unwrap_or("");
        // A top-level key replaces MINIMAL's line of that key, if any.
        let text = if !extra.starts_with('[') && MINIMAL.contains(&format!("\n{key} = ")) {
            MINIMAL
                .lines()
                .map(|l| {
                    if l.starts_with(&format!("{key} = ")) {
                        extra
                    } else {
                        l
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            format!("{MINIMAL}{extra}\n")
        };
        let errs = errors(&text);
        let want = format!("dailyissue.toml:{line}: {start}");
        if errs.len() != 1 || !errs[0].starts_with(&want) {
            failures.push(format!("{extra}\n  want {want}\n  got  {errs:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn invalid_toml_reports_its_line() {
    let errs = errors(&format!("{MINIMAL}daily_cap = \n"));
    assert!(errs[0].starts_with("dailyissue.toml:7:"), "{errs:?}");
}

#[test]
fn concurrency_is_bounded() {
    for (n, ok) in [
        (0, false),
        (1, true),
        (256, true),
        (257, false),
        (100000, false),
    ] {
        let text = format!("{MINIMAL}[smtp]\nhost = \"127.0.0.1\"\nconcurrency = {n}\n");
        assert_eq!(parse(&text).is_ok(), ok, "{n}: {:?}", errors(&text));
    }
}

#[test]
fn one_dkim_table_or_several() {
    let one = format!(
        "{MINIMAL}[dkim]\ndomain = \"example.com\"\nselector = \"d\"\nprivate_key_file = \"k.pem\"\n"
    );
    assert_eq!(parse(&one).expect("one table").dkim.len(), 1);
    let two = format!(
        "{MINIMAL}[[dkim]]\ndomain = \"example.com\"\nselector = \"r\"\nprivate_key_file = \"r.pem\"\n[[dkim]]\ndomain = \"example.com\"\nselector = \"e\"\nalgorithm = \"ed25519-sha256\"\nprivate_key_file = \"e.key\"\n"
    );
    let s = parse(&two).expect("two tables");
    assert_eq!(s.dkim.len(), 2);
    assert_eq!(s.dkim[1].algorithm, DkimAlgorithm::Ed25519Sha256);
    let same = two.replace("selector = \"e\"", "selector = \"r\"");
    let errs = errors(&same);
    assert!(
        errs.iter()
            .any(|e| e.contains("selector `r` of example.com is listed twice")),
        "{errs:?}"
    );
    let typo = one.replace("selector = ", "selectr = ");
    let errs = errors(&typo);
    assert!(
        errs[0].contains("unknown key `selectr`; did you mean `selector`?"),
        "{errs:?}"
    );
}

#[test]
fn signups_and_feedback_default_under_the_archive_url() {
    let s = parse(MINIMAL).expect("valid");
    assert!(s.subscribe.enabled && s.subscribe.welcome && s.feedback.enabled);
    assert_eq!(s.subscribe.action, "https://example.com/subscribe");
    assert_eq!(
        s.subscribe.confirm_url,
        "https://example.com/confirm/{token}"
    );
    assert_eq!(
        (s.subscribe.per_address_per_day, s.subscribe.per_ip_per_hour),
        (3, 10)
    );
    assert_eq!(s.subscribe.confirm_within, chrono::Duration::days(7));
    assert_eq!(s.feedback.url, "https://example.com/feedback/{token}");
    let s = parse(&format!(
        "{MINIMAL}[subscribe]\nper_address_per_day = 1\nwelcome = false\nconfirm_within = \"2d\"\npromise = \"Free, daily.\"\n[feedback]\nenabled = false\n"
    ))
    .expect("valid");
    assert_eq!(s.subscribe.per_address_per_day, 1);
    assert_eq!(s.subscribe.per_ip_per_hour, 10);
    assert!(!s.subscribe.welcome && !s.feedback.enabled);
    assert_eq!(s.subscribe.confirm_within, chrono::Duration::days(2));
    assert_eq!(s.subscribe.promise.as_deref(), Some("Free, daily."));
}

#[test]
fn signup_settings_that_cannot_work_are_refused_all_at_once() {
    let errs = errors(&format!(
        "{MINIMAL}[subscribe]\naction = \"/subscribe\"\nconfirm_url = \"https://example.com/confirm\"\nper_address_per_day = 0\nper_ip_per_hour = 5000\nconfirm_within = \"6M\"\nsubscribe_url = \"x\"\n"
    ));
    assert_eq!(errs.len(), 1, "unknown key first: {errs:?}");
    assert!(errs[0].contains("unknown key `subscribe_url`"), "{errs:?}");
    let errs = errors(&format!(
        "{MINIMAL}[subscribe]\naction = \"/subscribe\"\nconfirm_url = \"https://example.com/confirm\"\nper_address_per_day = 0\nper_ip_per_hour = 5000\nconfirm_within = \"6M\"\npromise = \"two\\nlines\"\n[feedback]\nurl = \"https://example.com/f/{{token}}/{{token}}\"\n"
    ));
    let lines: Vec<&str> = errs
        .iter()
        .map(|e| e.split(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        lines,
        [
            "dailyissue.toml:8",
            "dailyissue.toml:9",
            "dailyissue.toml:10",
            "dailyissue.toml:11",
            "dailyissue.toml:12",
            "dailyissue.toml:13",
            "dailyissue.toml:15"
        ],
        "{errs:#?}"
    );
    assert!(
        errs[1].contains("`{token}` exactly once (found 0)"),
        "{errs:?}"
    );
    assert!(errs[2].contains("use 1 to 1000"), "{errs:?}");
    assert!(errs[4].contains("from \"1h\" to \"30d\""), "{errs:?}");
}

#[test]
fn bounces_default_to_no_verp_and_three_soft_bounces() {
    let s = parse(MINIMAL).expect("valid");
    assert_eq!(s.bounces.return_path, None);
    assert_eq!((s.bounces.soft_limit, s.bounces.soft_window), (3, 7));
    assert!(s.bounces.ses_topics.is_empty());
    let s = parse(&format!(
        "{MINIMAL}[bounces]\nreturn_path = \"bounces+{{token}}@example.com\"\nsoft_limit = 2\nses_topics = [\"arn:aws:sns:us-east-1:123456789012:ses-bounces\"]\nmailgun_key_env = \"MG_KEY\"\n"
    ))
    .expect("valid");
    assert_eq!(
        s.bounces.return_path,
        Some(ReturnPath {
            prefix: "bounces+".into(),
            suffix: "@example.com".into()
        })
    );
    assert_eq!(s.bounces.soft_limit, 2);
    assert_eq!(s.bounces.mailgun_key_env, "MG_KEY");
    assert_eq!(s.bounces.sendgrid_key_env, "DAILYISSUE_SENDGRID_PUBLIC_KEY");
}

#[test]
fn bad_bounce_settings_are_all_named_with_their_lines() {
    let long = "x".repeat(50);
    let errs = errors(&format!(
        "{MINIMAL}[bounces]\nreturn_path = \"{long}+{{token}}@example.com\"\nsoft_limit = 0\nsoft_window = 2000\nses_topics = [\"my-topic\"]\npostmark_auth_env = \"not a name\"\n"
    ));
    assert_eq!(errs.len(), 5, "{errs:?}");
    assert!(
        errs[0].starts_with("dailyissue.toml:8: [bounces] return_path")
            && errs[0].contains("71 octets"),
        "{errs:?}"
    );
    assert!(
        errs[1].starts_with("dailyissue.toml:9: [bounces] soft_limit"),
        "{errs:?}"
    );
    assert!(
        errs[2].starts_with("dailyissue.toml:10: [bounces] soft_window"),
        "{errs:?}"
    );
    assert!(
        errs[3].starts_with("dailyissue.toml:11: [bounces] ses_topics"),
        "{errs:?}"
    );
    assert!(
        errs[4].starts_with("dailyissue.toml:12: [bounces] postmark_auth_env"),
        "{errs:?}"
    );
    for bad in [
        "bounces@example.com",
        "{token}",
        "bounces@{token}.example.com",
        "a+{token}+{token}@x.org",
    ] {
        let errs = errors(&format!("{MINIMAL}[bounces]\nreturn_path = \"{bad}\"\n"));
        assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
    }
}
