use super::*;

fn parse_str(text: &str) -> List {
    parse(text.as_bytes(), Path::new("subscribers.csv")).expect("header ok")
}

#[test]
fn reads_columns_and_accepts_a_bom() {
    let list = parse_str(
        "\u{feff}Email,name,status,city\nAda@Example.org , Ada Lovelace,,London\nbob@example.net,Bob,unsubscribed,\n",
    );
    assert!(list.problems.is_empty(), "{:?}", list.problems);
    assert_eq!(list.rows, 2);
    let all: Vec<Subscriber> = list.readers().collect();
    let ada = &all[0];
    assert_eq!(ada.email.to_string(), "Ada@Example.org");
    assert_eq!(ada.key.as_str(), "ada@example.org");
    assert_eq!(ada.name, "Ada Lovelace");
    assert_eq!(list.columns, ["city"]);
    assert_eq!(ada.fields, ["London"]);
    assert_eq!(ada.line, 2);
    assert_eq!(list.active().count(), 1);
    assert!(list.find("ADA@example.org ").is_some());
}

#[test]
fn reports_invalid_and_duplicate_rows_with_lines() {
    let list = parse_str(
        "email,name\na@example.org,A\nnot-an-address,B\n,C\nA@EXAMPLE.ORG,D\nc@example.org,E\nd@example.org,F\n",
    );
    let msgs: Vec<String> = list.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        msgs,
        [
            "subscribers.csv:3: `not-an-address` is not a valid email address; fix it or delete the row",
            "subscribers.csv:4: no email address in this row; fill it in or delete the row",
            "subscribers.csv:5: duplicate address A@EXAMPLE.ORG (first on line 2); delete one of the rows",
        ]
    );
    assert_eq!(list.rows, 3);
    let keys: Vec<String> = list.readers().map(|s| s.key.to_string()).collect();
    assert_eq!(
        keys,
        ["a@example.org", "c@example.org", "d@example.org"],
        "skipped rows are not read back"
    );
}

#[test]
fn a_header_without_email_is_an_error() {
    let err = parse(b"name,address\nA,a@example.org\n", Path::new("s.csv")).expect_err("no email");
    assert!(
        err[0]
            .to_string()
            .starts_with("s.csv:1: the header row has no `email` column")
    );
}

fn broken(text: &str) -> Vec<String> {
    parse(text.as_bytes(), Path::new("subscribers.csv"))
        .expect_err("a broken file")
        .iter()
        .map(|p| p.to_string())
        .collect()
}

fn valid_rows(n: usize) -> String {
    (1..=n)
        .map(|i| format!("r{i}@example.org,R{i},active\n"))
        .collect()
}

#[test]
fn an_unclosed_quote_is_an_error_at_the_line_where_it_opens() {
    let errs = broken(&format!(
        "email,name,status\na1@example.org,\"A1,active\n{}",
        valid_rows(8)
    ));
    assert_eq!(
        errs,
        [
            "subscribers.csv:2: a quote is probably not closed: the field that opens here runs on to the end of the file, taking the rows in between with it; close the quote (\"...\") or remove it"
        ]
    );
    // A later quote closes it early: still one field across lines.
    let errs = broken(&format!(
        "email,name,status\n{}a1@example.org,\"A1,active\n{}z@example.org,\"Zed, Z\",active\nlast@example.org,L,active\n",
        valid_rows(1),
        valid_rows(3)
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("subscribers.csv:3: a quote is probably not closed: the field that opens here runs on to line 7,"),
        "{errs:?}"
    );
}

#[test]
fn rows_of_the_wrong_shape_are_errors_with_their_lines() {
    let errs = broken(&format!(
        "email,name,status\n{}c@example.org,Park, Ada,active\nd@example.org\n\"e@example.org\nx\",E,active\n",
        valid_rows(2)
    ));
    assert_eq!(
        errs,
        [
            "subscribers.csv:4: this row has 4 fields but the header has 3; put quotes around a value that contains a comma (\"Park, Ada\"), or add the missing fields",
            "subscribers.csv:5: this row has 1 field but the header has 3; put quotes around a value that contains a comma (\"Park, Ada\"), or add the missing fields",
            "subscribers.csv:6: the email field spans several lines; an address is one line: remove the line break between the quotes",
        ]
    );
}

#[test]
fn a_column_named_twice_is_an_error() {
    let errs = broken("email,name,Email\na@example.org,A,b@example.org\n");
    assert_eq!(
        errs,
        [
            "subscribers.csv:1: the header row names the column `email` twice (columns 1 and 3); give each column its own name"
        ]
    );
}

#[test]
fn an_overlong_field_is_a_problem_of_its_row() {
    let list = parse_str(&format!(
        "email,name\na@example.org,{}\nb@example.org,B\n",
        "x".repeat(20 * 1024)
    ));
    let msgs: Vec<String> = list.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        msgs,
        [
            "subscribers.csv:2: the `name` field is 20 KB long; a field may hold at most 1000 bytes (it is copied into every message): shorten it or delete the row"
        ]
    );
    assert_eq!(list.readers().count(), 1);
}

#[test]
fn only_addresses_at_domain_names_are_accepted() {
    for (raw, ok) in [
        ("ada@example.org", true),
        ("\"a b\"@example.org", true),
        ("a@[127.0.0.1]", false),
        ("a@[IPv6:::1]", false),
        ("a@10.0.0.1", false),
        ("a@localhost", false),
        ("a@example..org", false),
        ("a@example.org?subject=x", false),
        ("a@exa/mple.org", false),
        ("a@bücher.example", true),
        ("", false),
    ] {
        assert_eq!(parse_address(raw).is_ok(), ok, "{raw}");
    }
    let list = parse_str("email\na@[127.0.0.1]\n");
    assert!(
        list.problems[0]
            .to_string()
            .starts_with("subscribers.csv:2: `a@[127.0.0.1]` is an address literal"),
        "{:?}",
        list.problems
    );
    assert!(list.reader("a@[127.0.0.1]").is_none());
}

#[test]
fn lines_count_blank_lines_before_a_row() {
    let list = parse_str("email,name\n\n\nnope,A\n  \nb@example.org,B\n");
    assert_eq!(list.problems[0].line, Some(4), "{:?}", list.problems);
    assert_eq!(list.readers().next().expect("a row").line, 6);
}

#[test]
fn a_file_is_read_again_from_the_handle_it_was_checked_with() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("list.csv");
    let mut csv = String::from("\u{feff}email,name\n");
    for i in 0..3000 {
        csv.push_str(&format!("r{i}@example.org,\"Reader, {i}\"\n"));
    }
    csv.push_str("r7@example.org,dup\n");
    std::fs::write(&path, &csv).expect("write");
    let list = List::from_file(Path::new("list.csv"), &path).expect("valid");
    assert_eq!(
        (list.rows, list.active, list.problems.len()),
        (3000, 3000, 1)
    );
    // An editor replaces the file by renaming: the run keeps its copy.
    std::fs::write(dir.path().join("new.csv"), "email\nother@example.org\n").expect("write");
    std::fs::rename(dir.path().join("new.csv"), &path).expect("rename");
    let read: Vec<Subscriber> = list.active().collect();
    assert_eq!(read.len(), 3000);
    assert_eq!(read[2999].name, "Reader, 2999");
    assert_eq!(read[2999].line, 3001);
    assert_eq!(list.samples().len(), 1, "one shape: every row has a name");
}

#[test]
fn line_breaks_in_names_are_neutralised() {
    let list = parse_str("email,name\na@example.org,\"Eve\r\nBcc: x@evil.example\"\n");
    assert_eq!(
        list.readers().next().expect("a row").name,
        "Eve Bcc: x@evil.example"
    );
}
