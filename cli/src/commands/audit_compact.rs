//! `agentpolicy audit compact LOG (--policy PATH | --table FILE) [--now TIME] [--key
//! KEYFILE] [--archive FILE] [--dry-run] [--force]` and `agentpolicy audit keygen OUT`.
//!
//! Compaction itself is the runtime's `audit::compact` (in memory); this module reads
//! the log, the schedule and the key, and replaces the file crash-safely: the removed
//! lines are appended to the archive and synced first, then the new log is written to a
//! temp file in the same directory, synced, renamed over the log, and the directory
//! synced. A crash at any point leaves the old log or the new one, never a mix; at worst
//! the archive holds lines a retry appends again.
//!
//! Exit codes: 0 compacted (or nothing to remove, or a dry run), 1 refused (the log does
//! not verify, may still be open, or the policy sets no retention), 2 usage or IO error.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use agentpolicy_runtime::audit::{
    CompactConfig, CompactError, Compaction, PublicKey, SigningKey, compact, format_time,
    parse_time,
};

use super::output::Format;
use super::table_input::load_table_or_policy;
use super::{EXIT_FAILURE, EXIT_USAGE};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("schedule").required(true).args(["policy", "table"])))]
pub struct CompactArgs {
    /// The audit log (JSON lines). It is replaced by the compacted log.
    pub log: PathBuf,
    /// The policy whose `retain audit` schedule applies (a file or a directory).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// A decision table from `agentpolicy build` whose schedule applies.
    #[arg(long)]
    pub table: Option<PathBuf>,
    /// Count retention from this time instead of the system clock: RFC 3339, a date, or
    /// ms since the epoch.
    #[arg(long, value_parser = parse_now)]
    pub now: Option<i64>,
    /// The secret key that signs checkpoints (from `agentpolicy audit keygen`); required
    /// unless `--dry-run`.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Append the removed lines to this file (created if missing) before the log is
    /// replaced, so they can be kept elsewhere.
    #[arg(long)]
    pub archive: Option<PathBuf>,
    /// Report what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Compact a log whose last record is not `close` (its writer crashed). Never use it
    /// while a writer may still have the log open.
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Where to write the secret key; the public key goes to the same path plus `.pub`.
    /// Existing files are never overwritten.
    pub out: PathBuf,
}

fn parse_now(s: &str) -> Result<i64, String> {
    parse_time(s).ok_or_else(|| {
        "expected an RFC 3339 time (2026-11-25T09:00:00Z), a date (2026-11-25) or ms since the epoch".into()
    })
}

fn usage(message: String) -> u8 {
    eprintln!("error: {message}");
    EXIT_USAGE
}

pub fn run_keygen(args: &KeygenArgs) -> u8 {
    let mut seed = [0u8; 32];
    if let Err(e) = getrandom::fill(&mut seed) {
        return usage(format!("cannot get random bytes from the system: {e}"));
    }
    let key = SigningKey::from_seed(seed);
    let public_path = pub_path(&args.out);
    for path in [&args.out, &public_path] {
        if path.exists() {
            return usage(format!(
                "`{}` exists; keygen never overwrites a key (move it away, or pick another path)",
                path.display()
            ));
        }
    }
    if let Err(e) = write_secret(&args.out, &key.to_text()) {
        return usage(format!("cannot write `{}`: {e}", args.out.display()));
    }
    let public = key.public();
    if let Err(e) = std::fs::write(&public_path, format!("{public}\n")) {
        return usage(format!("cannot write `{}`: {e}", public_path.display()));
    }
    println!(
        "wrote {} (secret: keep it where only the operator who compacts can read it)",
        args.out.display()
    );
    println!(
        "wrote {} (public: give it to whoever verifies the log)",
        public_path.display()
    );
    println!("public key: {public}");
    0
}

fn pub_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Creates the secret key file readable by its owner only.
fn write_secret(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// A public key given as `ed25519:HEX` or as a file holding that.
pub fn read_public_key(arg: &str) -> Result<PublicKey, String> {
    if arg.trim_start().starts_with("ed25519:") {
        return arg.parse().map_err(|e| format!("--key: {e}"));
    }
    let text = std::fs::read_to_string(arg).map_err(|e| format!("cannot read `{arg}`: {e}"))?;
    text.parse().map_err(|e| format!("`{arg}`: {e}"))
}

fn read_signing_key(path: &Path) -> Result<SigningKey, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    text.parse()
        .map_err(|e| format!("`{}`: {e}", path.display()))
}

pub fn run_compact(args: &CompactArgs) -> u8 {
    let Some(schedule_path) = args.policy.as_ref().or(args.table.as_ref()) else {
        return usage("pass --policy PATH or --table FILE: the retention schedule".into());
    };
    let key = match (&args.key, args.dry_run) {
        (Some(path), _) => match read_signing_key(path) {
            Ok(k) => k,
            Err(e) => return usage(e),
        },
        // A dry run writes no checkpoint, so what signs the ones it describes does not
        // matter; a fixed key keeps its output the same from run to run.
        (None, true) => SigningKey::from_seed([0; 32]),
        (None, false) => {
            return usage(
                "compaction signs its checkpoints: pass --key KEYFILE (make one with `agentpolicy audit keygen KEYFILE`), or --dry-run to see what would be removed".into(),
            );
        }
    };
    let table = match load_table_or_policy(schedule_path) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let input = match std::fs::read(&args.log) {
        Ok(b) => b,
        Err(e) => return usage(format!("cannot read `{}`: {e}", args.log.display())),
    };
    let now_ms = match args.now {
        Some(t) => t,
        None => match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(_) => return usage("the system clock is before 1970; pass --now".into()),
        },
    };
    let data = table.data();
    let cfg = CompactConfig {
        retention: &data.retention,
        tiers: &data.tiers,
        table: table.source_hash(),
        now_ms,
        force: args.force,
    };
    let result = match compact(&input, &cfg, &key) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot compact `{}`: {e}", args.log.display());
            if let CompactError::NotSealed = e {
                eprintln!(
                    "help: stop the engine (it writes `close`), or pass --force if its writer crashed"
                );
            }
            if let CompactError::NotIntact(_) = e {
                eprintln!(
                    "help: run `agentpolicy audit verify {}`",
                    args.log.display()
                );
            }
            return EXIT_FAILURE;
        }
    };
    let written = if result.runs.is_empty() || args.dry_run {
        None
    } else {
        match replace(&args.log, &input, &result, args.archive.as_deref()) {
            Ok(()) => Some(()),
            Err(e) => return usage(e),
        }
    };
    match args.format {
        Format::Human => print_human(args, &result, now_ms, &key, written.is_some()),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json(args, &result, now_ms, &key, written.is_some()))
                .unwrap_or_default()
        ),
    }
    0
}

/// Archive first, then the temp file, rename, and directory sync.
fn replace(
    log: &Path,
    input: &[u8],
    result: &Compaction,
    archive: Option<&Path>,
) -> Result<(), String> {
    if let Some(path) = archive {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open the archive `{}`: {e}", path.display()))?;
        file.write_all(&result.removed_lines)
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write the archive `{}`: {e}", path.display()))?;
    }
    let dir = match log.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = log
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audit".into());
    let temp = dir.join(format!(".{name}.compact-{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(&result.log)?;
        file.sync_all()?;
        // A writer that appended since we read the log would lose its records.
        if std::fs::metadata(log)?.len() != input.len() as u64 {
            return Err(std::io::Error::other(
                "the log changed while it was being compacted (a writer has it open); nothing was replaced",
            ));
        }
        std::fs::rename(&temp, log)?;
        File::open(&dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("cannot replace `{}`: {e}", log.display())
    })
}

fn kinds_text(kinds: &std::collections::BTreeMap<String, u64>) -> String {
    kinds
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_human(args: &CompactArgs, r: &Compaction, now_ms: i64, key: &SigningKey, written: bool) {
    let log = args.log.display();
    let now = format_time(now_ms);
    if r.runs.is_empty() {
        println!(
            "nothing to remove: {log}: no record is past retention at {now}; the log is unchanged"
        );
        return;
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "{}{log}: {verb} {} record(s) in {} run(s) at {now}; {} records before, {} after",
        if args.dry_run { "dry run: " } else { "" },
        r.removed(),
        r.runs.len(),
        r.records_before,
        r.records_after
    );
    for run in &r.runs {
        let c = &run.checkpoint;
        println!(
            "  records {} to {} ({} to {}): {}; under `{}`",
            c.from_seq,
            c.to_seq,
            format_time(c.oldest_ms),
            format_time(c.youngest_ms),
            kinds_text(&c.kinds),
            c.rule
        );
    }
    if written {
        println!("checkpoints signed by {}", key.public());
        if let Some(a) = &args.archive {
            println!(
                "archive: {} (+{} bytes)",
                a.display(),
                r.removed_lines.len()
            );
        }
    } else if args.dry_run {
        println!("dry run: nothing was changed");
    }
}

fn json(
    args: &CompactArgs,
    r: &Compaction,
    now_ms: i64,
    key: &SigningKey,
    written: bool,
) -> serde_json::Value {
    serde_json::json!({
        "log": args.log.display().to_string(),
        "now": format_time(now_ms),
        "dry_run": args.dry_run,
        "changed": written,
        "records_before": r.records_before,
        "records_after": r.records_after,
        "removed": r.removed(),
        "key": written.then(|| key.public().to_string()),
        "archive": args.archive.as_ref().filter(|_| written).map(|a| a.display().to_string()),
        "runs": r.runs.iter().map(|run| {
            let c = &run.checkpoint;
            serde_json::json!({
                "from_seq": c.from_seq,
                "to_seq": c.to_seq,
                "removed": c.removed,
                "kinds": c.kinds,
                "oldest": format_time(c.oldest_ms),
                "youngest": format_time(c.youngest_ms),
                "rule": c.rule,
                "digest": c.digest.to_string(),
            })
        }).collect::<Vec<_>>(),
    })
}
