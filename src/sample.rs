//! A deterministic, realistic stream of seller events (CloudEvents JSON lines), for the
//! benches, the memory measurement and a demo mode. Pure: no I/O, no clock.
//!
//! # Ground rules
//!
//! * **Deterministic.** The same [`SampleConfig`] yields the same lines, byte for byte, on
//!   every platform: the only randomness is a seeded SplitMix64 ([`Rng`]). Plans (and
//!   their reordering) and noise draw from two separate streams, so changing the
//!   duplicate, unknown or malformed rate leaves every lifecycle event's time and data as
//!   they were (event ids shift, as noise lines take ids too).
//! * **Lifecycles.** `orders + threads + returns` lifecycles start in time order, evenly
//!   spread (with jitter) over `[start, start + span)`, their kinds shuffled. Each plans
//!   its events at or after its start; the last ones run up to about ten days past
//!   `start + span`. The mix of outcomes (on time, late, never, cancelled, ...) is in the
//!   `plan_*` functions, with the rules each outcome exercises.
//! * **Order.** Lines come in the order of their `time`, except that with probability
//!   `reorder_rate` an event changes places with the one before it in its lifecycle (it
//!   arrives late: its `time` is earlier than the line before it), and duplicates are
//!   re-sent a few lines after their original.
//! * **Noise**, drawn per lifecycle event line: with probability `duplicate_rate` it is
//!   re-sent verbatim 1 to 40 lines later; with `unknown_rate` a well-formed event of a
//!   type the engine does not know follows it; with `malformed_rate` a dead letter
//!   follows it (not JSON, not an object, a bad envelope, or a missing or mistyped field).
//! * **Ids.** Event ids are unique per source (`sp-api`, `wms`, `helpdesk`), dead letters
//!   included; only duplicates repeat one. Order, thread and return ids are unique.
//! * **Streaming.** Memory is the events planned but not yet written (lifecycles in
//!   flight), not the length of the stream, so 10-million-line files stream in bounded
//!   memory.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Write as _;
use std::rc::Rc;

use crate::core::time::{Millis, Span};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// What to generate. Rates are probabilities per lifecycle event line, in `[0, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleConfig {
    pub seed: u64,
    /// The earliest lifecycle start (the first event's time).
    pub start: Millis,
    /// Order lifecycles (`order.placed` and what follows).
    pub orders: usize,
    /// Customer message threads.
    pub threads: usize,
    /// Return requests.
    pub returns: usize,
    /// Lifecycles start within `[start, start + span)`; their later events run past it.
    pub span: Span,
    pub duplicate_rate: f64,
    pub malformed_rate: f64,
    pub unknown_rate: f64,
    pub reorder_rate: f64,
}

/// 2026-11-02T00:00:00Z.
const DEFAULT_START: Millis = Millis(1_793_577_600_000);

/// Lines the default configuration yields (checked by a test), so [`SampleConfig::sized`]
/// can scale it.
const DEFAULT_LINES: usize = 29_400;

impl Default for SampleConfig {
    /// A marketplace platform's two days: 3,000 orders, 1,500 message threads and 300
    /// return requests a day, 1% duplicates, 0.2% dead letters, 2% unknown types, 2% of
    /// events arriving out of order. About 29,400 lines.
    fn default() -> Self {
        SampleConfig {
            seed: 0x5EED_2026,
            start: DEFAULT_START,
            orders: 6_000,
            threads: 3_000,
            returns: 600,
            span: Span(2 * DAY),
            duplicate_rate: 0.01,
            malformed_rate: 0.002,
            unknown_rate: 0.02,
            reorder_rate: 0.02,
        }
    }
}

impl SampleConfig {
    /// The default mix and daily rate, scaled (more lifecycles over a longer span) to
    /// yield at least `lines` lines; take the first `lines` of [`generate`].
    pub fn sized(lines: usize) -> SampleConfig {
        let d = SampleConfig::default();
        let factor = lines as f64 * 1.05 / DEFAULT_LINES as f64;
        let scale = |n: usize| ((n as f64 * factor).ceil() as usize).max(1);
        SampleConfig {
            orders: scale(d.orders),
            threads: scale(d.threads),
            returns: scale(d.returns),
            span: Span((d.span.0 as f64 * factor) as i64),
            ..d
        }
    }
}

/// What a generated line is, so tests and demos can tell noise from events.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LineKind {
    /// An event of a lifecycle, first sending.
    Event,
    /// A verbatim copy of an earlier line.
    Duplicate,
    /// A well-formed event of a type the engine does not know.
    Unknown,
    /// A record the decoder must dead-letter.
    Malformed,
}

/// One generated line: CloudEvents JSON, no trailing newline.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SampleLine {
    pub kind: LineKind,
    pub text: String,
}

/// Events in input order, each one CloudEvents JSON line (no trailing newline).
pub fn generate(cfg: &SampleConfig) -> impl Iterator<Item = String> {
    lines(cfg).map(|l| l.text)
}

/// [`generate`], with each line's [`LineKind`].
pub fn lines(cfg: &SampleConfig) -> Stream {
    Stream::new(cfg.clone())
}

/// `n` customer messages on distinct threads, none answered, spread evenly over one hour
/// from `start`: every `customer_reply` instance stays open (its first warning is 24h
/// away) and no alert fires. Each carries an order id, a seller id and a marketplace, as
/// real messages do, so the engine stores what it would in production.
pub fn unanswered_messages(n: usize, start: Millis) -> impl Iterator<Item = String> {
    let sellers = seller_pool(0);
    (0..n as u64).map(move |i| {
        let time = Millis(start.0 + (i as i64 * HOUR) / n.max(1) as i64);
        let order = OrderRef::new(0, i);
        let mut j = Json::envelope(
            &format!("hd-{i:010}"),
            "helpdesk",
            "customer_message.received",
            &time.to_rfc3339(),
        );
        j.text("thread_id", &format!("T-{i:010}"));
        j.text("message_id", &format!("M-{i:010}"));
        j.text("order_id", &order.id());
        j.common(&sellers[order.seller], order.market);
        j.finish()
    })
}

/// SplitMix64 (Steele, Lea and Flood, 2014): 64 bits of state, passes BigCrush, and is
/// exactly reproducible everywhere. Not for anything but sample data.
#[derive(Clone, Debug)]
struct Rng(u64);

/// The golden-ratio increment of SplitMix64.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function; a bijection on `u64`, so distinct inputs never collide.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        Rng(mix(seed ^ mix(stream)))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `[0, n)` (Lemire's multiply-shift; the bias is below 2^-40 here).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in `[lo, hi)` milliseconds (`lo` when the range is empty).
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo).max(1) as u64) as i64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A marketplace: code, Amazon order-id prefix, currency, share of orders in percent.
#[derive(Debug)]
struct Market {
    code: &'static str,
    prefix: &'static str,
    currency: &'static str,
    share: u64,
}

const MARKETS: &[Market] = &[
    Market {
        code: "DE",
        prefix: "028",
        currency: "EUR",
        share: 30,
    },
    Market {
        code: "UK",
        prefix: "203",
        currency: "GBP",
        share: 22,
    },
    Market {
        code: "FR",
        prefix: "171",
        currency: "EUR",
        share: 14,
    },
    Market {
        code: "NL",
        prefix: "302",
        currency: "EUR",
        share: 10,
    },
    Market {
        code: "IT",
        prefix: "404",
        currency: "EUR",
        share: 10,
    },
    Market {
        code: "ES",
        prefix: "406",
        currency: "EUR",
        share: 8,
    },
    Market {
        code: "BE",
        prefix: "305",
        currency: "EUR",
        share: 2,
    },
    Market {
        code: "PL",
        prefix: "408",
        currency: "PLN",
        share: 2,
    },
    Market {
        code: "SE",
        prefix: "407",
        currency: "SEK",
        share: 2,
    },
];

const SELLERS: usize = 40;
const CARRIERS: &[&str] = &[
    "DHL",
    "DPD",
    "UPS",
    "GLS",
    "PostNL",
    "Royal Mail",
    "Colissimo",
    "Hermes",
    "InPost",
];
const CANCEL_REASONS: &[&str] = &[
    "BuyerCanceled",
    "NoInventory",
    "ShippingAddressUndeliverable",
    "CustomerExchange",
];
const CLOSE_REASONS: &[&str] = &[
    "Outside the return window",
    "Item not eligible for return",
    "Refunded without return",
    "Buyer withdrew the request",
];

/// Seller ids in the style of Amazon merchant tokens (`A` and 13 letters or digits).
fn seller_pool(seed: u64) -> Vec<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    let mut rng = Rng::new(seed, 7);
    (0..SELLERS)
        .map(|_| {
            std::iter::once('A')
                .chain((0..13).map(|_| rng.pick(ALPHABET) as char))
                .collect()
        })
        .collect()
}

/// The market whose cumulative share interval holds `percentile` (0 to 99).
fn market_by_share(mut percentile: u64) -> &'static Market {
    for m in MARKETS {
        if percentile < m.share {
            return m;
        }
        percentile -= m.share;
    }
    &MARKETS[0]
}

/// An order by index: its id, and the marketplace and seller it belongs to (derived from
/// the index, so a message or return about the order agrees with the order itself).
#[derive(Clone, Copy, Debug)]
struct OrderRef {
    index: u64,
    market: &'static Market,
    seller: usize,
}

impl OrderRef {
    fn new(seed: u64, index: u64) -> OrderRef {
        let h = mix(seed ^ mix(index ^ 0x0DE5));
        OrderRef {
            index,
            market: market_by_share(h % 100),
            seller: ((h >> 32) % SELLERS as u64) as usize,
        }
    }

    /// `302-1234567-0000042`: unique for the first 10^8 indices.
    fn id(&self) -> String {
        let high = (self.index / 10_000_000) % 10;
        let middle = mix(self.index ^ 0x0D) % 1_000_000 + 1_000_000 * high;
        format!(
            "{}-{middle:07}-{:07}",
            self.market.prefix,
            self.index % 10_000_000
        )
    }
}

/// One event of a lifecycle.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Placed,
    Cancelled {
        reason: Option<&'static str>,
    },
    OutOfStock,
    Confirmed {
        tracking: bool,
        signature: bool,
    },
    Scanned,
    Delivered,
    Received,
    Replied,
    NoResponse,
    Requested,
    Authorized {
        required: bool,
        label: bool,
        address: bool,
    },
    Closed {
        reason: Option<&'static str>,
    },
    ItemReceived,
    RefundRequested,
    RefundIssued {
        cents: u64,
    },
}

/// What all events of one lifecycle share.
#[derive(Debug)]
struct Subject {
    order: OrderRef,
    /// Whether events carry `order_id` (messages may not).
    has_order: bool,
    /// Thread or return index.
    key: u64,
    afn: bool,
    total_cents: u64,
    total_as_number: bool,
    ship_by: Millis,
    /// The latest delivery date and the UTC offset (minutes) it is written with.
    deliver_by: Option<(Millis, i64)>,
    carrier: &'static str,
}

/// A planned event waiting in the merge heap, ordered by `(emit, seq)`.
#[derive(Debug)]
struct Pending {
    /// When it is written: its `time`, or later when it arrives out of order.
    emit: Millis,
    seq: u64,
    time: Millis,
    step: Step,
    subject: Rc<Subject>,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.emit, self.seq) == (other.emit, other.seq)
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    /// Reversed, so that `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.emit, other.seq).cmp(&(self.emit, self.seq))
    }
}

/// Next event id per source.
#[derive(Debug, Default)]
struct Ids {
    sp_api: u64,
    wms: u64,
    helpdesk: u64,
}

impl Ids {
    /// SP-API notification ids look like UUIDs; the low 64 bits are a bijection of the
    /// counter, so they never repeat.
    fn next(&mut self, source: &str) -> String {
        let (counter, format): (&mut u64, fn(u64) -> String) = match source {
            "sp-api" => (&mut self.sp_api, |n| {
                let (hi, lo) = (mix(n ^ 0xA11CE), mix(n));
                format!(
                    "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                    hi >> 32,
                    (hi >> 16) & 0xFFFF,
                    hi & 0xFFF,
                    lo >> 48,
                    lo & 0xFFFF_FFFF_FFFF
                )
            }),
            "wms" => (&mut self.wms, |n| format!("WMS-{n:010}")),
            _ => (&mut self.helpdesk, |n| format!("hd-{n:010}")),
        };
        *counter += 1;
        format(*counter)
    }
}

/// The generator: plans lifecycles in start order and merges their events by time.
#[derive(Debug)]
pub struct Stream {
    cfg: SampleConfig,
    plans: Rng,
    noise: Rng,
    sellers: Vec<String>,
    /// Lifecycles started, and those left to start per kind (orders, threads, returns).
    started: usize,
    left: [usize; 3],
    heap: BinaryHeap<Pending>,
    seq: u64,
    ids: Ids,
    ready: VecDeque<SampleLine>,
    /// Duplicates to re-send once `written` reaches their due count.
    resend: Vec<(u64, String)>,
    written: u64,
}

impl Stream {
    fn new(cfg: SampleConfig) -> Stream {
        Stream {
            plans: Rng::new(cfg.seed, 1),
            noise: Rng::new(cfg.seed, 2),
            sellers: seller_pool(cfg.seed),
            started: 0,
            left: [cfg.orders, cfg.threads, cfg.returns],
            heap: BinaryHeap::new(),
            seq: 0,
            ids: Ids::default(),
            ready: VecDeque::new(),
            resend: Vec::new(),
            written: 0,
            cfg,
        }
    }

    fn total(&self) -> usize {
        self.cfg.orders + self.cfg.threads + self.cfg.returns
    }

    /// Start of lifecycle `i`: evenly spread over the span, jittered within its slot,
    /// strictly increasing.
    fn start_of(&self, i: usize) -> Millis {
        let (span, n) = (
            i128::from(self.cfg.span.0.max(0)),
            self.total().max(1) as i128,
        );
        let at = |k: usize| (span * k as i128 / n) as i64;
        let (lo, hi) = (at(i), at(i + 1));
        let jitter = mix(self.cfg.seed ^ mix(i as u64)) % (hi - lo).max(1) as u64;
        Millis(self.cfg.start.0 + lo + jitter as i64)
    }

    fn next_start(&self) -> Option<Millis> {
        (self.started < self.total()).then(|| self.start_of(self.started))
    }

    /// Plans the next lifecycle (its kind drawn from the kinds left) and queues its events.
    fn start_lifecycle(&mut self, t0: Millis) {
        let pick = self.plans.below(self.left.iter().sum::<usize>() as u64) as usize;
        let kind = if pick < self.left[0] {
            0
        } else if pick < self.left[0] + self.left[1] {
            1
        } else {
            2
        };
        let totals = [self.cfg.orders, self.cfg.threads, self.cfg.returns];
        let index = (totals[kind] - self.left[kind]) as u64;
        self.left[kind] -= 1;
        self.started += 1;
        let orders_so_far = (self.cfg.orders - self.left[0]) as u64;
        let (subject, steps) = match kind {
            0 => plan_order(&mut self.plans, self.cfg.seed, index, t0),
            1 => plan_thread(&mut self.plans, &self.cfg, index, t0, orders_so_far),
            _ => plan_return(&mut self.plans, &self.cfg, index, t0),
        };
        self.queue(Rc::new(subject), steps);
    }

    /// Pushes a lifecycle's steps, swapping neighbours per `reorder_rate`; within the
    /// lifecycle, an event is written no earlier than the one queued before it.
    fn queue(&mut self, subject: Rc<Subject>, mut steps: Vec<(Millis, Step)>) {
        steps.sort_by_key(|(t, _)| *t);
        let mut i = 1;
        while i < steps.len() {
            if self.plans.chance(self.cfg.reorder_rate) {
                steps.swap(i - 1, i);
                i += 1;
            }
            i += 1;
        }
        let mut emit = Millis::MIN;
        for (time, step) in steps {
            emit = emit.max(time);
            self.seq += 1;
            self.heap.push(Pending {
                emit,
                seq: self.seq,
                time,
                step,
                subject: Rc::clone(&subject),
            });
        }
    }

    /// Writes the earliest pending event and the noise that follows it.
    fn write_next(&mut self) {
        let Some(p) = self.heap.pop() else { return };
        let source = source_of(p.step, &p.subject);
        let id = self.ids.next(source);
        let text = render(&p, &id, source, &self.sellers);
        if self.noise.chance(self.cfg.duplicate_rate) {
            let due = self.written + 1 + self.noise.below(40);
            self.resend.push((due, text.clone()));
        }
        let (time, order) = (p.time, p.subject.order);
        let unknown = self
            .noise
            .chance(self.cfg.unknown_rate)
            .then(|| SampleLine {
                kind: LineKind::Unknown,
                text: unknown_event(&mut self.noise, &mut self.ids, time, &order),
            });
        let malformed = self
            .noise
            .chance(self.cfg.malformed_rate)
            .then(|| SampleLine {
                kind: LineKind::Malformed,
                text: malformed_line(&mut self.noise, &mut self.ids, time, &order, &text),
            });
        self.ready.push_back(SampleLine {
            kind: LineKind::Event,
            text,
        });
        self.ready.extend(unknown);
        self.ready.extend(malformed);
    }

    /// The first duplicate due (or any, once nothing else is left).
    fn due_resend(&mut self, any: bool) -> Option<SampleLine> {
        let i = self
            .resend
            .iter()
            .position(|(due, _)| any || *due <= self.written)?;
        let (_, text) = self.resend.remove(i);
        Some(SampleLine {
            kind: LineKind::Duplicate,
            text,
        })
    }
}

impl Iterator for Stream {
    type Item = SampleLine;

    fn next(&mut self) -> Option<SampleLine> {
        loop {
            if let Some(line) = self.ready.pop_front().or_else(|| self.due_resend(false)) {
                self.written += 1;
                return Some(line);
            }
            match (self.heap.peek().map(|p| p.emit), self.next_start()) {
                (Some(emit), Some(start)) if emit < start => self.write_next(),
                (Some(_), None) => self.write_next(),
                (_, Some(start)) => self.start_lifecycle(start),
                (None, None) => return self.due_resend(true),
            }
        }
    }
}

fn source_of(step: Step, subject: &Subject) -> &'static str {
    use Step::*;
    match step {
        Received | Replied | NoResponse => "helpdesk",
        Confirmed { .. } | Scanned => "wms",
        Delivered if !subject.afn => "wms",
        _ => "sp-api",
    }
}

/// Orders (rules `ship_by`, `delivery`, `carrier_scan`, `out_of_stock_cancel`; checks
/// `tracking_missing`, `signature_missing`). 15% are fulfilled by Amazon (AFN: no seller
/// deadlines). Of the rest: 7% cancelled, 4% out of stock (mostly cancelled within the
/// hour), 2% never shipped, the others shipped ([`plan_shipment`]).
fn plan_order(rng: &mut Rng, seed: u64, index: u64, t0: Millis) -> (Subject, Vec<(Millis, Step)>) {
    let order = OrderRef::new(seed, index);
    let ship_by = Millis((t0.0 + rng.between(DAY, 3 * DAY)) / HOUR * HOUR);
    let offset = match order.market.code {
        "UK" => 0,
        _ if rng.chance(0.5) => 60,
        _ => 0,
    };
    let deliver_by = rng.chance(0.92).then(|| {
        (
            Millis((ship_by.0 + rng.between(2 * DAY, 3 * DAY)) / HOUR * HOUR),
            offset,
        )
    });
    let total = (20.0f64 * 60f64.powf(rng.unit())) as u64 * 100 + rng.pick(&[0, 49, 95, 99]);
    let subject = Subject {
        order,
        has_order: true,
        key: index,
        afn: rng.chance(0.15),
        total_cents: total,
        total_as_number: rng.chance(0.1),
        ship_by,
        deliver_by,
        carrier: rng.pick(CARRIERS),
    };
    let mut steps = vec![(t0, Step::Placed)];
    if subject.afn {
        if rng.chance(0.9) {
            steps.push((t0.plus(Span(rng.between(DAY, 3 * DAY))), Step::Delivered));
        }
        return (subject, steps);
    }
    let r = rng.unit();
    if r < 0.07 {
        let reason = rng.chance(0.8).then(|| rng.pick(CANCEL_REASONS));
        steps.push((
            t0.plus(Span(rng.between(10 * MINUTE, 20 * HOUR))),
            Step::Cancelled { reason },
        ));
    } else if r < 0.11 {
        plan_out_of_stock(rng, t0, &mut steps);
    } else if r >= 0.13 {
        plan_shipment(rng, t0, &subject, &mut steps);
    }
    (subject, steps)
}

/// Out of stock, then cancelled: 80% within the hour, 15% late, 5% never.
fn plan_out_of_stock(rng: &mut Rng, t0: Millis, steps: &mut Vec<(Millis, Step)>) {
    let at = t0.plus(Span(rng.between(30 * MINUTE, 12 * HOUR)));
    steps.push((at, Step::OutOfStock));
    let r = rng.unit();
    let delay = if r < 0.8 {
        rng.between(5 * MINUTE, 55 * MINUTE)
    } else {
        rng.between(61 * MINUTE, 6 * HOUR)
    };
    if r < 0.95 {
        steps.push((
            at.plus(Span(delay)),
            Step::Cancelled {
                reason: Some("NoInventory"),
            },
        ));
    }
}

/// Confirmed (70% within 20h, 25% later but by the ship-by date, 5% after it; 7%
/// without tracking), scanned (94% within 18h, 3% after more than a day, 3% never),
/// delivered (92% by the promised date, 6% late, 2% never).
fn plan_shipment(rng: &mut Rng, t0: Millis, subject: &Subject, steps: &mut Vec<(Millis, Step)>) {
    let r = rng.unit();
    let confirmed = if r < 0.70 {
        t0.plus(Span(rng.between(30 * MINUTE, 20 * HOUR)))
    } else if r < 0.95 {
        Millis(rng.between(t0.0 + 20 * HOUR, subject.ship_by.0))
    } else {
        subject.ship_by.plus(Span(rng.between(HOUR, 30 * HOUR)))
    };
    let tracking = rng.chance(0.93);
    let signature = rng.chance(if subject.total_cents >= 75_000 {
        0.85
    } else {
        0.05
    });
    steps.push((
        confirmed,
        Step::Confirmed {
            tracking,
            signature,
        },
    ));
    let r = rng.unit();
    let scanned = match r {
        _ if !tracking => None,
        _ if r < 0.94 => Some(confirmed.plus(Span(rng.between(HOUR, 18 * HOUR)))),
        _ if r < 0.97 => Some(confirmed.plus(Span(rng.between(25 * HOUR, 60 * HOUR)))),
        _ => None,
    };
    if let Some(at) = scanned {
        steps.push((at, Step::Scanned));
    }
    let base = scanned.unwrap_or(confirmed);
    let by = subject
        .deliver_by
        .map_or(base.plus(Span(3 * DAY)), |(d, _)| d);
    let r = rng.unit();
    let delivered = if r < 0.92 && by.0 > base.0 + 6 * HOUR {
        Some(Millis(rng.between(base.0 + 6 * HOUR, by.0)))
    } else if r < 0.98 {
        Some(by.max(base).plus(Span(rng.between(2 * HOUR, 48 * HOUR))))
    } else {
        None
    };
    if let Some(at) = delivered {
        steps.push((at, Step::Delivered));
    }
}

/// Message threads (rule `customer_reply`): 68% replied within 12h, 15% within 40h (some
/// after the 24h warning), 5% late, 6% marked as needing no response, 6% never; 15%
/// of the replied get a follow-up message, answered within 20h. 70% name a recent order.
fn plan_thread(
    rng: &mut Rng,
    cfg: &SampleConfig,
    index: u64,
    t0: Millis,
    orders_so_far: u64,
) -> (Subject, Vec<(Millis, Step)>) {
    let about = if orders_so_far > 0 && rng.chance(0.7) {
        orders_so_far - 1 - rng.below(orders_so_far.min(2_000))
    } else {
        (cfg.orders + cfg.returns) as u64 + index
    };
    let subject = side_subject(cfg.seed, about, index, orders_so_far > about);
    let mut steps = vec![(t0, Step::Received)];
    let r = rng.unit();
    let answer = match r {
        _ if r < 0.68 => Some((
            t0.plus(Span(rng.between(10 * MINUTE, 12 * HOUR))),
            Step::Replied,
        )),
        _ if r < 0.83 => Some((
            t0.plus(Span(rng.between(12 * HOUR, 40 * HOUR))),
            Step::Replied,
        )),
        _ if r < 0.88 => Some((
            t0.plus(Span(rng.between(49 * HOUR, 96 * HOUR))),
            Step::Replied,
        )),
        _ if r < 0.94 => Some((
            t0.plus(Span(rng.between(5 * MINUTE, 6 * HOUR))),
            Step::NoResponse,
        )),
        _ => None,
    };
    if let Some((at, step)) = answer {
        steps.push((at, step));
        if step == Step::Replied && rng.chance(0.15) {
            let again = at.plus(Span(rng.between(HOUR, 30 * HOUR)));
            steps.push((again, Step::Received));
            steps.push((
                again.plus(Span(rng.between(15 * MINUTE, 20 * HOUR))),
                Step::Replied,
            ));
        }
    }
    (subject, steps)
}

/// Return requests (rules `return_authorization`, `refund`; checks
/// `return_instructions_missing`, `close_reason_missing`): 72% authorized (10% of them
/// late), 16% closed (20% of those without a reason; some refunded without a return), 12%
/// never answered. Authorized returns needing the item back are received 2-7 days later
/// (80%) and refunded, 10% late; the others are refunded directly.
fn plan_return(
    rng: &mut Rng,
    cfg: &SampleConfig,
    index: u64,
    t0: Millis,
) -> (Subject, Vec<(Millis, Step)>) {
    let subject = side_subject(cfg.seed, cfg.orders as u64 + index, index, true);
    let mut steps = vec![(t0, Step::Requested)];
    let r = rng.unit();
    let late = rng.chance(0.1);
    let answered = t0.plus(Span(if late {
        rng.between(49 * HOUR, 80 * HOUR)
    } else {
        rng.between(30 * MINUTE, 40 * HOUR)
    }));
    let refund = Step::RefundIssued {
        cents: rng.between(1_000, 40_000) as u64,
    };
    if r < 0.72 {
        let required = rng.chance(0.85);
        let label = required && rng.chance(0.8);
        let address = required && !label && rng.chance(0.75);
        steps.push((
            answered,
            Step::Authorized {
                required,
                label,
                address,
            },
        ));
        let mut refund_from = Some(answered);
        if required {
            refund_from = rng
                .chance(0.8)
                .then(|| answered.plus(Span(rng.between(2 * DAY, 7 * DAY))));
            if let Some(at) = refund_from {
                steps.push((at, Step::ItemReceived));
            }
        }
        if let Some(from) = refund_from.filter(|_| rng.chance(0.92)) {
            let delay = if rng.chance(0.1) {
                rng.between(49 * HOUR, 90 * HOUR)
            } else {
                rng.between(HOUR, 40 * HOUR)
            };
            steps.push((from.plus(Span(delay)), refund));
        }
    } else if r < 0.88 {
        let reason = rng.chance(0.8).then(|| rng.pick(CLOSE_REASONS));
        steps.push((answered, Step::Closed { reason }));
        if reason == Some("Refunded without return") {
            steps.push((answered.plus(Span(MINUTE)), Step::RefundRequested));
            steps.push((answered.plus(Span(rng.between(HOUR, 30 * HOUR))), refund));
        }
    }
    (subject, steps)
}

/// A thread's or return's subject: about order `about`.
fn side_subject(seed: u64, about: u64, key: u64, has_order: bool) -> Subject {
    Subject {
        order: OrderRef::new(seed, about),
        has_order,
        key,
        afn: false,
        total_cents: 0,
        total_as_number: false,
        ship_by: Millis(0),
        deliver_by: None,
        carrier: "",
    }
}

/// A JSON object written field by field. Every text written is plain ASCII without
/// quotes or backslashes, so nothing needs escaping.
struct Json(String);

impl Json {
    fn envelope(id: &str, source: &str, event_type: &str, time: &str) -> Json {
        let mut s = String::with_capacity(400);
        let _ = write!(
            s,
            r#"{{"specversion":"1.0","id":"{id}","source":"{source}","type":"{event_type}","time":"{time}""#
        );
        if source == "sp-api" {
            s.push_str(r#","datacontenttype":"application/json""#);
        }
        s.push_str(r#","data":{"#);
        Json(s)
    }

    fn key(&mut self, key: &str) {
        if !self.0.ends_with('{') {
            self.0.push(',');
        }
        let _ = write!(self.0, r#""{key}":"#);
    }

    fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        let _ = write!(self.0, r#""{value}""#);
    }

    fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        self.0.push_str(json);
    }

    fn flag(&mut self, key: &str, value: bool) {
        self.raw(key, if value { "true" } else { "false" });
    }

    fn common(&mut self, seller: &str, market: &Market) {
        self.text("seller_id", seller);
        self.text("marketplace", market.code);
    }

    fn finish(mut self) -> String {
        self.0.push_str("}}");
        self.0
    }
}

/// RFC 3339 with a UTC offset in minutes (`Z` when zero).
fn rfc3339_at(t: Millis, offset_minutes: i64) -> String {
    let utc = Millis(t.0 + offset_minutes * MINUTE).to_rfc3339();
    match offset_minutes {
        0 => utc,
        m => {
            format!(
                "{}{}{:02}:{:02}",
                &utc[..utc.len() - 1],
                if m < 0 { '-' } else { '+' },
                m.abs() / 60,
                m.abs() % 60
            )
        }
    }
}

fn amount(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn type_name(step: Step) -> &'static str {
    use Step::*;
    match step {
        Placed => "order.placed",
        Cancelled { .. } => "order.cancelled",
        OutOfStock => "order.out_of_stock",
        Confirmed { .. } => "shipment.confirmed",
        Scanned => "shipment.carrier_scanned",
        Delivered => "shipment.delivered",
        Received => "customer_message.received",
        Replied => "customer_message.replied",
        NoResponse => "customer_message.no_response_needed",
        Requested => "return.requested",
        Authorized { .. } => "return.authorized",
        Closed { .. } => "return.closed",
        ItemReceived => "return.item_received",
        RefundRequested => "refund.requested",
        RefundIssued { .. } => "refund.issued",
    }
}

/// The CloudEvents line of a planned event. Warehouse events are stamped in local time
/// (`+01:00`) a quarter of the time.
fn render(p: &Pending, id: &str, source: &str, sellers: &[String]) -> String {
    let s = &p.subject;
    let local = source == "wms" && mix(p.seq).is_multiple_of(4);
    let time = rfc3339_at(p.time, if local { 60 } else { 0 });
    let mut j = Json::envelope(id, source, type_name(p.step), &time);
    let order_id = s.order.id();
    match p.step {
        Step::Received | Step::Replied | Step::NoResponse => {
            j.text("thread_id", &format!("T-{:010}", s.key));
            if p.step != Step::NoResponse {
                j.text("message_id", &format!("M-{:010}", p.seq));
            }
        }
        Step::Requested | Step::Authorized { .. } | Step::Closed { .. } | Step::ItemReceived => {
            j.text("return_id", &format!("R-{:010}", s.key))
        }
        _ => {}
    }
    if s.has_order {
        j.text("order_id", &order_id);
    }
    write_step_fields(&mut j, p, s);
    j.common(&sellers[s.order.seller], s.order.market);
    j.finish()
}

fn write_step_fields(j: &mut Json, p: &Pending, s: &Subject) {
    match p.step {
        Step::Placed => write_order_fields(j, p.time, s),
        Step::Cancelled { reason: Some(r) } | Step::Closed { reason: Some(r) } => {
            j.text("reason", r)
        }
        Step::Confirmed {
            tracking,
            signature,
        } => {
            j.text("carrier", s.carrier);
            if tracking {
                j.text(
                    "tracking_number",
                    &format!(
                        "{}{:012}",
                        &s.carrier[..1],
                        mix(s.order.index ^ 0x7C) % 1_000_000_000_000
                    ),
                );
            }
            j.flag("signature_confirmation", signature);
        }
        Step::Authorized {
            required,
            label,
            address,
        } => {
            j.flag("item_return_required", required);
            if required {
                j.flag("return_label_provided", label);
                j.flag("return_address_provided", address);
            }
        }
        Step::RefundRequested => j.text("return_id", &format!("R-{:010}", s.key)),
        Step::RefundIssued { cents } => {
            j.text("return_id", &format!("R-{:010}", s.key));
            j.text("amount", &amount(cents));
        }
        _ => {}
    }
}

fn write_order_fields(j: &mut Json, t0: Millis, s: &Subject) {
    j.text(
        "purchase_date",
        &Millis(t0.0 - (mix(s.order.index ^ 0x9D) % 1_200_000) as i64).to_rfc3339(),
    );
    j.text("latest_ship_date", &s.ship_by.to_rfc3339());
    if let Some((by, offset)) = s.deliver_by {
        j.text("latest_delivery_date", &rfc3339_at(by, offset));
    }
    j.text("fulfillment_channel", if s.afn { "AFN" } else { "MFN" });
    let amount = if s.total_as_number {
        amount(s.total_cents)
    } else {
        format!("\"{}\"", amount(s.total_cents))
    };
    j.raw(
        "order_total",
        &format!(
            r#"{{"amount":{amount},"currency":"{}"}}"#,
            s.order.market.currency
        ),
    );
}

/// A well-formed event of a type the engine does not handle.
fn unknown_event(rng: &mut Rng, ids: &mut Ids, time: Millis, order: &OrderRef) -> String {
    let time = time.to_rfc3339();
    let sku = format!("SKU-{:06}", rng.below(1_000_000));
    let mut j = match rng.below(3) {
        0 => {
            let mut j = Json::envelope(&ids.next("wms"), "wms", "inventory.adjusted", &time);
            j.text("sku", &sku);
            j.raw("delta", &format!("-{}", 1 + rng.below(5)));
            j
        }
        1 => {
            let mut j = Json::envelope(&ids.next("sp-api"), "sp-api", "listing.updated", &time);
            j.text("seller_sku", &sku);
            j.text("asin", &format!("B0{:08X}", rng.below(1 << 32)));
            j
        }
        _ => {
            let mut j = Json::envelope(&ids.next("sp-api"), "sp-api", "feedback.received", &time);
            j.text("order_id", &order.id());
            j.raw("rating", &(1 + rng.below(5)).to_string());
            j
        }
    };
    j.text("marketplace", order.market.code);
    j.finish()
}

/// A record the decoder must dead-letter, of one of eight kinds.
fn malformed_line(
    rng: &mut Rng,
    ids: &mut Ids,
    time: Millis,
    order: &OrderRef,
    last: &str,
) -> String {
    let stamp = time.to_rfc3339();
    let order_id = order.id();
    match rng.below(8) {
        0 => last[..last.len() / 2].to_string(),
        1 => "<html><body><h1>502 Bad Gateway</h1></body></html>".to_string(),
        2 => format!("[{last}]"),
        3 => {
            let mut j = Json::envelope(&ids.next("sp-api"), "sp-api", "order.placed", &stamp);
            j.text("order_id", &order_id);
            j.text("fulfillment_channel", "MFN");
            j.finish()
        }
        4 => {
            let mut j = Json::envelope(&ids.next("sp-api"), "sp-api", "return.authorized", &stamp);
            j.text("return_id", "R-UNKNOWN");
            j.text("order_id", &order_id);
            j.text("item_return_required", "yes");
            j.finish()
        }
        5 => {
            let date = &stamp[..10];
            let mut j = Json::envelope(
                &ids.next("wms"),
                "wms",
                "shipment.delivered",
                &format!("{date} at noon"),
            );
            j.text("order_id", &order_id);
            j.finish()
        }
        6 => Json::envelope(
            &ids.next("helpdesk"),
            "helpdesk",
            "customer_message.received",
            &stamp,
        )
        .finish()
        .replacen(r#""specversion":"1.0""#, r#""specversion":"0.3""#, 1),
        _ => format!(
            r#"{{"specversion":"1.0","source":"wms","type":"shipment.delivered","time":"{stamp}","data":{{"order_id":"{order_id}"}}}}"#
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};
    use std::sync::Arc;

    use super::*;
    use crate::config::load_rules;
    use crate::core::engine::{Engine, PartitionId};
    use crate::decode::{decode, Decoded};
    use crate::replay::{replay, Sinks, Summary};

    /// Replays lines through the default rules; returns the engine, the summary and the
    /// alerts written.
    fn replay_lines(lines: impl Iterator<Item = String>) -> (Engine, Summary, String) {
        let input = lines.collect::<Vec<_>>().join("\n");
        let mut engine = Engine::new(Arc::new(load_rules(None).expect("the shipped rules load")));
        let mut sinks = Sinks {
            alerts: Vec::new(),
            dead_letters: None::<std::io::Sink>,
        };
        let summary =
            replay(&mut engine, input.as_bytes(), &mut sinks, None).expect("replay from memory");
        (
            engine,
            summary,
            String::from_utf8(sinks.alerts).expect("alerts are UTF-8"),
        )
    }

    #[test]
    fn the_same_seed_gives_the_same_stream_and_another_seed_another() {
        let cfg = SampleConfig::default();
        let a: Vec<String> = generate(&cfg).take(5_000).collect();
        let b: Vec<String> = generate(&cfg).take(5_000).collect();
        assert_eq!(a, b);
        let c: Vec<String> = generate(&SampleConfig {
            seed: cfg.seed + 1,
            ..cfg
        })
        .take(5_000)
        .collect();
        assert_ne!(a, c);
    }

    #[test]
    fn noise_rates_do_not_change_the_lifecycles() {
        let quiet = SampleConfig {
            duplicate_rate: 0.0,
            malformed_rate: 0.0,
            unknown_rate: 0.0,
            ..SampleConfig::default()
        };
        let noisy = lines(&SampleConfig::default())
            .filter(|l| l.kind == LineKind::Event)
            .take(3_000);
        let ids = |text: &str| text.split("\"data\"").nth(1).map(str::to_string);
        let clean: Vec<_> = generate(&quiet).take(3_000).map(|t| ids(&t)).collect();
        assert_eq!(noisy.map(|l| ids(&l.text)).collect::<Vec<_>>(), clean);
    }

    #[test]
    fn every_line_decodes_as_its_kind_says() {
        let mut seen = HashSet::new();
        for line in lines(&SampleConfig::default()).take(20_000) {
            match (line.kind, decode(line.text.as_bytes())) {
                (LineKind::Event | LineKind::Duplicate, Decoded::Known(_)) => {}
                (LineKind::Unknown, Decoded::Unknown(_)) => {}
                (LineKind::Malformed, Decoded::Dead(_)) => {}
                (kind, other) => panic!(
                    "a line of kind {kind:?} decoded as {other:?}: {}",
                    line.text
                ),
            }
            seen.insert(format!("{:?}", line.kind));
        }
        assert_eq!(seen.len(), 4, "every kind of line appears: {seen:?}");
    }

    #[test]
    fn event_ids_are_unique_per_source_and_only_duplicates_repeat_one() {
        let mut ids = HashSet::new();
        for line in lines(&SampleConfig::default()) {
            let key = match decode(line.text.as_bytes()) {
                Decoded::Known(e) => (e.source.to_string(), e.id.to_string()),
                Decoded::Unknown(u) => (u.source.to_string(), u.id.to_string()),
                Decoded::Dead(_) => continue,
            };
            let first = ids.insert(key.clone());
            assert_eq!(
                first,
                line.kind != LineKind::Duplicate,
                "{key:?} in {}",
                line.text
            );
        }
    }

    #[test]
    fn the_default_stream_has_about_the_documented_length() {
        let n = generate(&SampleConfig::default()).count();
        assert!(
            (DEFAULT_LINES * 95 / 100..DEFAULT_LINES * 105 / 100).contains(&n),
            "{n} lines"
        );
    }

    #[test]
    fn a_sized_config_yields_at_least_the_lines_asked_for() {
        for n in [100, 5_000, 80_000] {
            let got = generate(&SampleConfig::sized(n)).count();
            assert!(
                got >= n && got < n * 13 / 10 + 50,
                "asked for {n}, got {got}"
            );
        }
    }

    #[test]
    fn lines_come_in_time_order_but_for_a_few_late_arrivals() {
        let (mut latest, mut late, mut total) = (Millis::MIN, 0, 0);
        for line in lines(&SampleConfig::default()).filter(|l| l.kind == LineKind::Event) {
            let Decoded::Known(e) = decode(line.text.as_bytes()) else {
                panic!("{}", line.text)
            };
            total += 1;
            late += usize::from(e.time < latest);
            latest = latest.max(e.time);
        }
        assert!(
            late > 0 && late * 100 < total * 3,
            "{late} of {total} events arrive late"
        );
    }

    #[test]
    fn replaying_ten_thousand_events_raises_every_type_of_alert() {
        let (_, summary, _) = replay_lines(generate(&SampleConfig::default()).take(10_000));
        for t in ["sla.warning", "sla.breach", "sla.resolved", "sla.violation"] {
            assert!(
                summary.alerts_by_type.get(t).is_some_and(|n| *n > 0),
                "no {t}: {summary}"
            );
        }
        assert!(
            summary.skipped_duplicate > 0
                && summary.skipped_unknown > 0
                && summary.dead_lettered > 0,
            "{summary}"
        );
    }

    #[test]
    fn the_default_stream_exercises_every_rule_and_check() {
        let (_, _, alerts) = replay_lines(generate(&SampleConfig::default()));
        let mut names = BTreeSet::new();
        for line in alerts.lines() {
            let alert: serde_json::Value = serde_json::from_str(line).expect("alerts are JSON");
            let data = &alert["data"];
            names.insert(
                data["rule"]
                    .as_str()
                    .or(data["check"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        let want = [
            "carrier_scan",
            "close_reason_missing",
            "customer_reply",
            "delivery",
            "out_of_stock_cancel",
            "refund",
            "return_authorization",
            "return_instructions_missing",
            "ship_by",
            "signature_missing",
            "tracking_missing",
        ];
        assert_eq!(names, want.iter().map(|s| s.to_string()).collect());
    }

    #[test]
    fn unanswered_messages_stay_open_and_raise_nothing() {
        let (engine, summary, _) = replay_lines(unanswered_messages(5_000, DEFAULT_START));
        assert_eq!(summary.applied, 5_000, "{summary}");
        assert_eq!(summary.alerts(), 0, "{summary}");
        assert_eq!(
            engine
                .partition(PartitionId::REPLAY)
                .map(|p| p.open_instances()),
            Some(5_000)
        );
    }

    #[test]
    fn offsets_are_written_as_rfc3339_and_read_back_as_the_same_instant() {
        for offset in [0, 60, -300] {
            let text = rfc3339_at(DEFAULT_START, offset);
            assert_eq!(Millis::parse_rfc3339(&text), Ok(DEFAULT_START), "{text}");
        }
        assert_eq!(
            rfc3339_at(DEFAULT_START, 60),
            "2026-11-02T01:00:00.000+01:00"
        );
    }
}
