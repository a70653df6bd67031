//! The query API's reading of the daemon's state (contract section 12), without I/O:
//! filters, the sort order, pages and their cursor, over one [`Worker`]'s partitions;
//! and the merge of every worker's answer into one page. The HTTP shell
//! (`crate::api`) parses a request into a [`Query`] ([`params::parse`]), hands it to each
//! worker's loop, and merges what comes back with [`merge`].
//!
//! # Ground rules
//!
//! * **Order.** Entries are sorted by `deadline`, then rule name, then key (bytewise), and,
//!   so that the order is total when one (rule, key) is open on two partitions, topic and
//!   partition. A [`Cursor`] is the sort key of the last entry of a page; the next page
//!   holds the entries strictly after it, so paging neither repeats nor skips an entry
//!   that stays open meanwhile.
//! * **Bounded work.** A worker returns at most `limit + 1` entries (the one past the
//!   limit tells the merge that a next page exists), chosen with a heap of that size: a
//!   query costs one pass over the worker's open instances, no copy of them.
//! * **Filters** compare text exactly as sent (as the rules do). `status=open` keeps the
//!   entries not past their deadline, `status=overdue` those past it (`clock > d` on their
//!   partition's clock, see `core::partition::OpenDeadline`); no status keeps both.
//!   `due_before` keeps the entries with `d` strictly before it.
//! * A partition still restoring its state answers nothing (it is not ready, `/readyz`
//!   says so); each partition answers as of one moment, not all of them at one moment.

pub mod ask;
pub mod cursor;
pub mod params;

use std::collections::BinaryHeap;

use serde_json::{json, Value};

pub use cursor::Cursor;

use crate::core::partition::{NextPoint, OpenDeadline};
use crate::core::rules::{RuleId, RuleSet};
use crate::core::time::Millis;
use crate::worker::Worker;

/// Entries per page when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` (contract section 12).
pub const MAX_LIMIT: usize = 10_000;

/// `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not past the deadline.
    Open,
    /// Past the deadline on the partition's clock.
    Overdue,
}

/// What an entry must match; `None` matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub rule: Option<RuleId>,
    pub key: Option<String>,
    pub seller_id: Option<String>,
    pub marketplace: Option<String>,
    pub status: Option<Status>,
    /// Keeps deadlines strictly before this instant.
    pub due_before: Option<Millis>,
}

impl Filter {
    fn admits(&self, d: &OpenDeadline<'_>) -> bool {
        let text = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        let o = &d.opened;
        self.rule.is_none_or(|r| r == o.rule)
            && text(&self.key, Some(o.key))
            && text(&self.seller_id, o.seller_id)
            && text(&self.marketplace, o.marketplace)
            && self
                .status
                .is_none_or(|s| (s == Status::Overdue) == d.overdue)
            && self.due_before.is_none_or(|b| o.deadline < b)
    }
}

/// One page's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub filter: Filter,
    /// 1 to [`MAX_LIMIT`].
    pub limit: usize,
    /// The entries strictly after this one.
    pub after: Option<Cursor>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            filter: Filter::default(),
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

/// One open instance as the API shows it, owned: it crosses from a worker's thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub rule: String,
    pub key: String,
    pub opened_by: String,
    pub started_at: Millis,
    pub deadline: Millis,
    pub overdue: bool,
    pub next_point: Option<NextPoint>,
    pub alerts_emitted: u8,
    pub order_id: Option<String>,
    pub seller_id: Option<String>,
    pub marketplace: Option<String>,
    pub topic: String,
    pub partition: i32,
}

/// The sort key, borrowed.
type SortKey<'a> = (i64, &'a str, &'a str, &'a str, i32);

impl Entry {
    fn new(rules: &RuleSet, d: &OpenDeadline<'_>, topic: &str, partition: i32) -> Entry {
        let owned = |t: Option<&str>| t.map(str::to_string);
        let o = &d.opened;
        Entry {
            rule: rules.rule(o.rule).name.to_string(),
            key: o.key.to_string(),
            opened_by: o.opened_by.to_string(),
            started_at: o.started,
            deadline: o.deadline,
            overdue: d.overdue,
            next_point: d.next_point,
            alerts_emitted: d.alerts_emitted,
            order_id: owned(o.order_id),
            seller_id: owned(o.seller_id),
            marketplace: owned(o.marketplace),
            topic: topic.to_string(),
            partition,
        }
    }

    fn sort_key(&self) -> SortKey<'_> {
        let (rule, key, topic) = (&self.rule, &self.key, &self.topic);
        (self.deadline.0, rule, key, topic, self.partition)
    }

    /// The cursor of the page that ends with this entry.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            deadline: self.deadline,
            rule: self.rule.clone(),
            key: self.key.clone(),
            topic: self.topic.clone(),
            partition: self.partition,
        }
    }

    /// The entry as the OpenAPI document's `Deadline` schema has it.
    pub fn to_json(&self) -> Value {
        let next_point = self.next_point.map(|p| {
            json!({
                "stage": if p.lead.is_some() { "warning" } else { "breach" },
                "lead_seconds": p.lead.map(|l| l.whole_secs()),
                "time": p.at.to_rfc3339(),
            })
        });
        json!({
            "rule": self.rule,
            "key": self.key,
            "opened_by": self.opened_by,
            "started_at": self.started_at.to_rfc3339(),
            "deadline": self.deadline.to_rfc3339(),
            "overdue": self.overdue,
            "next_point": next_point,
            "alerts_emitted": self.alerts_emitted,
            "order_id": self.order_id,
            "seller_id": self.seller_id,
            "marketplace": self.marketplace,
            "topic": self.topic,
            "partition": self.partition,
        })
    }
}

/// A candidate of [`select`]'s heap, ordered by its sort key.
struct Candidate(Entry);

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.0.sort_key() == other.0.sort_key()
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.sort_key().cmp(&other.0.sort_key())
    }
}

/// The first `limit + 1` entries of the worker's partitions that match, after the
/// cursor, sorted. `topics` names the worker's input topics by index. Only an instance
/// that makes the cut so far is copied out of its partition's state.
pub fn select(worker: &Worker, topics: &[String], query: &Query) -> Vec<Entry> {
    let rules = worker.rules();
    let keep = query.limit.saturating_add(1);
    let after = query.after.as_ref().map(Cursor::sort_key);
    let mut best: BinaryHeap<Candidate> = BinaryHeap::with_capacity(keep.min(1024) + 1);
    for (id, task) in worker.tasks().filter(|(_, t)| !t.is_restoring()) {
        let topic = topics[id.topic as usize].as_str();
        task.state().each_open_deadline(|view| {
            if !query.filter.admits(&view) {
                return;
            }
            let rule: &str = &rules.rule(view.opened.rule).name;
            let key = (
                view.opened.deadline.0,
                rule,
                view.opened.key,
                topic,
                id.partition,
            );
            if after.is_some_and(|a| key <= a) {
                return;
            }
            if best.len() == keep && best.peek().is_some_and(|worst| key >= worst.0.sort_key()) {
                return;
            }
            best.push(Candidate(Entry::new(rules, &view, topic, id.partition)));
            if best.len() > keep {
                best.pop();
            }
        });
    }
    best.into_sorted_vec().into_iter().map(|c| c.0).collect()
}

/// The open instances of (rule, key) on the worker's partitions (one, unless the key
/// was written to two partitions), sorted.
pub fn find(worker: &Worker, topics: &[String], rule: RuleId, key: &str) -> Vec<Entry> {
    let rules = worker.rules();
    let mut found: Vec<Entry> = worker
        .tasks()
        .filter(|(_, t)| !t.is_restoring())
        .filter_map(|(id, task)| {
            task.state().open_deadline(rule, key, |view| {
                Entry::new(rules, &view, &topics[id.topic as usize], id.partition)
            })
        })
        .collect();
    found.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    found
}

/// One page of the merged answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
}

impl Page {
    /// The page as the OpenAPI document's `DeadlinePage` schema has it.
    pub fn to_json(&self) -> Value {
        json!({
            "deadlines": self.entries.iter().map(Entry::to_json).collect::<Vec<_>>(),
            "next": self.next.as_ref().map(Cursor::encode),
        })
    }
}

/// Merges the workers' answers to one query (each sorted, at most `limit + 1` long)
/// into its page.
pub fn merge(answers: impl IntoIterator<Item = Vec<Entry>>, limit: usize) -> Page {
    let mut entries: Vec<Entry> = answers.into_iter().flatten().collect();
    entries.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let more = entries.len() > limit;
    entries.truncate(limit);
    let next = if more {
        entries.last().map(Entry::cursor)
    } else {
        None
    };
    Page { entries, next }
}

#[cfg(test)]
mod tests;
