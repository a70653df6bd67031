//! What the compliance report remembers of a history (contract section 11): every
//! instance's lifecycle, from the engine's effects, and the few order events the
//! marketplace metrics count, from the applied events themselves.
//!
//! # Ground rules
//!
//! * Pure: fed effects and applied events by the caller, in input order; no I/O.
//! * Only applied events are observed (the caller passes nothing else), so duplicates
//!   and dead letters count nowhere, as section 11 says.
//! * Everything is kept with its time; which facts count "at `E`" is decided later
//!   ([`super::tally`]), so one pass over the input serves any window.
//! * A group is interned once as its (`seller_id`, `marketplace`) pair, blank or absent
//!   being `""`; `--by` picks from the pair later.

use std::collections::HashMap;

use crate::core::effect::{Effect, Sink};
use crate::core::event::{Event, EventType, Field};
use crate::core::rules::RuleId;
use crate::core::time::Millis;

/// Index into [`Facts::groups`].
pub type GroupId = u32;

/// One instance, as opened and, maybe, closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceFact {
    pub rule: RuleId,
    pub group: GroupId,
    /// `s`.
    pub started: Millis,
    /// `d`.
    pub deadline: Millis,
    /// `t` and the closing event's type, once closed.
    pub closed: Option<(Millis, EventType)>,
}

/// The events of one order that the metrics read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderFacts {
    /// `order.placed` with `fulfillment_channel` MFN: time and group.
    pub placements: Vec<(Millis, GroupId)>,
    /// `order.cancelled`: time, and whether the buyer cancelled.
    pub cancels: Vec<(Millis, bool)>,
    /// `shipment.confirmed`, in input order: time, non-empty tracking number, group.
    pub confirms: Vec<(Millis, bool, GroupId)>,
    /// `shipment.carrier_scanned` and `shipment.delivered`: times.
    pub scans: Vec<Millis>,
}

/// Everything the report needs from a history.
#[derive(Debug, Default)]
pub struct Facts {
    /// (`seller_id`, `marketplace`), `""` when absent.
    pub groups: Vec<(String, String)>,
    group_ids: HashMap<(String, String), GroupId>,
    pub instances: Vec<InstanceFact>,
    /// The open instance of each (rule, key), as an index into `instances`.
    open: HashMap<(RuleId, String), usize>,
    pub orders: HashMap<String, OrderFacts>,
}

impl Facts {
    pub fn new() -> Facts {
        Facts::default()
    }

    fn group(&mut self, seller_id: Option<&str>, marketplace: Option<&str>) -> GroupId {
        let key = (
            seller_id.unwrap_or_default().trim().to_string(),
            marketplace.unwrap_or_default().trim().to_string(),
        );
        if let Some(&id) = self.group_ids.get(&key) {
            return id;
        }
        let id = self.groups.len() as GroupId;
        self.groups.push(key.clone());
        self.group_ids.insert(key, id);
        id
    }

    /// Takes note of one applied event (after the engine has applied it).
    pub fn observe(&mut self, event: &Event<'_>) {
        let d = &event.data;
        let Some(order) = d.text(Field::OrderId) else {
            return;
        };
        let t = event.time;
        match event.event_type {
            EventType::OrderPlaced => {
                if d.text(Field::FulfillmentChannel).map(str::trim) != Some("MFN") {
                    return;
                }
                let g = self.group(d.text(Field::SellerId), d.text(Field::Marketplace));
                self.order(order).placements.push((t, g));
            }
            EventType::OrderCancelled => {
                let by_buyer = d.text(Field::CancelledBy).map(str::trim) == Some("buyer");
                self.order(order).cancels.push((t, by_buyer));
            }
            EventType::ShipmentConfirmed => {
                let tracked = d.text(Field::TrackingNumber).is_some();
                let g = self.group(d.text(Field::SellerId), d.text(Field::Marketplace));
                self.order(order).confirms.push((t, tracked, g));
            }
            EventType::ShipmentCarrierScanned | EventType::ShipmentDelivered => {
                self.order(order).scans.push(t);
            }
            _ => {}
        }
    }

    fn order(&mut self, order: &str) -> &mut OrderFacts {
        if !self.orders.contains_key(order) {
            self.orders.insert(order.to_string(), OrderFacts::default());
        }
        self.orders.get_mut(order).expect("just inserted")
    }
}

/// The engine's effects feed the instance lifecycle; alerts are not needed.
impl Sink for Facts {
    fn emit(&mut self, effect: Effect<'_>) {
        match effect {
            Effect::Opened(o) => {
                let group = self.group(o.seller_id, o.marketplace);
                self.open
                    .insert((o.rule, o.key.to_string()), self.instances.len());
                self.instances.push(InstanceFact {
                    rule: o.rule,
                    group,
                    started: o.started,
                    deadline: o.deadline,
                    closed: None,
                });
            }
            Effect::Closed(c) => {
                if let Some(i) = self.open.remove(&(c.rule, c.key.to_string())) {
                    self.instances[i].closed = Some((c.at, c.closed_by));
                }
            }
            Effect::Alert(_) | Effect::Changed(_) => {}
        }
    }
}
