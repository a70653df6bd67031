//! Reading and decoding a JSON Lines history one batch ahead of the engine, on a thread of
//! its own: replay and report spend a fifth of their time in the decoder, which needs
//! nothing from the engine, so one core decodes the next batch while the other runs the
//! engine on this one.
//!
//! # Ground rules
//!
//! * Records reach the caller in input order, each exactly once, with the number of its
//!   line (blank lines are counted, not handed over) and the input bytes read up to and
//!   including it.
//! * Memory is bounded: at most [`BATCHES_AHEAD`] batches of about [`BATCH_BYTES`] of
//!   input wait between the two threads, whatever the input's size.
//! * A batch owns its bytes and its decoded records borrow them ([`self_cell`]), so no
//!   text is copied out of a line to hand it over.
//! * A read error ends the records; the caller gets it after the records read before it.
//!   A caller that stops early (its own error) stops the reader at its next batch.
//! * With one CPU the same batches are read and decoded on the caller's thread.

use std::io::{self, BufRead};
use std::sync::mpsc;

use crate::core::event::Input;
use crate::decode::{decode, DeadLetter};

/// Input bytes per batch (the last line may take it past).
pub const BATCH_BYTES: usize = 1 << 15;

/// Batches decoded and waiting for the engine, at most.
pub const BATCHES_AHEAD: usize = 2;

/// One non-blank line of the input, decoded.
pub struct Record<'a> {
    /// Its line number, from 1.
    pub number: u64,
    /// Input bytes read up to and including this line.
    pub consumed: u64,
    /// The line, without its line end.
    pub bytes: &'a [u8],
    /// The well-formed input, or why it is a dead letter.
    pub input: Result<Input<'a>, DeadLetter>,
}

/// A batch's records, borrowing its bytes.
pub struct Records<'a>(Vec<Record<'a>>);

self_cell::self_cell!(
    /// Lines of input and their decodings.
    struct Batch {
        owner: Vec<u8>,
        #[covariant]
        dependent: Records,
    }
);

/// Where a line of the batch being filled lies in its bytes.
struct Line {
    number: u64,
    consumed: u64,
    start: usize,
    end: usize,
}

/// Fills batches from `input` and decodes them.
struct Batcher {
    bytes: Vec<u8>,
    lines: Vec<Line>,
    number: u64,
    consumed: u64,
}

impl Batcher {
    fn new() -> Batcher {
        Batcher {
            bytes: Vec::with_capacity(BATCH_BYTES + 4096),
            lines: Vec::with_capacity(BATCH_BYTES / 128),
            number: 0,
            consumed: 0,
        }
    }

    /// Takes one line (with the `taken` bytes it used); true when the batch is full.
    fn push(&mut self, line: &[u8], taken: u64) -> bool {
        self.number += 1;
        self.consumed += taken;
        let record = trim_line_end(line);
        if !record.iter().all(u8::is_ascii_whitespace) {
            let start = self.bytes.len();
            self.bytes.extend_from_slice(record);
            self.lines.push(Line {
                number: self.number,
                consumed: self.consumed,
                start,
                end: self.bytes.len(),
            });
        }
        self.bytes.len() >= BATCH_BYTES
    }

    /// The lines taken since the last batch, decoded; `None` when there are none.
    fn seal(&mut self) -> Option<Batch> {
        if self.lines.is_empty() {
            return None;
        }
        let bytes = std::mem::replace(&mut self.bytes, Vec::with_capacity(BATCH_BYTES + 4096));
        let lines = std::mem::take(&mut self.lines);
        self.lines.reserve(lines.len());
        Some(Batch::new(bytes, |bytes| {
            Records(
                lines
                    .iter()
                    .map(|l| {
                        let line = &bytes[l.start..l.end];
                        Record {
                            number: l.number,
                            consumed: l.consumed,
                            bytes: line,
                            input: decode(line).into_input(),
                        }
                    })
                    .collect(),
            )
        }))
    }
}

/// Calls `f` on every non-blank line of `input`, decoded, in order. The reading and
/// decoding run a batch ahead on a thread of their own when the machine has more than
/// one CPU.
pub fn for_each_record<R: BufRead + Send>(
    input: R,
    f: impl FnMut(&Record<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get()) > 1;
    records(input, parallel, f)
}

/// [`for_each_record`], with the reading on a thread of its own or not.
fn records<R: BufRead + Send>(
    input: R,
    parallel: bool,
    mut f: impl FnMut(&Record<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut each = |batch: &Batch| batch.borrow_dependent().0.iter().try_for_each(&mut f);
    if !parallel {
        return read_batches(input, |batch| each(&batch));
    }
    let (to_engine, from_reader) = mpsc::sync_channel::<Batch>(BATCHES_AHEAD);
    std::thread::scope(|scope| {
        let reader = std::thread::Builder::new()
            .name("read-ahead".into())
            .spawn_scoped(scope, move || {
                // A send fails only once the caller has stopped on an error of its own,
                // which is the one returned.
                read_batches(input, |batch| {
                    to_engine
                        .send(batch)
                        .map_err(|_| io::Error::other("the caller stopped taking records"))
                })
            })?;
        let mut result = Ok(());
        for batch in &from_reader {
            result = each(&batch);
            if result.is_err() {
                break;
            }
        }
        drop(from_reader);
        let read = reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // The caller's own error first; else the reader's, after every record it read.
        result.and(read)
    })
}

/// Reads `input` to its end in batches, handing each to `f`.
fn read_batches<R: BufRead>(
    input: R,
    mut f: impl FnMut(Batch) -> io::Result<()>,
) -> io::Result<()> {
    let mut batcher = Batcher::new();
    let mut handed = Ok(());
    let read = for_each_line(input, |line, taken| {
        if batcher.push(line, taken) {
            if let Some(batch) = batcher.seal() {
                // Kept apart from a read error: the lines before one still go out.
                handed = f(batch);
                handed.as_ref().map_err(|_| io::Error::other("stopped"))?;
            }
        }
        Ok(())
    });
    handed?;
    if let Some(batch) = batcher.seal() {
        f(batch)?;
    }
    read
}

/// Calls `f` on each line of `input` (without its `\n`) and the bytes it took (with
/// the `\n`): straight from the reader's buffer when the line lies within it, from a
/// copy when it spans two fills. The last line may lack its `\n`.
fn for_each_line<R: BufRead>(
    mut input: R,
    mut f: impl FnMut(&[u8], u64) -> io::Result<()>,
) -> io::Result<()> {
    let mut spill = Vec::new();
    loop {
        let buf = match input.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return match spill.is_empty() {
                true => Ok(()),
                false => f(&spill, spill.len() as u64),
            };
        }
        let mut from = 0;
        if !spill.is_empty() {
            let Some(end) = memchr::memchr(b'\n', buf) else {
                spill.extend_from_slice(buf);
                let used = buf.len();
                input.consume(used);
                continue;
            };
            spill.extend_from_slice(&buf[..end]);
            f(&spill, spill.len() as u64 + 1)?;
            spill.clear();
            from = end + 1;
        }
        let start = from;
        for end in memchr::memchr_iter(b'\n', &buf[start..]) {
            let line = &buf[from..start + end];
            f(line, line.len() as u64 + 1)?;
            from = start + end + 1;
        }
        spill.extend_from_slice(&buf[from..]);
        let used = buf.len();
        input.consume(used);
    }
}

/// A line without its `\n` or `\r\n`.
fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the records should be: each line read and decoded on the spot.
    fn sequential(text: &[u8]) -> Vec<(u64, u64, Vec<u8>, String)> {
        let mut out = Vec::new();
        let (mut number, mut consumed) = (0, 0);
        for_each_line(text, |line, taken| {
            number += 1;
            consumed += taken;
            let record = trim_line_end(line);
            if !record.iter().all(u8::is_ascii_whitespace) {
                let input = format!("{:?}", decode(record).into_input());
                out.push((number, consumed, record.to_vec(), input));
            }
            Ok(())
        })
        .unwrap();
        out
    }

    /// The records as both ways of reading give them (asserted equal).
    fn read_ahead(text: &[u8]) -> Vec<(u64, u64, Vec<u8>, String)> {
        let [threaded, inline] = [true, false].map(|parallel| read_with(text, parallel));
        assert_eq!(threaded, inline);
        threaded
    }

    fn read_with(text: &[u8], parallel: bool) -> Vec<(u64, u64, Vec<u8>, String)> {
        let mut out = Vec::new();
        records(io::BufReader::with_capacity(1000, text), parallel, |r| {
            out.push((
                r.number,
                r.consumed,
                r.bytes.to_vec(),
                format!("{:?}", r.input),
            ));
            Ok(())
        })
        .unwrap();
        out
    }

    /// Lines of every kind: events, dead letters, blank lines, CRLF ends.
    fn line(i: usize) -> String {
        match i % 7 {
            0 => String::new(),
            1 => "  \r".into(),
            2 => "not json".into(),
            3 => format!(
                r#"{{"specversion":"1.0","id":"e{i}","source":"s","type":"customer_message.received","time":"2026-11-02T10:00:00Z","data":{{"thread_id":"T{i}","message_id":"M{i}"}}}}"#
            ),
            4 => format!(
                r#"{{"specversion":"1.0","id":"e{i}","source":"s","type":"x.y","time":"2026-11-02T10:00:0{}Z","data":{{}}}}\r"#,
                i % 10
            ),
            5 => format!(
                r#"{{"specversion":"1.0","id":"e\u00e9{i}","source":"s\n","type":"x","time":"2026-11-02T10:00:00Z","data":{{}}}}"#
            ),
            _ => format!(r#"{{"specversion":"2.0","id":"{i}"}}"#),
        }
    }

    #[test]
    fn records_come_in_order_across_batches_as_a_sequential_read_gives_them() {
        // Several batches' worth, and a last line without its line end.
        let mut text = String::new();
        let mut i = 0;
        while text.len() < 5 * BATCH_BYTES {
            text.push_str(&line(i));
            text.push('\n');
            i += 1;
        }
        text.push_str(&line(3));
        let expected = sequential(text.as_bytes());
        assert!(expected.len() > 100, "{} records", expected.len());
        assert_eq!(read_ahead(text.as_bytes()), expected);
    }

    proptest::proptest! {
        #[test]
        fn any_small_input_reads_as_a_sequential_read(picks in proptest::collection::vec(0usize..7, 0..40)) {
            let text: String = picks.iter().map(|&p| line(p) + "\n").collect();
            proptest::prop_assert_eq!(read_ahead(text.as_bytes()), sequential(text.as_bytes()));
        }
    }

    /// Bytes, then a read error.
    struct Broken<'a>(&'a [u8]);

    impl io::Read for Broken<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = self.0.len().min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_comes_after_the_records_read_before_it() {
        let text: String = (0..5_000).map(|i| line(i) + "\n").collect();
        for parallel in [true, false] {
            let mut seen = 0;
            let input = io::BufReader::new(Broken(text.as_bytes()));
            let err = records(input, parallel, |_| {
                seen += 1;
                Ok(())
            })
            .unwrap_err();
            assert_eq!(err.to_string(), "disk on fire");
            assert_eq!(seen, sequential(text.as_bytes()).len());
        }
    }

    #[test]
    fn the_callers_error_stops_the_reading_and_is_returned() {
        let text: String = (0..50_000).map(|i| line(i) + "\n").collect();
        for parallel in [true, false] {
            let mut seen = 0;
            let err = records(text.as_bytes(), parallel, |_| {
                seen += 1;
                match seen {
                    10 => Err(io::Error::other("output closed")),
                    _ => Ok(()),
                }
            })
            .unwrap_err();
            assert_eq!(err.to_string(), "output closed");
            assert_eq!(seen, 10);
        }
    }

    proptest::proptest! {
        /// Lines come out as `split` cuts them, whatever the buffer's size.
        #[test]
        fn lines_are_cut_as_split_cuts_them(
            text in "[ab\\n]{0,60}",
            capacity in 1usize..20,
        ) {
            let reader = io::BufReader::with_capacity(capacity, text.as_bytes());
            let mut lines = Vec::new();
            let mut taken = 0;
            for_each_line(reader, |line, n| {
                lines.push(String::from_utf8(line.to_vec()).unwrap());
                taken += n;
                Ok(())
            })
            .unwrap();
            let mut expected: Vec<String> = text.split('\n').map(String::from).collect();
            if text.is_empty() || text.ends_with('\n') {
                expected.pop();
            }
            proptest::prop_assert_eq!(lines, expected);
            proptest::prop_assert_eq!(taken, text.len() as u64);
        }
    }

    #[test]
    fn line_endings_are_trimmed() {
        assert_eq!(trim_line_end(b"{}\r\n"), b"{}");
        assert_eq!(trim_line_end(b"{}"), b"{}");
    }
}
