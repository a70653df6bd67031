//! What the engine says happened: typed effects pushed into a [`Sink`] the caller owns.
//!
//! # Ground rules
//!
//! * The engine reports every fact once, as it happens, in the order it happens: the
//!   alerts it emits, the instances it opens and closes (the compliance report counts
//!   them), and every change to the facts it remembers for a retention window (the live
//!   daemon writes them to its changelog so that the state survives a restart).
//! * A sink takes what it needs and ignores the rest; `Vec<Alert>` is the sink of a
//!   caller that wants only alerts. Adding a kind of fact is one new variant here and
//!   one new match arm in the sinks that care, never a new parameter.
//! * Effects borrow from the engine's state for the duration of the call: a sink that
//!   keeps something copies it.

use super::alert::{Alert, AlertRef, Outcome};
use super::event::{EventType, Money};
use super::rules::{Profile, RuleId};
use super::time::{Millis, Span};

/// One fact.
#[derive(Debug)]
pub enum Effect<'a> {
    /// An alert to deliver (a sink that keeps it takes [`AlertRef::to_alert`]).
    Alert(AlertRef<'a>),
    /// An instance opened (contract 4.1), and the number it has while open.
    Opened(Opened<'a>, InstanceId),
    /// An instance closed (contract 4.3).
    Closed(Closed<'a>),
    /// A remembered fact changed.
    Changed(Change),
}

/// Names an open instance among its partition's open instances, from its
/// [`Effect::Opened`] to its [`Effect::Closed`]; given to another after it closes.
pub type InstanceId = u32;

/// A newly opened instance, with everything needed to rebuild it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    pub rule: RuleId,
    pub key: &'a str,
    pub opened_by: &'a str,
    pub order_id: Option<&'a str>,
    pub seller_id: Option<&'a str>,
    pub marketplace: Option<&'a str>,
    /// `s`.
    pub started: Millis,
    /// `d`.
    pub deadline: Millis,
    /// The warning leads the instance's points were computed from, largest first.
    pub leads: &'a [Span],
    /// Index of its first point into `leads` (`leads.len()` is the breach).
    pub first_point: u8,
    /// Which of the rule's overrides it opened with (0: none); its texts follow it.
    pub profile: Profile,
}

/// A closed instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed<'a> {
    /// The number its [`Effect::Opened`] gave it.
    pub instance: InstanceId,
    pub rule: RuleId,
    pub key: &'a str,
    pub seller_id: Option<&'a str>,
    pub marketplace: Option<&'a str>,
    pub started: Millis,
    pub deadline: Millis,
    /// `t`, the closing event's time.
    pub at: Millis,
    pub outcome: Outcome,
    pub closed_by: EventType,
}

/// A change to the facts remembered for the retention window. Keys are the
/// fingerprints of [`super::retained`]; stamps are clock times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// An event (`source`, `id`) was taken.
    Seen { id: u64, stamp: Millis },
    /// An alert id was emitted.
    Emitted { id: u64, stamp: Millis },
    /// The latest `order.placed` of an order carried this total (or none).
    Total {
        order: u64,
        total: Option<Money>,
        stamp: Millis,
    },
    /// `L` of a (rule, key) with no open instance.
    Last { rule_key: u64, last: Millis },
}

/// Where the engine pushes its effects.
pub trait Sink {
    fn emit(&mut self, effect: Effect<'_>);
}

/// A caller that wants the alerts only.
impl Sink for Vec<Alert> {
    #[inline]
    fn emit(&mut self, effect: Effect<'_>) {
        if let Effect::Alert(alert) = effect {
            self.push(alert.to_alert());
        }
    }
}
