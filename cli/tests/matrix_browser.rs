//! The HTML matrix in a real browser: headless Chromium (`/usr/bin/chromium`, Debian's
//! `chromium` package, which `.ci/run` installs) renders the page of an example; every
//! agent and tool name of the policy must be in the rendered DOM, and a screenshot must be
//! a real PNG of the requested size. Each browser run has a time limit, so a hung
//! browser fails the test instead of hanging CI.

#![expect(clippy::expect_used, reason = "test helpers fail loudly")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const BROWSER_TIME_LIMIT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "agentpolicy-matrix-browser-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Runs headless Chromium on `page` with `extra` arguments and a fresh profile; returns
/// its standard output. Fails the test when it runs past the time limit or fails.
fn chromium(work: &Path, page: &Path, extra: &[String]) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's `chromium` package (`apt-get install -y chromium`); .ci/run does"
    );
    let profile = work.join(format!("profile-{}", extra.len()));
    let stdout_path = work.join("chromium.stdout");
    let stdout_file = std::fs::File::create(&stdout_path).expect("stdout file");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(stdout_file)
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break Some(status);
        }
        if started.elapsed() > BROWSER_TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let status = status.expect("chromium ran past its time limit and was killed");
    assert!(status.success(), "chromium failed: {status}");
    std::fs::read_to_string(&stdout_path).expect("chromium output")
}

/// The agent and tool names of a policy, from its compiled table.
fn agent_and_tool_names(policy: &str) -> (Vec<String>, Vec<String>) {
    let o = Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
        .current_dir(repo_root())
        .args(["build", policy, "--json"])
        .output()
        .expect("run agentpolicy build");
    assert_eq!(o.status.code(), Some(0));
    let table: serde_json::Value = serde_json::from_slice(&o.stdout).expect("the table is JSON");
    let names = |key: &str| -> Vec<String> {
        table[key]
            .as_array()
            .expect("array")
            .iter()
            .map(|x| x["name"].as_str().expect("name").to_string())
            .collect()
    };
    (names("agents"), names("tools"))
}

#[test]
fn the_html_matrix_renders_in_chromium() {
    let work = temp_dir("law_firm");
    let page = work.join("matrix.html");
    let policy = "examples/law_firm";
    let o = Command::new(env!("CARGO_BIN_EXE_agentpolicy"))
        .current_dir(repo_root())
        .args(["matrix", policy, "--format", "html", "--output"])
        .arg(&page)
        .output()
        .expect("run agentpolicy matrix");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let dom = chromium(&work, &page, &["--dump-dom".to_string()]);
    assert!(dom.contains("Access-control matrix"), "{dom}");
    // What a signer needs besides the grid renders too.
    for heading in [
        "Tier order",
        "Audit retention",
        "Assumptions the proofs rest on",
        "Proofs",
        "Sign-off",
    ] {
        assert!(
            dom.contains(&format!("<h2>{heading}</h2>")),
            "no `{heading}` section in the rendered page"
        );
    }
    assert!(
        dom.contains("never billing calls transfer_from_trust when amount &gt; trust_transfer_cap"),
        "the assert is quoted whole"
    );
    let (agents, tools) = agent_and_tool_names(policy);
    assert!(!agents.is_empty() && !tools.is_empty());
    for name in agents.iter().chain(&tools) {
        assert!(
            dom.contains(&format!("<code>{name}</code>")),
            "`{name}` is not in the rendered page"
        );
    }

    let shot = work.join("matrix.png");
    chromium(
        &work,
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,1000".to_string(),
        ],
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert_eq!(
        png.get(..8),
        Some(&b"\x89PNG\r\n\x1a\n"[..]),
        "not a PNG file"
    );
    // The IHDR chunk: the image has the window's size.
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().expect("4 bytes"));
    assert_eq!(&png[12..16], b"IHDR");
    assert_eq!((be(16), be(20)), (1400, 1000));
    // A blank page compresses to a few kilobytes; a rendered matrix does not.
    assert!(
        png.len() > 30_000,
        "suspiciously small screenshot: {} bytes",
        png.len()
    );
}
