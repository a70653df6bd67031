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

use hashbrown::HashTable;

use crate::core::effect::{Effect, Sink};
use crate::core::event::{Event, EventType, Field};
use crate::core::rules::RuleId;
use crate::core::time::Millis;

/// No instance, in [`Facts::open`].
const NONE: u32 = u32::MAX;

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

/// One event of an order that the metrics read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OrderEvent {
    /// `order.placed` with `fulfillment_channel` MFN.
    Placed(Millis, GroupId),
    /// `order.cancelled`, and whether the buyer cancelled.
    Cancelled(Millis, bool),
    /// `shipment.confirmed`, and whether it has a non-empty tracking number.
    Confirmed(Millis, bool, GroupId),
    /// `shipment.carrier_scanned` or `shipment.delivered`.
    Scanned(Millis),
}

/// One entry of [`Facts`]' order log: the event, and its order id (a hash of it, and
/// where its text is in the log's text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Logged {
    hash: u64,
    text: (u32, u32),
    event: OrderEvent,
}

impl Logged {
    /// Its order id, in the log's `text`.
    fn id<'t>(&self, text: &'t str) -> &'t str {
        &text[self.text.0 as usize..self.text.1 as usize]
    }
}

/// The events of one order that the metrics read, in input order: a run of the sorted
/// log ([`Facts::orders`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderFacts<'a> {
    events: &'a [Logged],
}

impl OrderFacts<'_> {
    /// `order.placed` with `fulfillment_channel` MFN: time and group.
    pub fn placements(&self) -> impl Iterator<Item = (Millis, GroupId)> + '_ {
        self.events.iter().filter_map(|e| match e.event {
            OrderEvent::Placed(t, g) => Some((t, g)),
            _ => None,
        })
    }

    /// `order.cancelled`: time, and whether the buyer cancelled.
    pub fn cancels(&self) -> impl Iterator<Item = (Millis, bool)> + '_ {
        self.events.iter().filter_map(|e| match e.event {
            OrderEvent::Cancelled(t, by_buyer) => Some((t, by_buyer)),
            _ => None,
        })
    }

    /// `shipment.confirmed`, in input order: time, non-empty tracking number, group.
    pub fn confirms(&self) -> impl Iterator<Item = (Millis, bool, GroupId)> + '_ {
        self.events.iter().filter_map(|e| match e.event {
            OrderEvent::Confirmed(t, tracked, g) => Some((t, tracked, g)),
            _ => None,
        })
    }

    /// `shipment.carrier_scanned` and `shipment.delivered`: times.
    pub fn scans(&self) -> impl Iterator<Item = Millis> + '_ {
        self.events.iter().filter_map(|e| match e.event {
            OrderEvent::Scanned(t) => Some(t),
            _ => None,
        })
    }
}

/// Everything the report needs from a history.
#[derive(Debug, Default)]
pub struct Facts {
    /// (`seller_id`, `marketplace`), `""` when absent.
    pub groups: Vec<(String, String)>,
    /// Indices into `groups`, by [`group_hash`].
    group_ids: HashTable<GroupId>,
    /// The group last looked up: consecutive events are often of one seller.
    last_group: Option<GroupId>,
    pub instances: Vec<InstanceFact>,
    /// The open instances, by [`crate::core::effect::InstanceId`], as indices into `instances` (`NONE` for
    /// a number not in use).
    open: Vec<u32>,
    /// Every order event the metrics read, in input order: appended as read, grouped
    /// by order only at the end ([`Self::orders`]), so reading a history never looks an
    /// order up.
    order_log: Vec<Logged>,
    /// The order ids of `order_log`, one after the other.
    order_text: String,
}

/// The order events of a history, grouped by order ([`Facts::orders`]).
pub struct Orders<'a> {
    log: Vec<Logged>,
    text: &'a str,
}

impl Orders<'_> {
    /// Each order's events, in input order; orders in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = OrderFacts<'_>> {
        self.log
            .chunk_by(|a, b| a.hash == b.hash && a.id(self.text) == b.id(self.text))
            .map(|events| OrderFacts { events })
    }
}

impl Facts {
    pub fn new() -> Facts {
        Facts::default()
    }

    fn group(&mut self, seller_id: Option<&str>, marketplace: Option<&str>) -> GroupId {
        let seller = seller_id.unwrap_or_default().trim();
        let market = marketplace.unwrap_or_default().trim();
        if let Some(last) = self.last_group {
            let (s, m) = &self.groups[last as usize];
            if s == seller && m == market {
                return last;
            }
        }
        let groups = &mut self.groups;
        let h = group_hash(seller, market);
        let same = |&id: &GroupId| {
            let (s, m) = &groups[id as usize];
            s == seller && m == market
        };
        let id = match self.group_ids.find(h, same) {
            Some(&id) => id,
            None => {
                let id = groups.len() as GroupId;
                groups.push((seller.to_string(), market.to_string()));
                self.group_ids.insert_unique(h, id, |&id| {
                    let (s, m) = &groups[id as usize];
                    group_hash(s, m)
                });
                id
            }
        };
        self.last_group = Some(id);
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
                self.log(order, OrderEvent::Placed(t, g));
            }
            EventType::OrderCancelled => {
                let by_buyer = d.text(Field::CancelledBy).map(str::trim) == Some("buyer");
                self.log(order, OrderEvent::Cancelled(t, by_buyer));
            }
            EventType::ShipmentConfirmed => {
                let tracked = d.text(Field::TrackingNumber).is_some();
                let g = self.group(d.text(Field::SellerId), d.text(Field::Marketplace));
                self.log(order, OrderEvent::Confirmed(t, tracked, g));
            }
            EventType::ShipmentCarrierScanned | EventType::ShipmentDelivered => {
                self.log(order, OrderEvent::Scanned(t));
            }
            _ => {}
        }
    }

    fn log(&mut self, order: &str, event: OrderEvent) {
        let from = self.order_text.len() as u32;
        self.order_text.push_str(order);
        self.order_log.push(Logged {
            hash: xxhash_rust::xxh3::xxh3_64(order.as_bytes()),
            text: (from, self.order_text.len() as u32),
            event,
        });
    }

    /// The order events, grouped by order: sorted by the hash of the order id, then the
    /// id itself (two ids with one hash stay apart), and stably, so that each order's
    /// events stay in input order.
    pub fn orders(&self) -> Orders<'_> {
        let text = self.order_text.as_str();
        let mut log = self.order_log.clone();
        log.sort_by(|a, b| a.hash.cmp(&b.hash).then_with(|| a.id(text).cmp(b.id(text))));
        Orders { log, text }
    }
}

/// Hashes a group's (`seller_id`, `marketplace`) pair.
fn group_hash(seller: &str, market: &str) -> u64 {
    let seed = xxhash_rust::xxh3::xxh3_64(seller.as_bytes());
    xxhash_rust::xxh3::xxh3_64_with_seed(market.as_bytes(), seed)
}

/// The engine's effects feed the instance lifecycle; alerts are not needed.
impl Sink for Facts {
    fn emit(&mut self, effect: Effect<'_>) {
        match effect {
            Effect::Opened(o, id) => {
                let group = self.group(o.seller_id, o.marketplace);
                let id = id as usize;
                if self.open.len() <= id {
                    self.open.resize(id + 1, NONE);
                }
                self.open[id] = self.instances.len() as u32;
                self.instances.push(InstanceFact {
                    rule: o.rule,
                    group,
                    started: o.started,
                    deadline: o.deadline,
                    closed: None,
                });
            }
            Effect::Closed(c) => {
                if let Some(i) = self.open.get_mut(c.instance as usize) {
                    let i = std::mem::replace(i, NONE);
                    if let Some(instance) = self.instances.get_mut(i as usize) {
                        instance.closed = Some((c.at, c.closed_by));
                    }
                }
            }
            Effect::Alert(_) | Effect::Changed(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(o: &OrderFacts<'_>) -> Vec<i64> {
        o.scans().map(|t| t.0).collect()
    }

    #[test]
    fn order_events_are_grouped_by_order_in_input_order() {
        let mut facts = Facts::new();
        for (i, order) in ["A", "B", "A", "C", "B", "A"].into_iter().enumerate() {
            facts.log(order, OrderEvent::Scanned(Millis(i as i64)));
        }
        let orders = facts.orders();
        let mut groups: Vec<Vec<i64>> = orders.iter().map(|o| times(&o)).collect();
        groups.sort();
        assert_eq!(groups, [vec![0, 2, 5], vec![1, 4], vec![3]]);
    }

    #[test]
    fn two_orders_whose_ids_share_a_hash_stay_apart() {
        let mut facts = Facts::new();
        for (i, order) in ["X", "Y", "X"].into_iter().enumerate() {
            facts.log(order, OrderEvent::Scanned(Millis(i as i64)));
        }
        for logged in &mut facts.order_log {
            logged.hash = 42;
        }
        let orders = facts.orders();
        let mut groups: Vec<Vec<i64>> = orders.iter().map(|o| times(&o)).collect();
        groups.sort();
        assert_eq!(groups, [vec![0, 2], vec![1]]);
    }
}
