//! [`AuditLog`]: the append-only, hash-chained writer. It owns the chain's head (the
//! next sequence number and the previous hash) and the file; it must never acknowledge
//! a record before the configured [`Durability`] holds for it, and never write after a
//! failed write (the chain would have a hole): once a write fails, every later append
//! fails too, and the engine denies every call.
//!
//! Appends are group-committed: a caller queues its line under a short lock, then waits.
//! The first waiter becomes the leader, writes everything queued and syncs once, while
//! later records queue behind it for the next leader. Concurrent callers thus share one
//! fsync without a background thread.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::record::{GENESIS, Record, RecordKind, decode, encode};
use crate::engine::Clock;
use crate::hash::ContentHash;

/// When an appended record counts as written.
///
/// ```
/// use std::time::Duration;
/// use agentpolicy_runtime::audit::Durability;
/// assert_eq!(Durability::default(), Durability::Fsync { linger: Duration::ZERO });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Acknowledge a record only after `fsync` (`fdatasync`) returned for it: it
    /// survives a crash of the process, the kernel or the power. Callers appending at
    /// the same time share one fsync. `linger` makes the flushing caller wait that long
    /// before writing, to gather more records into the fsync: fewer fsyncs and more
    /// throughput under load, at up to `linger` more latency per call. Zero (the
    /// default) batches only what queued while the previous fsync ran.
    Fsync { linger: Duration },
    /// Acknowledge a record once it is written to the operating system: it survives
    /// the process being killed (SIGKILL, panic, OOM), but a power loss or kernel crash
    /// can lose records written in the last `fsync_interval`. Fsync runs when a flush
    /// finds the last one older than the interval, on [`AuditLog::sync`] (the engine's
    /// background thread calls it every poll) and on close. Much faster when each call
    /// waits for its own record; use only where the machine's own crash is covered
    /// otherwise (e.g. a replicated disk).
    OsBuffered { fsync_interval: Duration },
}

impl Default for Durability {
    fn default() -> Self {
        Durability::Fsync {
            linger: Duration::ZERO,
        }
    }
}

/// Where the log's bytes go. [`File`] is the usual sink; an embedder can supply another
/// (a replicated store), and tests supply failing ones.
///
/// ```
/// use std::io;
/// use std::sync::{Arc, Mutex};
/// use agentpolicy_runtime::audit::{AuditLog, Durability, GENESIS, LogSink, Record, RecordKind, verify};
///
/// #[derive(Debug, Clone, Default)]
/// struct Memory(Arc<Mutex<Vec<u8>>>);
/// impl LogSink for Memory {
///     fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
///         self.0.lock().unwrap().extend_from_slice(bytes);
///         Ok(())
///     }
///     fn sync(&mut self) -> io::Result<()> { Ok(()) }
/// }
///
/// let memory = Memory::default();
/// let log = AuditLog::with_sink(Box::new(memory.clone()), Durability::default(), 1, GENESIS);
/// log.append(Record::new(RecordKind::Control, 0)).unwrap();
/// let bytes = memory.0.lock().unwrap().clone();
/// assert!(verify(bytes.as_slice()).unwrap().is_intact());
/// ```
pub trait LogSink: Send + fmt::Debug {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything written so far durable.
    fn sync(&mut self) -> io::Result<()>;
}

impl LogSink for File {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
}

/// A record's place in the chain, returned once the record is durable as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    pub seq: u64,
    pub hash: ContentHash,
}

/// Why the log could not take a record; the engine turns it into a Deny (`internal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditError(pub String);

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "audit log: {}", self.0)
    }
}

impl std::error::Error for AuditError {}

struct State {
    sink: Option<Box<dyn LogSink>>,
    /// Lines queued and not yet handed to the sink.
    buf: Vec<u8>,
    next_seq: u64,
    prev: ContentHash,
    queued_upto: u64,
    written_upto: u64,
    durable_upto: u64,
    flushing: bool,
    failed: Option<String>,
    closed: bool,
    last_sync: Instant,
}

/// The append-only, hash-chained audit log.
///
/// ```
/// use agentpolicy_runtime::audit::{AuditLog, Durability, Record, RecordKind, verify};
/// use agentpolicy_runtime::engine::ManualClock;
///
/// let dir = std::env::temp_dir().join(format!("ap-doc-log-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("audit.jsonl");
/// # let _ = std::fs::remove_file(&path);
/// let clock = ManualClock::new(1_000);
/// let log = AuditLog::open(&path, Durability::default(), &clock).unwrap();
/// let ack = log.append(Record::new(RecordKind::Control, 1_000).with_detail("hello")).unwrap();
/// assert_eq!(ack.seq, 2, "record 1 is the `open` record");
/// log.close(2_000).unwrap();
///
/// let report = verify(std::io::BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
/// assert!(report.is_intact() && report.sealed);
/// assert_eq!(report.last_seq, Some(3));
/// ```
pub struct AuditLog {
    state: Mutex<State>,
    timings: FlushTimings,
    flushed: Condvar,
    durability: Durability,
    path: Option<PathBuf>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("durability", &self.durability)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (or creates) the log at `path` for appending, and appends an `open` record.
    /// An existing log continues its
    /// chain from its last complete record. A torn tail (a partly written last line, left
    /// by a crash mid-write; never acknowledged) is cut off and a `recovered` record says
    /// so. A last complete record that does not decode or match its hash is refused:
    /// appending would extend a chain that fails verification.
    pub fn open(path: &Path, durability: Durability, clock: &dyn Clock) -> io::Result<AuditLog> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut next_seq = 1;
        let mut prev = GENESIS;
        let mut torn: Option<(u64, ContentHash)> = None;
        if file.metadata()?.is_file() {
            let tail = read_tail(&mut file)?;
            if let Some(line) = &tail.last_line {
                let decoded = decode(line).map_err(|why| damaged(path, &why))?;
                if decoded.stored != decoded.computed {
                    return Err(damaged(path, "its content does not match its hash"));
                }
                next_seq = decoded.record.seq.saturating_add(1);
                prev = decoded.stored;
            }
            if !tail.torn.is_empty() {
                file.set_len(tail.complete_len)?;
                file.sync_all()?;
                torn = Some((tail.torn.len() as u64, ContentHash::of(&tail.torn)));
            }
        }
        let log = AuditLog::with_sink(Box::new(file), durability, next_seq, prev);
        let log = AuditLog {
            path: Some(path.to_path_buf()),
            ..log
        };
        if let Some((bytes, hash)) = torn {
            let record = Record::new(RecordKind::Recovered, clock.now_ms()).with_detail(format!(
                "removed a torn tail of {bytes} bytes ({hash}) left by an interrupted write; it was never acknowledged"
            ));
            log.append(record)
                .map_err(|e| io::Error::other(e.to_string()))?;
        }
        let record = Record::new(RecordKind::Open, clock.now_ms())
            .with_detail(format!("opened by process {}", std::process::id()));
        log.append(record)
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(log)
    }

    /// A log writing to any sink, continuing a chain whose next record is `next_seq` and
    /// whose last hash is `prev` (1 and [`super::GENESIS`] for a new log).
    pub fn with_sink(
        sink: Box<dyn LogSink>,
        durability: Durability,
        next_seq: u64,
        prev: ContentHash,
    ) -> AuditLog {
        let last = next_seq.saturating_sub(1);
        AuditLog {
            state: Mutex::new(State {
                sink: Some(sink),
                buf: Vec::new(),
                next_seq,
                prev,
                queued_upto: last,
                written_upto: last,
                durable_upto: last,
                flushing: false,
                failed: None,
                closed: false,
                last_sync: Instant::now(),
            }),
            flushed: Condvar::new(),
            timings: FlushTimings::default(),
            durability,
            path: None,
        }
    }

    pub fn durability(&self) -> Durability {
        self.durability
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Appends a record (its `seq`, `prev` and `hash` are set here) and returns once it
    /// is durable as configured.
    pub fn append(&self, record: Record) -> Result<Ack, AuditError> {
        let ack = self.enqueue(record)?;
        self.wait(ack)
    }

    /// Puts a record in the chain without waiting: the order of records is the order of
    /// `enqueue` calls. It is not acknowledged until [`AuditLog::wait`] returns.
    pub fn enqueue(&self, mut record: Record) -> Result<Ack, AuditError> {
        let mut st = self.lock()?;
        if let Some(why) = &st.failed {
            return Err(AuditError(format!("an earlier write failed: {why}")));
        }
        if st.closed {
            return Err(AuditError("the log is closed".into()));
        }
        record.seq = st.next_seq;
        record.prev = st.prev;
        let (line, hash) =
            encode(&record).map_err(|e| AuditError(format!("cannot encode a record: {e}")))?;
        st.buf.extend_from_slice(&line);
        st.queued_upto = record.seq;
        st.next_seq += 1;
        st.prev = hash;
        Ok(Ack {
            seq: record.seq,
            hash,
        })
    }

    /// Waits until an enqueued record is durable as configured, flushing if nobody is.
    pub fn wait(&self, ack: Ack) -> Result<Ack, AuditError> {
        let mut st = self.lock()?;
        loop {
            let acked = match self.durability {
                Durability::Fsync { .. } => st.durable_upto,
                Durability::OsBuffered { .. } => st.written_upto,
            };
            if acked >= ack.seq {
                return Ok(ack);
            }
            if let Some(why) = &st.failed {
                return Err(AuditError(format!("write failed: {why}")));
            }
            if st.flushing {
                st = self
                    .flushed
                    .wait(st)
                    .map_err(|_| AuditError("a writer panicked".into()))?;
                continue;
            }
            st = self.flush_locked(st, false)?;
        }
    }

    /// Writes everything queued and fsyncs, whatever the durability.
    pub fn sync(&self) -> Result<(), AuditError> {
        let mut st = self.lock()?;
        loop {
            if let Some(why) = &st.failed {
                return Err(AuditError(format!("write failed: {why}")));
            }
            if !st.flushing {
                break;
            }
            st = self
                .flushed
                .wait(st)
                .map_err(|_| AuditError("a writer panicked".into()))?;
        }
        let st = self.flush_locked(st, true)?;
        match &st.failed {
            Some(why) => Err(AuditError(format!("write failed: {why}"))),
            None => Ok(()),
        }
    }

    /// Appends a `close` record, syncs, and refuses further appends. A log closed this
    /// way verifies as sealed.
    pub fn close(&self, now_ms: i64) -> Result<Ack, AuditError> {
        let ack = self.enqueue(Record::new(RecordKind::Close, now_ms))?;
        self.lock()?.closed = true;
        self.sync()?;
        Ok(ack)
    }

    /// The last record queued: its sequence number and hash (0 and the genesis hash for
    /// an empty log). Keep a copy elsewhere to detect later truncation of the log.
    pub fn head(&self) -> Result<Ack, AuditError> {
        let st = self.lock()?;
        Ok(Ack {
            seq: st.next_seq - 1,
            hash: st.prev,
        })
    }

    /// How long the log's flushes (a `write` of the queued records, and an fsync when
    /// one is due) took, and how many failed: for a service's metrics.
    pub fn flush_stats(&self) -> FlushStats {
        self.timings.snapshot()
    }

    /// The sequence number up to which records are acknowledged (durable as the log's
    /// [`Durability`] says): what a follower of the log may act on.
    pub fn acknowledged(&self) -> Result<u64, AuditError> {
        let st = self.lock()?;
        Ok(match self.durability {
            Durability::Fsync { .. } => st.durable_upto,
            Durability::OsBuffered { .. } => st.written_upto,
        })
    }

    /// Whether a write has failed (the log takes no more records).
    pub fn failed(&self) -> Option<String> {
        self.lock().ok().and_then(|st| st.failed.clone())
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, AuditError> {
        self.state
            .lock()
            .map_err(|_| AuditError("a writer panicked while holding the log".into()))
    }

    /// Becomes the leader: writes the queue (after the linger), syncs if due, and wakes
    /// the waiters. Called with `flushing` false.
    fn flush_locked<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        force_sync: bool,
    ) -> Result<MutexGuard<'a, State>, AuditError> {
        st.flushing = true;
        if let Durability::Fsync { linger } = self.durability
            && !linger.is_zero()
            && !force_sync
        {
            drop(st);
            std::thread::sleep(linger);
            st = self.lock()?;
        }
        let buf = std::mem::take(&mut st.buf);
        let upto = st.queued_upto;
        let sync = force_sync
            || match self.durability {
                Durability::Fsync { .. } => true,
                Durability::OsBuffered { fsync_interval } => {
                    st.last_sync.elapsed() >= fsync_interval
                }
            };
        let Some(mut sink) = st.sink.take() else {
            st.flushing = false;
            st.failed = Some("the log's sink is gone".into());
            self.flushed.notify_all();
            return Ok(st);
        };
        drop(st);
        let started = Instant::now();
        let mut result = if buf.is_empty() {
            Ok(())
        } else {
            sink.write_all(&buf)
        };
        if result.is_ok() && sync {
            result = sink.sync();
        }
        if !buf.is_empty() || sync {
            self.timings.add(started.elapsed(), result.is_err());
        }
        let mut st = self.lock()?;
        st.sink = Some(sink);
        st.flushing = false;
        match result {
            Ok(()) => {
                st.written_upto = upto;
                if sync {
                    st.durable_upto = upto;
                    st.last_sync = Instant::now();
                }
            }
            Err(e) => st.failed = Some(e.to_string()),
        }
        self.flushed.notify_all();
        Ok(st)
    }
}

/// Upper bounds of the flush-time histogram's buckets, in microseconds.
pub const FLUSH_BUCKETS_US: [u64; 10] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000,
];

/// Flush times as a histogram: counts per bucket of [`FLUSH_BUCKETS_US`] (cumulative,
/// as Prometheus has them), their sum and count, and the failed flushes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushStats {
    pub buckets: [u64; FLUSH_BUCKETS_US.len()],
    pub count: u64,
    pub sum_us: u64,
    pub failed: u64,
}

#[derive(Debug, Default)]
struct FlushTimings {
    buckets: [std::sync::atomic::AtomicU64; FLUSH_BUCKETS_US.len()],
    count: std::sync::atomic::AtomicU64,
    sum_us: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
}

impl FlushTimings {
    fn add(&self, took: Duration, failed: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        for (bucket, bound) in self.buckets.iter().zip(FLUSH_BUCKETS_US) {
            if us <= bound {
                bucket.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        if failed {
            self.failed.fetch_add(1, Relaxed);
        }
    }

    fn snapshot(&self) -> FlushStats {
        use std::sync::atomic::Ordering::Relaxed;
        FlushStats {
            buckets: std::array::from_fn(|i| self.buckets.get(i).map_or(0, |b| b.load(Relaxed))),
            count: self.count.load(Relaxed),
            sum_us: self.sum_us.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}

fn damaged(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the last complete record of `{}` is damaged ({why}); run `agentpolicy audit verify` on it, and start a new log rather than extend a broken chain",
            path.display()
        ),
    )
}

/// The end of a log file: its last complete line (without `\n`), the length up to and
/// including that line's `\n`, and the bytes after it (a torn tail).
struct Tail {
    last_line: Option<Vec<u8>>,
    complete_len: u64,
    torn: Vec<u8>,
}

fn read_tail(file: &mut File) -> io::Result<Tail> {
    const CHUNK: u64 = 64 * 1024;
    let len = file.seek(SeekFrom::End(0))?;
    let mut start = len;
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        // `bytes` holds the file from `start` to the end.
        let newlines: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .rev()
            .take(2)
            .collect();
        let found = match newlines.as_slice() {
            [last, before, ..] => Some((Some(*before + 1), *last)),
            [last] if start == 0 => Some((Some(0), *last)),
            [] if start == 0 => Some((None, 0)),
            _ => None,
        };
        if let Some((line_start, last_nl)) = found {
            return Ok(match line_start {
                Some(from) => Tail {
                    last_line: bytes.get(from..last_nl).map(<[u8]>::to_vec),
                    complete_len: start + last_nl as u64 + 1,
                    torn: bytes.get(last_nl + 1..).unwrap_or_default().to_vec(),
                },
                None => Tail {
                    last_line: None,
                    complete_len: 0,
                    torn: bytes,
                },
            });
        }
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&bytes);
        bytes = chunk;
        start = from;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ManualClock;

    #[derive(Debug)]
    struct FailAfter {
        writes_left: usize,
    }

    impl LogSink for FailAfter {
        fn write_all(&mut self, _: &[u8]) -> io::Result<()> {
            if self.writes_left == 0 {
                return Err(io::Error::other("disk full"));
            }
            self.writes_left -= 1;
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_fails_every_later_append() {
        let log = AuditLog::with_sink(
            Box::new(FailAfter { writes_left: 1 }),
            Durability::default(),
            1,
            GENESIS,
        );
        assert_eq!(
            log.append(Record::new(RecordKind::Control, 0)).unwrap().seq,
            1
        );
        let err = log.append(Record::new(RecordKind::Control, 0)).unwrap_err();
        assert!(err.0.contains("disk full"), "{err}");
        assert!(log.append(Record::new(RecordKind::Control, 0)).is_err());
        assert!(log.failed().is_some());
    }

    #[test]
    fn tail_finds_the_last_complete_line_and_the_torn_rest() {
        let dir = std::env::temp_dir().join(format!("ap-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.log");
        for (content, last, complete, torn) in [
            (&b""[..], None, 0, &b""[..]),
            (b"abc", None, 0, b"abc"),
            (b"a\n", Some(&b"a"[..]), 2, b""),
            (b"a\nbb\ncc", Some(b"bb"), 5, b"cc"),
        ] {
            std::fs::write(&path, content).unwrap();
            let mut f = File::open(&path).unwrap();
            let t = read_tail(&mut f).unwrap();
            assert_eq!(t.last_line.as_deref(), last);
            assert_eq!(t.complete_len, complete);
            assert_eq!(t.torn, torn);
        }
        let big = format!(
            "{}\n{}\n{}",
            "x".repeat(100_000),
            "y".repeat(70_000),
            "z".repeat(5)
        );
        std::fs::write(&path, &big).unwrap();
        let t = read_tail(&mut File::open(&path).unwrap()).unwrap();
        assert_eq!(t.last_line.unwrap().len(), 70_000);
        assert_eq!(t.torn, b"zzzzz");
    }

    #[test]
    fn reopening_continues_the_chain_and_cuts_a_torn_tail() {
        let dir = std::env::temp_dir().join(format!("ap-reopen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let _ = std::fs::remove_file(&path);
        let clock = ManualClock::new(0);
        let log = AuditLog::open(&path, Durability::default(), &clock).unwrap();
        log.append(Record::new(RecordKind::Control, 0)).unwrap();
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        Write::write_all(&mut f, b"{\"seq\":2,\"ti").unwrap();
        let log = AuditLog::open(&path, Durability::default(), &clock).unwrap();
        let ack = log.append(Record::new(RecordKind::Control, 0)).unwrap();
        assert_eq!(ack.seq, 5, "records 3 and 4 are `recovered` and `open`");
        log.close(0).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("removed a torn tail of 12 bytes"), "{text}");
        let report = crate::audit::verify(text.as_bytes()).unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert!(report.sealed);
    }
}
