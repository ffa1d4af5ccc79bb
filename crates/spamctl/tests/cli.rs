//! The spamctl binary on the SpamAssassin corpus and on bad input.

use spamflow_testkit::ScratchDir;
use std::path::PathBuf;
use std::process::Command;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Returns the corpus fetched by scripts/fetch-corpus, failing the test with the fix when it
/// is missing.
fn corpus() -> PathBuf {
    let corpus = workspace_root().join("data/corpus");
    assert!(
        corpus.join(".complete").is_file(),
        "the SpamAssassin corpus is missing from {}; run scripts/fetch-corpus",
        corpus.display()
    );
    corpus
}

fn spamctl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spamctl"));
    command
        .current_dir(workspace_root())
        .env_remove("SPAMFLOW_REDIS_URL");
    command
}

fn last_line(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn dev_on_test_split_meets_accuracy_bar() {
    corpus();
    let output = spamctl()
        .args(["dev", "--metrics-addr", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = last_line(&output.stdout);
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[0], "summary", "{line}");
    let keys: Vec<&str> = fields[1..]
        .iter()
        .map(|f| f.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "messages",
            "accuracy",
            "ham_fpr",
            "spam_recall",
            "emails_per_sec",
            "p99_ms"
        ]
    );
    assert_eq!(
        fields[1], "messages=1245",
        "the TEST split holds 845 ham and 400 spam"
    );
    let accuracy: f64 = fields[2].trim_start_matches("accuracy=").parse().unwrap();
    assert!(accuracy >= 0.97, "{line}");
}

#[test]
fn dev_known_spam_counts_bloom_verdicts() {
    corpus();
    let output = spamctl()
        .args([
            "dev",
            "--known-spam",
            "--json",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let decided_by = summary["decided_by"].as_object().unwrap();
    let total: u64 = decided_by.values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total, summary["messages"].as_u64().unwrap(), "{summary}");
    // TEST repeats the bodies of some TRAIN spam word for word.
    let digests = decided_by.get("bloom_body_digest").and_then(|n| n.as_u64());
    assert!(digests.is_some_and(|n| n > 0), "{summary}");
    // The shipped model has a threshold of its own for mail from a mailing list.
    let list_mail = summary["list_mail_threshold"].as_f64();
    assert!(list_mail.is_some_and(|t| t > 0.0 && t < 1.0), "{summary}");
}

#[test]
fn classify_reads_standard_input() {
    use std::io::Write as _;
    let mut child = spamctl()
        .args(["classify", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"From: a@example.org\nSubject: win cash\n\nClaim your cash prize now.\n")
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.starts_with("-: "), "{stdout}");
    assert!(stdout.contains("spam probability"), "{stdout}");
}

#[test]
fn classify_text_limits_the_bytes_read() {
    let dir = ScratchDir::new("classify-text");
    // 4 MB of bytes that are not UTF-8: 12 MB once each becomes a replacement character.
    let file = dir.join("latin.txt");
    std::fs::write(&file, vec![0xFF_u8; 4 * 1024 * 1024]).unwrap();
    let output = spamctl()
        .args(["classify", "--text"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn eval_json_reports_auc() {
    let corpus = corpus();
    let output = spamctl()
        .args(["eval", "--json", "--split", "test", "--spam"])
        .arg(corpus.join("spam"))
        .arg("--ham")
        .arg(corpus.join("ham"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["spam"], 400);
    assert_eq!(summary["ham"], 845);
    assert!(summary["auc"].as_f64().unwrap() > 0.99, "{summary}");
    assert!(summary["accuracy"].as_f64().unwrap() >= 0.97, "{summary}");
}

#[test]
fn eval_text_ends_with_summary_including_auc() {
    let corpus = corpus();
    let output = spamctl()
        .args(["eval", "--spam"])
        .arg(corpus.join("spam/spam-1"))
        .arg("--ham")
        .arg(corpus.join("ham/hard-ham-1"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = last_line(&output.stdout);
    assert!(line.starts_with("summary messages="), "{line}");
    assert!(line.contains(" auc="), "{line}");
}

#[test]
fn train_writes_a_loadable_model() {
    let dir = ScratchDir::new("train");
    std::fs::create_dir_all(dir.join("spam")).unwrap();
    std::fs::create_dir_all(dir.join("ham")).unwrap();
    for index in 0..6 {
        std::fs::write(
            dir.join(format!("spam/spam-{index}.eml")),
            format!("Subject: win cash {index}\n\nclaim your free prize money now {index}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("ham/ham-{index}.eml")),
            format!(
                "Subject: build notes {index}\n\nthe release branch passed its tests {index}\n"
            ),
        )
        .unwrap();
    }
    let model = dir.join("model.json");
    let output = spamctl()
        .args(["train", "--split", "all", "--spam"])
        .arg(dir.join("spam"))
        .arg("--ham")
        .arg(dir.join("ham"))
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(json["format"], "spamflow-logistic-regression");
    assert_eq!(json["training"]["messages"], 12);
    assert_eq!(
        json["training"]["training_set_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    let classify = spamctl()
        .args(["classify", "--model"])
        .arg(&model)
        .arg(dir.join("spam/spam-0.eml"))
        .output()
        .unwrap();
    assert!(
        classify.status.success(),
        "{}",
        String::from_utf8_lossy(&classify.stderr)
    );
    let stdout = String::from_utf8_lossy(&classify.stdout);
    assert!(stdout.contains("spam (spam probability"), "{stdout}");
    assert!(stdout.contains("pushed toward spam:"), "{stdout}");
    assert!(stdout.contains("pushed toward ham:"), "{stdout}");
}

#[test]
fn eval_report_writes_markdown_and_plots() {
    let corpus = corpus();
    let dir = ScratchDir::new("report-cli");
    let output = spamctl()
        .args(["eval", "--split", "all", "--spam"])
        .arg(corpus.join("spam/spam-1"))
        .arg("--ham")
        .arg(corpus.join("ham/hard-ham-1"))
        .arg("--report")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("spam recall at ham FPR 0.1%"), "{stdout}");
    assert!(last_line(&output.stdout).starts_with("summary messages="));
    let markdown = std::fs::read_to_string(dir.join("evaluation.md")).unwrap();
    assert!(markdown.contains("| spamflow |"), "{markdown}");
    assert!(dir.join("roc.png").is_file());
    assert!(dir.join("precision-recall.png").is_file());
}

#[test]
fn eval_scores_list_every_message() {
    let corpus = corpus();
    let dir = ScratchDir::new("scores-cli");
    let scores = dir.join("scores.tsv");
    let paths = |command: &mut Command| {
        command
            .args(["eval", "--split", "all", "--spam"])
            .arg(corpus.join("spam/spam-1"))
            .arg("--ham")
            .arg(corpus.join("ham/hard-ham-1"));
    };
    let mut eval = spamctl();
    paths(&mut eval);
    let output = eval
        .arg("--json")
        .arg("--scores")
        .arg(&scores)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let text = std::fs::read_to_string(&scores).unwrap();
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| line.split('\t').collect())
        .collect();
    assert_eq!(rows.len() as u64, summary["messages"].as_u64().unwrap());
    assert!(
        rows.iter()
            .all(|row| row.len() == 5 && row[0] == "spamflow")
    );
    let count = |label: &str, verdict: &str| {
        rows.iter()
            .filter(|row| row[2] == label && row[4] == verdict)
            .count() as u64
    };
    let confusion = &summary["confusion"];
    assert_eq!(
        count("spam", "spam"),
        confusion["true_positives"].as_u64().unwrap()
    );
    assert_eq!(
        count("ham", "spam"),
        confusion["false_positives"].as_u64().unwrap()
    );
    assert_eq!(
        count("spam", "ham"),
        confusion["false_negatives"].as_u64().unwrap()
    );

    // `--scores` may name a peers file of the same run: it is read before it is written.
    let mut again = spamctl();
    paths(&mut again);
    let output = again
        .arg("--report")
        .arg(dir.path())
        .arg("--peers")
        .arg(&scores)
        .arg("--scores")
        .arg(&scores)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // The file reads back as a peer of a report.
    let mut report = spamctl();
    paths(&mut report);
    let output = report
        .arg("--report")
        .arg(dir.path())
        .arg("--peers")
        .arg(&scores)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let markdown = std::fs::read_to_string(dir.join("evaluation.md")).unwrap();
    let version = summary["model_version"].as_str().unwrap();
    let rows = format!("| spamflow | {version} |");
    assert_eq!(markdown.matches(&rows).count(), 2, "{markdown}");
    // The same model twice: the headings also give the row.
    for row in [1, 2] {
        let heading = format!("## Confusion matrix: spamflow ({version}, row {row})");
        assert!(markdown.contains(&heading), "{markdown}");
    }
}

#[test]
fn known_spam_decides_by_train_fingerprints() {
    let dir = ScratchDir::new("known-spam");
    let body = |topic: &str| {
        format!(
            "Hello team,\n\nthe {topic} review moves to Thursday at ten in the small meeting \
             room. Please bring the notes from last week and the updated schedule.\n"
        )
    };
    let message = |subject: &str, topic: &str| {
        format!(
            "From: pat@example.org\nSubject: {subject}\n\n{}",
            body(topic)
        )
    };
    // The split follows the name: a, c and d are in TRAIN, b, e and i in TEST.
    let files = [
        ("spam", "a.txt", message("review", "budget")),
        ("spam", "b.txt", message("review moved", "budget")),
        ("spam", "c.txt", message("review", "design")),
        ("ham", "d.txt", message("review", "design")),
        ("spam", "e.txt", message("review moved", "design")),
        ("ham", "i.txt", message("lunch", "lunch")),
    ];
    for (class, name, text) in &files {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        std::fs::write(dir.join(class).join(name), text).unwrap();
    }
    let scores = dir.join("scores.tsv");
    let eval = |extra: &[&str]| {
        let output = spamctl()
            .args(["eval", "--json", "--spam"])
            .arg(dir.join("spam"))
            .arg("--ham")
            .arg(dir.join("ham"))
            .args(extra)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let model_alone = eval(&[]);
    let combined = eval(&["--known-spam", "--scores", scores.to_str().unwrap()]);

    // b.txt repeats the body of TRAIN spam a.txt. e.txt repeats that of c.txt, which TRAIN ham
    // d.txt shares, so its fingerprints are overridden.
    assert_eq!(combined["known_spam"]["spam_messages"], 2);
    assert_eq!(combined["known_spam"]["verdicts_changed"], 1);
    let caught = |summary: &serde_json::Value| summary["confusion"]["true_positives"].as_u64();
    assert_eq!(caught(&combined), caught(&model_alone).map(|n| n + 1));
    let text = std::fs::read_to_string(&scores).unwrap();
    let row = |name: &str| {
        text.lines()
            .find(|line| line.split('\t').nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no row for {name} in {text}"))
            .to_owned()
    };
    assert!(row("b.txt").ends_with("\t1.000000\tspam"), "{text}");
    assert!(row("e.txt").ends_with("\tham"), "{text}");

    // The split is checked before the model is read.
    let output = spamctl()
        .args(["eval", "--known-spam", "--split", "all", "--model"])
        .arg(dir.join("missing-model.json"))
        .arg("--spam")
        .arg(dir.join("spam"))
        .arg("--ham")
        .arg(dir.join("ham"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--known-spam") && stderr.contains("--split test"),
        "{stderr}"
    );

    let output = spamctl()
        .args(["dev", "--known-spam", "--split", "train", "--spam"])
        .arg(dir.join("spam"))
        .arg("--ham")
        .arg(dir.join("ham"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not --split train"));

    // A corpus without TRAIN messages has no known spam.
    for name in ["a.txt", "c.txt"] {
        std::fs::remove_file(dir.join("spam").join(name)).unwrap();
    }
    std::fs::remove_file(dir.join("ham").join("d.txt")).unwrap();
    let test_only = eval(&["--known-spam"]);
    assert_eq!(test_only["known_spam"]["spam_messages"], 0);
    assert_eq!(test_only["known_spam"]["verdicts_changed"], 0);
}

#[test]
fn tokens_prints_one_line_per_message() {
    let dir = ScratchDir::new("tokens");
    std::fs::create_dir_all(dir.join("spam")).unwrap();
    std::fs::create_dir_all(dir.join("ham")).unwrap();
    let spam =
        "From: deals@shop.example\nTo: undisclosed-recipients:;\nSubject: win cash\n\nclaim now\n";
    std::fs::write(dir.join("spam/a.eml"), spam).unwrap();
    std::fs::write(
        dir.join("ham/b.eml"),
        "Subject: notes\n\nthe build passed\n",
    )
    .unwrap();
    // Not an email: no header block. Training skips it, and so does the dump.
    std::fs::write(dir.join("ham/c.eml"), "\u{0}\u{1}\u{2}").unwrap();

    let output = spamctl()
        .args(["tokens", "--split", "all", "--spam"])
        .arg(dir.join("spam"))
        .arg("--ham")
        .arg(dir.join("ham"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0][..2], ["spam", "a.eml"]);
    assert_eq!(lines[1][..2], ["ham", "b.eml"]);
    // sha256 of the raw message, as `spamctl train` orders its folds by.
    assert_eq!(
        lines[0][2],
        "ca6e6a20a9750e7a25386262293ad466002f6ab438146ada0d74816afaa0c78f"
    );

    let tokens: Vec<&str> = lines[0][3].split(' ').collect();
    assert!(tokens.contains(&"s:win"), "{tokens:?}");
    assert!(tokens.contains(&"h:to:undisclosed"), "{tokens:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("c.eml"));
}

#[test]
fn tokens_without_a_corpus_exits_64() {
    let output = spamctl().args(["tokens"]).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--spam") && stderr.contains("--ham"),
        "{stderr}"
    );
}

#[test]
fn unknown_flag_exits_64() {
    let output = spamctl().args(["eval", "--no-such-flag"]).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--no-such-flag"));
}

#[test]
fn negative_number_names_its_flag() {
    let folder = std::env::temp_dir();
    for flag in [
        "--max-vocabulary",
        "--max-character-grams",
        "--folds",
        "--alpha",
        "--max-ham-fpr",
        "--threshold",
        "--max-iterations",
    ] {
        let output = spamctl()
            .args(["train", "--out", "m.json", flag, "-1", "--spam"])
            .arg(&folder)
            .arg("--ham")
            .arg(&folder)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("invalid value '-1' for '{flag}")),
            "{stderr}"
        );
    }
}

/// Runs `spamctl train` with `flags` on an empty corpus, for flags that fail before training.
fn train_with_flags(flags: &[&str]) -> std::process::Output {
    let folder = std::env::temp_dir();
    spamctl()
        .args(["train", "--out", "m.json"])
        .args(flags)
        .arg("--spam")
        .arg(&folder)
        .arg("--ham")
        .arg(&folder)
        .output()
        .unwrap()
}

#[test]
fn threshold_of_zero_or_one_is_rejected() {
    for value in ["0", "1"] {
        let output = train_with_flags(&["--threshold", value]);
        assert_eq!(output.status.code(), Some(64), "{value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("'--threshold"), "{value}: {stderr}");
        assert!(stderr.contains("outside (0, 1)"), "{value}: {stderr}");
    }
}

#[test]
fn list_mail_threshold_conflicts_with_fixed_threshold() {
    let output = train_with_flags(&["--threshold", "0.5", "--list-mail-threshold", "true"]);
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--list-mail-threshold"), "{stderr}");
}

#[test]
fn partitions_below_one_name_their_flag() {
    for command in ["dev", "create-topics"] {
        let output = spamctl()
            .args([command, "--partitions", "0"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("'--partitions"), "{command}: {stderr}");
        assert!(
            stderr.contains("below the smallest allowed, 1"),
            "{command}: {stderr}"
        );
    }
}

/// Runs spamctl with `args` and its standard output closed before it writes anything, and
/// returns its exit code and standard error.
fn run_with_closed_stdout(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let mut child = spamctl()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn closed_stdout_is_not_an_error() {
    let folder = ScratchDir::new("closed-stdout");
    let (spam, ham) = (folder.join("spam"), folder.join("ham"));
    std::fs::create_dir_all(&spam).unwrap();
    std::fs::create_dir_all(&ham).unwrap();
    let message =
        "Subject: lunch\r\n\r\nShall we meet at noon on Friday for lunch near the office?\r\n";
    std::fs::write(
        spam.join("spam.txt"),
        message.replace("lunch", "cash prize"),
    )
    .unwrap();
    std::fs::write(ham.join("ham.txt"), message).unwrap();

    let text = folder.join("text.txt");
    std::fs::write(&text, "win a cash prize now").unwrap();
    let corpus = [
        "--spam".as_ref(),
        spam.as_os_str(),
        "--ham".as_ref(),
        ham.as_os_str(),
        "--split".as_ref(),
        "all".as_ref(),
    ];

    // `classify` runs without an async runtime, `bench` inside one.
    let classify = [&["classify".as_ref(), "--text".as_ref(), text.as_os_str()][..]].concat();
    let bench = [
        &["bench".as_ref(), "--rounds".as_ref(), "1".as_ref()][..],
        &corpus,
    ]
    .concat();
    for args in [classify, bench] {
        let (code, stderr) = run_with_closed_stdout(&args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn closed_stderr_is_not_an_error() {
    let folder = ScratchDir::new("closed-stderr");
    std::fs::create_dir_all(folder.join("spam")).unwrap();
    std::fs::write(
        folder.join("spam").join("spam.txt"),
        "Subject: cash prize\r\n\r\nClaim your cash prize now.\r\n",
    )
    .unwrap();
    // `tokens` ends with a count on standard error, and a bad flag value fails there too.
    let cases = [
        (
            vec![
                "tokens".into(),
                "--spam".into(),
                folder.join("spam").into_os_string(),
            ],
            0,
        ),
        (
            vec![
                "eval".into(),
                "--spam".into(),
                folder.join("missing").into_os_string(),
            ],
            64,
        ),
    ];
    for (args, code) in cases {
        let mut child = spamctl()
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stderr.take());
        assert_eq!(child.wait().unwrap().code(), Some(code), "{args:?}");
    }
}

#[test]
fn missing_corpus_path_names_fetch_script() {
    let output = spamctl()
        .args([
            "eval",
            "--spam",
            "/nonexistent/spam",
            "--ham",
            "/nonexistent/ham",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--spam")
            && stderr.contains("/nonexistent/spam")
            && stderr.contains("scripts/fetch-corpus"),
        "{stderr}"
    );
}

#[test]
fn tokens_of_unparseable_messages_only_is_an_error() {
    let dir = ScratchDir::new("tokens-junk");
    std::fs::write(dir.join("junk.eml"), [0_u8, 159, 146, 150]).unwrap();
    let output = spamctl()
        .args(["tokens", "--split", "all", "--ham"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("skipping junk.eml"), "{stderr}");
    assert!(stderr.contains("none of the 1 messages parses"), "{stderr}");
}

#[test]
fn feedback_rejects_invalid_file_before_publishing() {
    let dir = ScratchDir::new("feedback-cli");
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.eml");
    std::fs::write(&good, "Subject: hi\n\nlunch at noon?\n").unwrap();
    let binary = dir.join("binary.eml");
    std::fs::write(&binary, b"\x00\x01\x02 not a message").unwrap();
    // No broker listens on this port; the command must fail before it tries one.
    let port = spamflow_testkit::free_port().unwrap();

    let output = spamctl()
        .args(["feedback", "--label", "spam", "--kafka-brokers"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(&good)
        .arg(&binary)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("binary.eml"), "{stderr}");
    assert!(stderr.contains("not a valid RFC 5322 message"), "{stderr}");

    let output = spamctl()
        .args(["feedback", "--label", "maybe"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--label"));

    let output = spamctl()
        .args(["feedback", "--label", "spam", "--mailbox", "a/b"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--mailbox"), "{stderr}");
    assert!(stderr.contains("mailbox/message-id"), "{stderr}");
}

#[test]
fn dev_needs_both_classes() {
    let corpus = corpus();
    let empty = ScratchDir::new("dev-no-spam");
    let output = spamctl()
        .args(["dev", "--metrics-addr", "127.0.0.1:0", "--spam"])
        .arg(empty.path())
        .arg("--ham")
        .arg(corpus.join("ham"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("both classes are needed"), "{stderr}");
}

#[test]
fn bench_json_times_every_stage() {
    let corpus = corpus();
    let output = spamctl()
        .args(["bench", "--json", "--rounds", "1", "--split", "test"])
        .arg("--spam")
        .arg(corpus.join("spam/spam-1"))
        .arg("--ham")
        .arg(corpus.join("ham/hard-ham-1"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let messages = report["corpus_messages"].as_u64().unwrap();
    assert!(messages > 0, "{report}");
    let names: Vec<&str> = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|stage| stage["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "parse",
            "tokenize_and_score",
            "grpc_classify_sequential",
            "grpc_classify_concurrent"
        ]
    );
    for stage in report["stages"].as_array().unwrap() {
        assert_eq!(stage["messages"].as_u64(), Some(messages), "{stage}");
        assert!(stage["median_us"].as_f64().unwrap() > 0.0, "{stage}");
        assert!(
            stage["p99_us"].as_f64().unwrap() >= stage["median_us"].as_f64().unwrap(),
            "{stage}"
        );
    }
    assert!(report["peak_rss_kib"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn bench_rejects_zero_rounds() {
    let output = spamctl()
        .args(["bench", "--rounds", "0", "--spam", "x", "--ham", "y"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--rounds"));
}

#[test]
fn out_of_range_train_flags_exit_64() {
    let cases: [(&[&str], &str); 7] = [
        (&["--folds", "1000"], "above the largest allowed, 100"),
        (&["--folds", "1"], "below the smallest allowed, 2"),
        (&["--alpha", "1e39"], "the positive range of f32"),
        (&["--alpha", "1e-50"], "the positive range of f32"),
        (&["--max-vocabulary", "0"], "'--max-vocabulary"),
        (&["--max-ham-fpr", "1"], "outside [0, 0.5]"),
        (&["--max-iterations", "1e9"], "is not a whole number"),
    ];
    for (flags, expected) in cases {
        let output = train_with_flags(flags);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}

#[test]
fn folds_above_smaller_class_exit_64() {
    let dir = ScratchDir::new("train-folds");
    std::fs::create_dir_all(dir.join("spam")).unwrap();
    std::fs::create_dir_all(dir.join("ham")).unwrap();
    for index in 0..3 {
        std::fs::write(
            dir.join(format!("spam/spam-{index}.eml")),
            format!("Subject: win cash {index}\n\nclaim your prize {index}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("ham/ham-{index}.eml")),
            format!("Subject: notes {index}\n\nthe branch passed {index}\n"),
        )
        .unwrap();
    }
    let output = spamctl()
        .args(["train", "--split", "all", "--folds", "5", "--spam"])
        .arg(dir.join("spam"))
        .arg("--ham")
        .arg(dir.join("ham"))
        .arg("--out")
        .arg(dir.join("model.json"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("--folds 5 is above the 3 messages"),
        "{stderr}"
    );
    assert!(stderr.contains("pass --folds 3 or fewer"), "{stderr}");
}

#[test]
fn bad_dev_and_topic_flags_exit_64() {
    let cases: [(&[&str], &str); 10] = [
        (
            &["dev", "--partitions", "100000"],
            "above the largest allowed, 1024",
        ),
        (&["dev", "--timeout-secs", "0"], "'--timeout-secs"),
        (
            &["dev", "--redis-url", "nope"],
            "--redis-url (SPAMFLOW_REDIS_URL)",
        ),
        (
            &["create-topics", "--partitions", "100000"],
            "above the largest allowed, 1024",
        ),
        (
            &["create-topics", "--topic-prefix", "bad prefix!"],
            "ASCII letters",
        ),
        (
            &["create-topics", "--kafka-brokers", ""],
            "the broker list is empty",
        ),
        (
            &["create-topics", "--kafka-brokers", "kafka"],
            "has no port",
        ),
        (
            &["create-topics", "--kafka-config", "foo"],
            "'--kafka-config",
        ),
        (
            &["create-topics", "--kafka-config", "foo"],
            "environment variable SPAMFLOW_KAFKA_CONFIG",
        ),
        (
            &["create-topics", "--partitions", "-1"],
            "below the smallest allowed, 1",
        ),
    ];
    for (args, expected) in cases {
        let output = spamctl()
            .args(args)
            .env_remove("SPAMFLOW_KAFKA_BROKERS")
            .env_remove("SPAMFLOW_TOPIC_PREFIX")
            .env_remove("SPAMFLOW_KAFKA_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
