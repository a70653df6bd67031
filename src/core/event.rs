//! The input event model: the event types of contract section 2, their `data` fields, and
//! a decoded event that borrows its text from the record it came from.
//!
//! # Ground rules
//!
//! * The schema (which type carries which field, required or optional, of which kind) is
//!   one static table, [`EventType::schema`]. The decoder enforces it, and the rule loader
//!   checks configured rules against it, so a rule can never ask for a field its event
//!   type does not have.
//! * A decoded [`Event`] holds only values that passed the schema: a text field is
//!   present only when non-empty after trimming, a timestamp is an instant, an amount is
//!   a [`Decimal`]. Absent and `null` are the same thing.
//! * Text borrows from the input bytes where it can (`Cow::Borrowed`), so decoding does
//!   not allocate for the common, escape-free case.

use std::borrow::Cow;
use std::fmt;

use super::time::Millis;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn from_name(name: &str) -> Option<$name> {
                match name { $($text => Some($name::$variant),)+ _ => None }
            }

            pub fn index(self) -> usize {
                self as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// The CloudEvents `type`s the engine understands (contract section 2).
    EventType {
        MessageReceived = "customer_message.received",
        MessageReplied = "customer_message.replied",
        MessageNoResponseNeeded = "customer_message.no_response_needed",
        ReturnRequested = "return.requested",
        ReturnAuthorized = "return.authorized",
        ReturnClosed = "return.closed",
        ReturnItemReceived = "return.item_received",
        RefundRequested = "refund.requested",
        RefundIssued = "refund.issued",
        OrderPlaced = "order.placed",
        OrderCancelled = "order.cancelled",
        OrderOutOfStock = "order.out_of_stock",
        ShipmentConfirmed = "shipment.confirmed",
        ShipmentCarrierScanned = "shipment.carrier_scanned",
        ShipmentDelivered = "shipment.delivered",
    }
}

string_enum! {
    /// Every `data` field any type carries; names follow the Selling Partner API.
    Field {
        ThreadId = "thread_id",
        MessageId = "message_id",
        OrderId = "order_id",
        ReturnId = "return_id",
        ItemReturnRequired = "item_return_required",
        ReturnLabelProvided = "return_label_provided",
        ReturnAddressProvided = "return_address_provided",
        Reason = "reason",
        Amount = "amount",
        LatestShipDate = "latest_ship_date",
        LatestDeliveryDate = "latest_delivery_date",
        FulfillmentChannel = "fulfillment_channel",
        OrderTotal = "order_total",
        PurchaseDate = "purchase_date",
        TrackingNumber = "tracking_number",
        Carrier = "carrier",
        SignatureConfirmation = "signature_confirmation",
        SellerId = "seller_id",
        Marketplace = "marketplace",
        CancelledBy = "cancelled_by",
    }
}

/// Number of [`Field`]s; the size of [`Fields`]' value array.
pub const FIELD_COUNT: usize = Field::ALL.len();
/// Number of [`EventType`]s.
pub const TYPE_COUNT: usize = EventType::ALL.len();

/// The JSON shape a field must have.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A string; empty after trimming counts as absent.
    Text,
    /// A JSON boolean.
    Flag,
    /// An RFC 3339 string with an offset.
    Instant,
    /// A decimal string or a JSON number.
    Number,
    /// `{"amount": <decimal string or number>, "currency": "EUR"}`.
    Money,
}

impl Field {
    pub fn kind(self) -> Kind {
        use Field::*;
        match self {
            ItemReturnRequired
            | ReturnLabelProvided
            | ReturnAddressProvided
            | SignatureConfirmation => Kind::Flag,
            LatestShipDate | LatestDeliveryDate | PurchaseDate => Kind::Instant,
            Amount => Kind::Number,
            OrderTotal => Kind::Money,
            _ => Kind::Text,
        }
    }
}

/// Whether a field must be present on a type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Presence {
    Required,
    Optional,
}

use Field as F;
use Presence::{Optional as O, Required as R};

/// Fields every type may carry, copied into alerts.
const COMMON: &[(Field, Presence)] = &[(F::SellerId, O), (F::Marketplace, O)];

impl EventType {
    /// The `data` fields of this type (contract section 2), not counting [`COMMON`] ones.
    pub fn own_fields(self) -> &'static [(Field, Presence)] {
        use EventType::*;
        match self {
            MessageReceived | MessageReplied => {
                &[(F::ThreadId, R), (F::MessageId, O), (F::OrderId, O)]
            }
            MessageNoResponseNeeded => &[(F::ThreadId, R), (F::OrderId, O)],
            ReturnRequested | ReturnItemReceived => &[(F::ReturnId, R), (F::OrderId, R)],
            ReturnAuthorized => &[
                (F::ReturnId, R),
                (F::OrderId, R),
                (F::ItemReturnRequired, R),
                (F::ReturnLabelProvided, O),
                (F::ReturnAddressProvided, O),
            ],
            ReturnClosed => &[(F::ReturnId, R), (F::OrderId, R), (F::Reason, O)],
            RefundRequested => &[(F::OrderId, R), (F::ReturnId, O)],
            RefundIssued => &[(F::OrderId, R), (F::ReturnId, O), (F::Amount, O)],
            OrderPlaced => &[
                (F::OrderId, R),
                (F::LatestShipDate, R),
                (F::LatestDeliveryDate, O),
                (F::FulfillmentChannel, O),
                (F::OrderTotal, O),
                (F::PurchaseDate, O),
            ],
            OrderCancelled => &[(F::OrderId, R), (F::Reason, O), (F::CancelledBy, O)],
            OrderOutOfStock | ShipmentDelivered => &[(F::OrderId, R)],
            ShipmentConfirmed => &[
                (F::OrderId, R),
                (F::TrackingNumber, O),
                (F::Carrier, O),
                (F::SignatureConfirmation, O),
            ],
            ShipmentCarrierScanned => &[(F::OrderId, R), (F::TrackingNumber, O)],
        }
    }

    /// Every field of this type, its own first, then the common ones.
    pub fn schema(self) -> impl Iterator<Item = (Field, Presence)> {
        self.own_fields().iter().chain(COMMON).copied()
    }

    /// How `field` appears on this type, or `None` when the type does not carry it.
    pub fn presence_of(self, field: Field) -> Option<Presence> {
        self.schema().find(|(f, _)| *f == field).map(|(_, p)| p)
    }

    /// The input topic this type arrives on, by its default name's role.
    pub fn topic_role(self) -> TopicRole {
        match self.as_str().split('.').next() {
            Some("customer_message") => TopicRole::CustomerMessage,
            Some("return") | Some("refund") => TopicRole::ReturnRequest,
            _ => TopicRole::Shipment,
        }
    }
}

/// The three input topics, by what they carry.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum TopicRole {
    CustomerMessage,
    ReturnRequest,
    Shipment,
}

/// A decimal amount, held exactly as `units * 10^-9` (nine fraction digits; finer
/// fractions are truncated, which cannot change a comparison with a configured
/// threshold of at most nine fraction digits).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Hash)]
pub struct Decimal(pub i128);

impl Decimal {
    pub const SCALE_DIGITS: u32 = 9;

    /// Parses `123`, `-4.50`, `899.00`, `8.99e2`; refuses anything else.
    pub fn parse(text: &str) -> Option<Decimal> {
        let t = text.trim();
        let (mantissa, exponent) = match t.find(['e', 'E']) {
            Some(i) => (&t[..i], t[i + 1..].parse::<i64>().ok()?),
            None => (t, 0),
        };
        let (negative, digits) = match mantissa.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
        };
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty() && frac_part.is_empty()
            || !all_digits(int_part)
            || !all_digits(frac_part)
        {
            return None;
        }
        let shift = i64::from(Self::SCALE_DIGITS).saturating_add(exponent);
        let mut value: i128 = 0;
        for (position, b) in int_part.bytes().chain(frac_part.bytes()).enumerate() {
            let power = shift.saturating_sub(position as i64 + 1 - int_part.len() as i64);
            // `power` is the decimal exponent this digit lands on after scaling.
            let digit_value = scaled_digit((b - b'0') as i128, power)?;
            value = value.checked_add(digit_value)?;
        }
        Some(Decimal(if negative { -value } else { value }))
    }
}

/// `digit * 10^power`, zero for negative powers (truncation), `None` on overflow.
fn scaled_digit(digit: i128, power: i64) -> Option<i128> {
    if power < 0 || digit == 0 {
        return Some(0);
    }
    10i128
        .checked_pow(power.try_into().ok()?)?
        .checked_mul(digit)
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scale = 10i128.pow(Self::SCALE_DIGITS);
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let frac = format!("{:09}", abs % scale as u128);
        let frac = frac.trim_end_matches('0');
        let dot = if frac.is_empty() { "" } else { "." };
        write!(f, "{sign}{}{dot}{frac}", abs / scale as u128)
    }
}

/// An ISO 4217 currency code: three ASCII letters, stored upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(text: &str) -> Option<Currency> {
        let b = text.trim().as_bytes();
        (b.len() == 3 && b.iter().all(u8::is_ascii_alphabetic)).then(|| {
            Currency([
                b[0].to_ascii_uppercase(),
                b[1].to_ascii_uppercase(),
                b[2].to_ascii_uppercase(),
            ])
        })
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a currency holds ASCII letters only")
    }
}

/// An order total: an amount in a currency.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

/// A field's decoded value.
#[derive(Clone, PartialEq, Debug, Default)]
pub enum Value<'a> {
    #[default]
    Absent,
    Text(Cow<'a, str>),
    Flag(bool),
    Instant(Millis),
    Number(Decimal),
    Money(Money),
}

/// The `data` of one event, indexed by [`Field`].
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Fields<'a> {
    values: [Value<'a>; FIELD_COUNT],
}

impl<'a> Fields<'a> {
    pub fn get(&self, field: Field) -> &Value<'a> {
        &self.values[field.index()]
    }

    pub fn set(&mut self, field: Field, value: Value<'a>) {
        self.values[field.index()] = value;
    }

    /// The field's text, when it is a present text field.
    pub fn text(&self, field: Field) -> Option<&str> {
        match self.get(field) {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    pub fn instant(&self, field: Field) -> Option<Millis> {
        match self.get(field) {
            Value::Instant(t) => Some(*t),
            _ => None,
        }
    }

    pub fn flag(&self, field: Field) -> Option<bool> {
        match self.get(field) {
            Value::Flag(b) => Some(*b),
            _ => None,
        }
    }

    pub fn money(&self, field: Field) -> Option<Money> {
        match self.get(field) {
            Value::Money(m) => Some(*m),
            _ => None,
        }
    }
}

/// A well-formed event of a known type.
#[derive(Clone, PartialEq, Debug)]
pub struct Event<'a> {
    pub source: Cow<'a, str>,
    pub id: Cow<'a, str>,
    pub event_type: EventType,
    /// When the fact happened (`time`), at millisecond precision.
    pub time: Millis,
    pub data: Fields<'a>,
}

/// A well-formed event of a type the engine does not know: skipped, but it is still
/// "taken" (its time moves the clock and its id is remembered).
#[derive(Clone, PartialEq, Debug)]
pub struct Unknown<'a> {
    pub source: Cow<'a, str>,
    pub id: Cow<'a, str>,
    pub type_name: Cow<'a, str>,
    pub time: Millis,
}

/// What the engine is handed: one well-formed input.
///
/// Deliberately unboxed: an event lives on the stack for one `take`, and a heap
/// allocation per record would cost more than moving its ~1 KB of field slots.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Debug)]
pub enum Input<'a> {
    Known(Event<'a>),
    Unknown(Unknown<'a>),
}

impl Input<'_> {
    pub fn time(&self) -> Millis {
        match self {
            Input::Known(e) => e.time,
            Input::Unknown(u) => u.time,
        }
    }

    pub fn source_and_id(&self) -> (&str, &str) {
        match self {
            Input::Known(e) => (&e.source, &e.id),
            Input::Unknown(u) => (&u.source, &u.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_name_round_trips() {
        for t in EventType::ALL {
            assert_eq!(EventType::from_name(t.as_str()), Some(*t));
        }
        assert_eq!(EventType::from_name("inventory.adjusted"), None);
    }

    #[test]
    fn decimals_read_strings_numbers_and_exponents() {
        let d = |s| Decimal::parse(s).unwrap();
        assert_eq!(d("750"), d("750.00"));
        assert_eq!(d("8.99e2"), d("899"));
        assert!(d("749.999999999") < d("750"));
        assert_eq!(d("-4.5").to_string(), "-4.5");
        assert_eq!(d("0.0000000001"), Decimal(0));
        for bad in ["", "abc", "1.2.3", "--1", "1e", ".", "1e99999"] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn currencies_are_three_letters() {
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
        assert!(Currency::parse("EURO").is_none());
        assert!(Currency::parse("E1R").is_none());
    }

    #[test]
    fn topics_follow_the_type_prefix() {
        assert_eq!(
            EventType::RefundIssued.topic_role(),
            TopicRole::ReturnRequest
        );
        assert_eq!(EventType::OrderPlaced.topic_role(), TopicRole::Shipment);
        assert_eq!(
            EventType::MessageReplied.topic_role(),
            TopicRole::CustomerMessage
        );
    }
}
