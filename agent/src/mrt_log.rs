//! The BGP4MP update log (`[mrt]`): records the owner hands over without
//! waiting, written by a thread of their own into files of
//! `rotate_seconds` each, named for the UTC time they start
//! (`updates.YYYYMMDD.HHMM`, as route collectors name theirs), the oldest
//! removed past `keep_files`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::SystemTime;

use bgp::wire::mrt::Record;
use bytes::BytesMut;
use tracing::warn;

use crate::settings::Mrt;

/// Records waiting for the writer before new ones are dropped (counted).
const QUEUE: usize = 65_536;

/// The owner's handle on the log.
pub struct Log {
    tx: SyncSender<(u32, Record)>,
    dropped: Arc<AtomicU64>,
}

impl Log {
    /// Hand a record over, stamped now; never waits.
    pub fn offer(&self, record: Record) {
        if self.tx.try_send((unix_now(), record)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn unix_now() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32)
}

/// Start the writer: the directory is made if it is missing.
pub fn start(settings: &Mrt) -> Result<Log, String> {
    let dir = settings.updates_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|e| format!("mrt.updates_dir {}: {e}", dir.display()))?;
    let (tx, rx) = sync_channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let writer = Writer {
        dir,
        rotate: settings.rotate_seconds.max(1),
        keep: settings.keep_files as usize,
        file: None,
        dropped: Arc::clone(&dropped),
        said_dropped: 0,
    };
    std::thread::Builder::new()
        .name("mrt-log".into())
        .spawn(move || writer.run(rx))
        .map_err(|e| format!("mrt: cannot start its thread: {e}"))?;
    Ok(Log { tx, dropped })
}

struct Writer {
    dir: PathBuf,
    rotate: u32,
    keep: usize,
    /// The file being written and the span it covers.
    file: Option<(u32, std::io::BufWriter<std::fs::File>)>,
    dropped: Arc<AtomicU64>,
    said_dropped: u64,
}

impl Writer {
    fn run(mut self, rx: Receiver<(u32, Record)>) {
        let mut buf = BytesMut::new();
        while let Ok((at, record)) = rx.recv() {
            let mut batch = vec![(at, record)];
            batch.extend(rx.try_iter().take(4096));
            for (at, record) in batch {
                buf.clear();
                if let Err(e) = record.encode(at, &mut buf) {
                    warn!("mrt: a record not written: {e}");
                    continue;
                }
                if let Err(e) = self.write(at, &buf) {
                    warn!("mrt: {}: {e}", self.dir.display());
                    self.file = None;
                }
            }
            if let Some((_, f)) = &mut self.file {
                let _ = f.flush();
            }
            let dropped = self.dropped.load(Ordering::Relaxed);
            if dropped > self.said_dropped {
                warn!(dropped, "mrt: the update log fell behind; records dropped");
                self.said_dropped = dropped;
            }
        }
        if let Some((_, mut f)) = self.file.take() {
            let _ = f.flush();
        }
    }

    fn write(&mut self, at: u32, bytes: &[u8]) -> std::io::Result<()> {
        let span = at - at % self.rotate;
        if self.file.as_ref().is_none_or(|(s, _)| *s != span) {
            if let Some((_, mut old)) = self.file.take() {
                old.flush()?;
            }
            let path = self.dir.join(file_name(span));
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            self.file = Some((span, std::io::BufWriter::new(f)));
            prune(&self.dir, self.keep);
        }
        match &mut self.file {
            Some((_, f)) => f.write_all(bytes),
            None => Ok(()),
        }
    }
}

/// `updates.YYYYMMDD.HHMM` for the UTC time `at`.
pub fn file_name(at: u32) -> String {
    let days = i64::from(at / 86_400);
    let secs = at % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "updates.{y:04}{m:02}{d:02}.{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Remove the oldest update files past `keep`.
fn prune(dir: &Path, keep: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_update_file(n))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep);
    for n in &names[..excess] {
        let _ = std::fs::remove_file(dir.join(n));
    }
}

/// Whether a name is one of ours: `updates.` then 8 digits, a dot, 4.
fn is_update_file(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("updates.") else {
        return false;
    };
    let b = rest.as_bytes();
    b.len() == 13
        && b[8] == b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_for_the_utc_time_they_start() {
        assert_eq!(file_name(0), "updates.19700101.0000");
        // 2026-12-07 07:15:00 UTC.
        assert_eq!(file_name(1_796_627_700), "updates.20261207.0715");
        // A leap day.
        assert_eq!(file_name(951_782_400), "updates.20000229.0000");
        assert!(is_update_file("updates.20261207.0715"));
        assert!(!is_update_file("updates.20261207.0715.tmp"));
        assert!(!is_update_file("rib.20261207.0715"));
    }

    #[test]
    fn records_go_to_the_file_of_their_span_and_the_oldest_files_go() {
        let dir = tempfile::tempdir().expect("dir");
        let mut w = Writer {
            dir: dir.path().into(),
            rotate: 900,
            keep: 2,
            file: None,
            dropped: Arc::default(),
            said_dropped: 0,
        };
        // Someone else's file is left alone.
        std::fs::write(dir.path().join("notes.txt"), b"x").expect("write");
        let base = 1_796_627_700;
        for (at, byte) in [
            (base, 1u8),
            (base + 899, 2),
            (base + 900, 3),
            (base + 1800, 4),
        ] {
            w.write(at, &[byte]).expect("written");
        }
        if let Some((_, f)) = &mut w.file {
            f.flush().expect("flush");
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "notes.txt",
                "updates.20261207.0730",
                "updates.20261207.0745"
            ]
        );
        let read = |n: &str| std::fs::read(dir.path().join(n)).expect("read");
        assert_eq!(read("updates.20261207.0730"), [3]);
        assert_eq!(read("updates.20261207.0745"), [4]);
    }
}
