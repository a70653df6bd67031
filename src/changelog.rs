//! The changelog of one input partition's engine state: the records the live daemon
//! writes to a compacted topic with its alerts, and the restore that reads them back.
//!
//! # Records
//!
//! Keys and values are binary; every value starts with the format version, [`VERSION`].
//! A tombstone (no value) deletes its key once the topic is compacted.
//!
//! | key | value | written |
//! |---|---|---|
//! | `C` | clock (i64 ms), next chunk number (u64) | at each commit that changed the partition |
//! | `R` + chunk number (u64, big-endian) | the remembered facts changed since the last commit ([`Change`]s, in order) | at each commit with changes; a tombstone once every fact in it is older than the retention window |
//! | `T` | under at least once, the offset before which every record's alerts are delivered (i64), sent at once, without waiting for the commit | after a batch of records (or a second) in which deliveries were reported |
//! | `I` + rule name + `0x00` + key | an open instance: `s`, `d`, its warning leads, its texts, then the override it opened with (u8; absent in records written before overrides, meaning none) | when it opens; a tombstone when it closes |
//!
//! Integers are little-endian unless said otherwise; texts are a LEB128 length then
//! UTF-8 (length 0 is absent).
//!
//! # Ground rules
//!
//! * Restoring is reading the partition's changelog from the start to the end, applying
//!   each record in order ([`Restorer`]); no record needs another to be read first.
//! * An instance record is written once and deleted once: which of its points have fired
//!   follows from the clock, because the daemon writes the changelog only when no point
//!   is pending before the clock ([`PartitionState::settle`]).
//! * Facts are written in chunks, one per commit and partition, so the changelog grows
//!   by about 17 bytes per input record, not by a keyed record each; a chunk is deleted
//!   once it holds nothing the engine may still remember (older than the window and an
//!   eighth, the engine's own batching of forgetting).
//! * Restored instances keep the deadline and leads they opened with; their texts come
//!   from the configuration running now. An instance of a rule that is no longer
//!   configured is dropped and counted ([`RestoreStats::dropped`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::core::effect::{Change, Effect, Opened};
use crate::core::event::{Currency, Decimal, Money};
use crate::core::partition::PartitionState;
use crate::core::rules::RuleSet;
use crate::core::time::{Millis, Span};

/// The format version every value starts with.
pub const VERSION: u8 = 1;
/// A chunk of facts is cut at about this many bytes, well under a topic's default
/// maximum record size (1 MB).
pub const CHUNK_BYTES: usize = 256 * 1024;

const CLOCK_KEY: &[u8] = b"C";
const DELIVERED_KEY: &[u8] = b"T";
const CHUNK: u8 = b'R';
const INSTANCE: u8 = b'I';

const SEEN: u8 = 1;
const EMITTED: u8 = 2;
const TOTAL: u8 = 3;
const NO_TOTAL: u8 = 4;
const LAST: u8 = 5;

/// One changelog record: a key and a value, or a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// A changelog record that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("changelog record {key:?}: {problem}")]
pub struct ChangelogError {
    pub key: String,
    pub problem: String,
}

/// Turns one partition's effects into changelog records.
#[derive(Debug, Default)]
pub struct ChangelogWriter {
    /// Encoded [`Change`]s since the last chunk was cut.
    changes: Vec<u8>,
    /// The latest stamp among `changes`.
    changes_stamp: Millis,
    /// Records ready to send, in order.
    records: Vec<Record>,
    next_chunk: u64,
    /// (chunk number, latest stamp) of the chunks written and not yet deleted.
    live_chunks: VecDeque<(u64, Millis)>,
    /// Something was written since the last [`Self::flush`].
    dirty: bool,
}

impl ChangelogWriter {
    /// Takes note of one effect of the engine (alerts and closes of no instance record
    /// are for others).
    pub fn record(&mut self, rules: &RuleSet, effect: &Effect<'_>) {
        match effect {
            Effect::Alert(_) => {}
            Effect::Changed(change) => {
                encode_change(&mut self.changes, change);
                self.changes_stamp = self.changes_stamp.max(stamp_of(change));
                self.dirty = true;
                if self.changes.len() >= CHUNK_BYTES {
                    self.cut_chunk();
                }
            }
            Effect::Opened(o, _) => {
                let key = instance_key(&rules.rule(o.rule).name, o.key);
                self.records.push(Record {
                    key,
                    value: Some(encode_instance(o)),
                });
                self.dirty = true;
            }
            Effect::Closed(c) => {
                let key = instance_key(&rules.rule(c.rule).name, c.key);
                self.records.push(Record { key, value: None });
                self.dirty = true;
            }
        }
    }

    /// Whether anything was recorded since the last flush.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The records that bring the changelog up to the state at `clock`, in the order to
    /// write them: open and closed instances, the chunk of facts, deletions of chunks
    /// that expired, then the clock. Nothing when nothing changed.
    pub fn flush(&mut self, clock: Option<Millis>, retention: Span) -> Vec<Record> {
        if !self.dirty {
            return Vec::new();
        }
        self.cut_chunk();
        if let Some(clock) = clock {
            let horizon = clock.minus(retention).minus(Span(retention.0 / 8));
            while let Some(&(n, stamp)) = self.live_chunks.front() {
                if stamp >= horizon {
                    break;
                }
                self.live_chunks.pop_front();
                self.records.push(Record {
                    key: chunk_key(n),
                    value: None,
                });
            }
            let mut value = vec![VERSION];
            value.extend_from_slice(&clock.0.to_le_bytes());
            value.extend_from_slice(&self.next_chunk.to_le_bytes());
            self.records.push(Record {
                key: CLOCK_KEY.to_vec(),
                value: Some(value),
            });
        }
        self.dirty = false;
        std::mem::take(&mut self.records)
    }

    /// Forgets what was recorded since the last flush (its transaction was aborted).
    pub fn discard(&mut self) {
        self.changes.clear();
        self.records.clear();
        self.dirty = false;
    }

    fn cut_chunk(&mut self) {
        if self.changes.is_empty() {
            return;
        }
        let mut value = Vec::with_capacity(self.changes.len() + 1);
        value.push(VERSION);
        value.extend_from_slice(&self.changes);
        self.changes.clear();
        let n = self.next_chunk;
        self.next_chunk += 1;
        self.live_chunks.push_back((n, self.changes_stamp));
        self.records.push(Record {
            key: chunk_key(n),
            value: Some(value),
        });
        self.changes_stamp = Millis::MIN;
    }
}

/// What a restore read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreStats {
    pub records: u64,
    pub bytes: u64,
    /// Instances open at the end of the restore.
    pub instances: u64,
    /// Instances dropped because their rule is no longer configured, by rule name.
    pub dropped: BTreeMap<String, u64>,
    /// Under at least once, the offset before which an earlier run had delivered every
    /// record's alerts ([`delivered_mark`]): alerts of records before it are sent again.
    pub delivered_before: Option<i64>,
}

/// The record that marks every alert of the partition's records before `next` delivered.
pub fn delivered_mark(next: i64) -> Record {
    let mut value = vec![VERSION];
    value.extend_from_slice(&next.to_le_bytes());
    Record {
        key: DELIVERED_KEY.to_vec(),
        value: Some(value),
    }
}

/// Rebuilds one partition's state from its changelog, read from the start in order.
pub struct Restorer {
    rules: Arc<RuleSet>,
    state: PartitionState,
    writer: ChangelogWriter,
    stats: RestoreStats,
    clock: Option<Millis>,
    /// An instance record's warning leads, read into one buffer for all.
    leads: Vec<Span>,
}

impl Restorer {
    pub fn new(rules: Arc<RuleSet>) -> Restorer {
        Restorer {
            rules,
            state: PartitionState::new(),
            writer: ChangelogWriter::default(),
            stats: Default::default(),
            leads: Vec::new(),
            clock: None,
        }
    }

    /// Applies the next record of the changelog.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), ChangelogError> {
        self.stats.records += 1;
        self.stats.bytes += (key.len() + value.map_or(0, <[u8]>::len)) as u64;
        let fail = |problem: &str| ChangelogError {
            key: String::from_utf8_lossy(key).into_owned(),
            problem: problem.into(),
        };
        let value = match value {
            Some(v) => match v.split_first() {
                Some((&VERSION, rest)) => Some(rest),
                Some((v, _)) => {
                    return Err(fail(&format!(
                        "format version {v}; this build reads {VERSION}"
                    )))
                }
                None => return Err(fail("empty value")),
            },
            None => None,
        };
        match key.first() {
            Some(&CHUNK) => self.apply_chunk(key, value).map_err(&fail),
            Some(&INSTANCE) => self.apply_instance(key, value).map_err(&fail),
            _ if key == DELIVERED_KEY => {
                let v = value.ok_or_else(|| fail("the delivery mark has no value"))?;
                let next = Reader(v).i64().map_err(&fail)?;
                self.stats.delivered_before = self.stats.delivered_before.max(Some(next));
                Ok(())
            }
            _ if key == CLOCK_KEY => {
                let v = value.ok_or_else(|| fail("the clock has no value"))?;
                let mut r = Reader(v);
                let (clock, next_chunk) = (r.i64().map_err(&fail)?, r.u64().map_err(&fail)?);
                self.clock = Some(Millis(clock));
                self.writer.next_chunk = self.writer.next_chunk.max(next_chunk);
                Ok(())
            }
            _ => Err(fail("unknown key")),
        }
    }

    fn apply_chunk(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), &'static str> {
        let n = u64::from_be_bytes(
            key.get(1..9)
                .and_then(|k| k.try_into().ok())
                .ok_or("a chunk key holds 8 bytes")?,
        );
        let Some(value) = value else {
            self.writer.live_chunks.retain(|&(m, _)| m != n);
            return Ok(());
        };
        let mut r = Reader(value);
        let mut latest = Millis::MIN;
        while !r.0.is_empty() {
            let change = decode_change(&mut r)?;
            latest = latest.max(stamp_of(&change));
            self.state.restore_change(&self.rules, change);
        }
        self.writer.live_chunks.retain(|&(m, _)| m != n);
        self.writer.live_chunks.push_back((n, latest));
        self.writer.next_chunk = self.writer.next_chunk.max(n + 1);
        Ok(())
    }

    fn apply_instance(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), &'static str> {
        let rest = &key[1..];
        let split = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or("an instance key holds a rule name and a key")?;
        let rule_name =
            std::str::from_utf8(&rest[..split]).map_err(|_| "the rule name is not UTF-8")?;
        let instance_key =
            std::str::from_utf8(&rest[split + 1..]).map_err(|_| "the instance key is not UTF-8")?;
        let Some(rule) = self.rules.rules.iter().position(|r| &*r.name == rule_name) else {
            if value.is_some() {
                *self.stats.dropped.entry(rule_name.to_string()).or_default() += 1;
            } else if let Some(n) = self.stats.dropped.get_mut(rule_name) {
                *n = n.saturating_sub(1);
            }
            return Ok(());
        };
        let rule = rule as u16;
        let Some(value) = value else {
            self.state.restore_close(rule, instance_key);
            return Ok(());
        };
        let mut r = Reader(value);
        let (started, deadline) = (Millis(r.i64()?), Millis(r.i64()?));
        let count = r.u8()? as usize;
        let mut leads = std::mem::take(&mut self.leads);
        leads.clear();
        for _ in 0..count {
            leads.push(Span(r.i64()?));
        }
        let opened_by = r.text()?.unwrap_or_default();
        let (order_id, seller_id, marketplace) = (r.text()?, r.text()?, r.text()?);
        let profile = if r.0.is_empty() { 0 } else { r.u8()? };
        let o = Opened {
            rule,
            key: instance_key,
            opened_by,
            order_id,
            seller_id,
            marketplace,
            started,
            deadline,
            leads: &leads,
            first_point: 0,
            profile,
        };
        // Usually new; a later record of a key already restored replaces it.
        if !self.state.restore_instance(&self.rules, o) {
            self.state.restore_close(rule, instance_key);
            self.state.restore_instance(&self.rules, o);
        }
        self.leads = leads;
        Ok(())
    }

    /// The restored state, and the writer that continues its changelog.
    pub fn finish(mut self) -> (PartitionState, ChangelogWriter, RestoreStats) {
        if let Some(clock) = self.clock {
            self.state.restore_clock(clock);
        }
        self.state.restore_done(&self.rules);
        self.stats.instances = self.state.open_instances();
        self.stats.dropped.retain(|_, n| *n > 0);
        (self.state, self.writer, self.stats)
    }
}

fn chunk_key(n: u64) -> Vec<u8> {
    let mut key = vec![CHUNK];
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// The key of an instance's record: `I`, the rule name, a zero byte, the key.
pub fn instance_key(rule: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + rule.len() + key.len());
    k.push(INSTANCE);
    k.extend_from_slice(rule.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

fn encode_instance(o: &Opened<'_>) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.push(VERSION);
    v.extend_from_slice(&o.started.0.to_le_bytes());
    v.extend_from_slice(&o.deadline.0.to_le_bytes());
    v.push(o.leads.len() as u8);
    for lead in o.leads {
        v.extend_from_slice(&lead.0.to_le_bytes());
    }
    for text in [Some(o.opened_by), o.order_id, o.seller_id, o.marketplace] {
        put_text(&mut v, text);
    }
    v.push(o.profile);
    v
}

fn stamp_of(change: &Change) -> Millis {
    match *change {
        Change::Seen { stamp, .. }
        | Change::Emitted { stamp, .. }
        | Change::Total { stamp, .. } => stamp,
        Change::Last { last, .. } => last,
    }
}

fn encode_change(out: &mut Vec<u8>, change: &Change) {
    let mut put = |tag: u8, key: u64, stamp: Millis| {
        out.push(tag);
        out.extend_from_slice(&key.to_le_bytes());
        out.extend_from_slice(&stamp.0.to_le_bytes());
    };
    match *change {
        Change::Seen { id, stamp } => put(SEEN, id, stamp),
        Change::Emitted { id, stamp } => put(EMITTED, id, stamp),
        Change::Last { rule_key, last } => put(LAST, rule_key, last),
        Change::Total {
            order,
            total: None,
            stamp,
        } => put(NO_TOTAL, order, stamp),
        Change::Total {
            order,
            total: Some(m),
            stamp,
        } => {
            put(TOTAL, order, stamp);
            out.extend_from_slice(&m.amount.0.to_le_bytes());
            out.extend_from_slice(m.currency.as_str().as_bytes());
        }
    }
}

fn decode_change(r: &mut Reader<'_>) -> Result<Change, &'static str> {
    let tag = r.u8()?;
    let (key, stamp) = (r.u64()?, Millis(r.i64()?));
    Ok(match tag {
        SEEN => Change::Seen { id: key, stamp },
        EMITTED => Change::Emitted { id: key, stamp },
        LAST => Change::Last {
            rule_key: key,
            last: stamp,
        },
        NO_TOTAL => Change::Total {
            order: key,
            total: None,
            stamp,
        },
        TOTAL => {
            let amount = Decimal(i128::from_le_bytes(
                r.take(16)?.try_into().expect("16 bytes"),
            ));
            let code = std::str::from_utf8(r.take(3)?).map_err(|_| "a currency is ASCII")?;
            let currency = Currency::parse(code).ok_or("a currency is three letters")?;
            Change::Total {
                order: key,
                total: Some(Money { amount, currency }),
                stamp,
            }
        }
        _ => return Err("unknown kind of fact"),
    })
}

fn put_text(out: &mut Vec<u8>, text: Option<&str>) {
    let bytes = text.unwrap_or_default().as_bytes();
    let mut n = bytes.len();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(bytes);
}

/// Reads a value front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("the value is cut short");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64, &'static str> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn text(&mut self) -> Result<Option<&'a str>, &'static str> {
        let mut n = 0usize;
        for shift in (0..35).step_by(7) {
            let b = self.u8()?;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                let bytes = self.take(n)?;
                let text = std::str::from_utf8(bytes).map_err(|_| "a text is not UTF-8")?;
                return Ok((!text.is_empty()).then_some(text));
            }
        }
        Err("a text length is too long")
    }
}

#[cfg(test)]
#[path = "changelog_tests.rs"]
mod tests;
