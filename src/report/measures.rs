//! What the report measures: the fields it groups by, the six marketplace metrics with
//! their targets (decided on exact fractions), ratios and a rule's counts.

/// A field a report groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupField {
    SellerId,
    Marketplace,
}

impl GroupField {
    pub fn name(self) -> &'static str {
        match self {
            GroupField::SellerId => "seller_id",
            GroupField::Marketplace => "marketplace",
        }
    }

    pub fn parse(name: &str) -> Option<GroupField> {
        match name.trim() {
            "seller_id" => Some(GroupField::SellerId),
            "marketplace" => Some(GroupField::Marketplace),
            _ => None,
        }
    }
}

/// The six marketplace metrics, in the contract's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    LateShipmentRate,
    PreFulfillmentCancelRate,
    ValidTrackingRate,
    OnTimeDeliveryRate,
    ContactResponse24h,
    ReturnResponseOnTime,
}

/// A comparison with a target, decided on the exact fraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// value < num / den
    Below(u64, u64),
    /// value >= num / den
    AtLeast(u64, u64),
}

impl Target {
    pub fn text(self) -> &'static str {
        match self {
            Target::Below(4, 100) => "< 0.04",
            Target::Below(25, 1000) => "< 0.025",
            Target::AtLeast(95, 100) => ">= 0.95",
            Target::AtLeast(97, 100) => ">= 0.97",
            Target::AtLeast(90, 100) => ">= 0.90",
            _ => unreachable!("only the contract's targets exist"),
        }
    }

    /// [`Self::text`] in percent, as the table shows values: `< 4%`.
    pub fn percent_text(self) -> &'static str {
        match self {
            Target::Below(4, 100) => "< 4%",
            Target::Below(25, 1000) => "< 2.5%",
            Target::AtLeast(95, 100) => ">= 95%",
            Target::AtLeast(97, 100) => ">= 97%",
            Target::AtLeast(90, 100) => ">= 90%",
            _ => unreachable!("only the contract's targets exist"),
        }
    }

    /// Whether `n / d` meets the target, exactly (`d > 0`).
    pub fn met_by(self, n: u64, d: u64) -> bool {
        let (n, d) = (u128::from(n), u128::from(d));
        match self {
            Target::Below(tn, td) => n * u128::from(td) < u128::from(tn) * d,
            Target::AtLeast(tn, td) => n * u128::from(td) >= u128::from(tn) * d,
        }
    }
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::LateShipmentRate,
        Metric::PreFulfillmentCancelRate,
        Metric::ValidTrackingRate,
        Metric::OnTimeDeliveryRate,
        Metric::ContactResponse24h,
        Metric::ReturnResponseOnTime,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::LateShipmentRate => "late_shipment_rate",
            Metric::PreFulfillmentCancelRate => "pre_fulfillment_cancel_rate",
            Metric::ValidTrackingRate => "valid_tracking_rate",
            Metric::OnTimeDeliveryRate => "on_time_delivery_rate",
            Metric::ContactResponse24h => "contact_response_24h",
            Metric::ReturnResponseOnTime => "return_response_on_time",
        }
    }

    pub fn target(self) -> Option<Target> {
        match self {
            Metric::LateShipmentRate => Some(Target::Below(4, 100)),
            Metric::PreFulfillmentCancelRate => Some(Target::Below(25, 1000)),
            Metric::ValidTrackingRate => Some(Target::AtLeast(95, 100)),
            Metric::OnTimeDeliveryRate => Some(Target::AtLeast(97, 100)),
            Metric::ContactResponse24h => Some(Target::AtLeast(90, 100)),
            Metric::ReturnResponseOnTime => None,
        }
    }
}

/// A numerator over a denominator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
}

impl Ratio {
    pub fn value(self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }

    /// Whether the value meets `target`; `None` without a value or a target.
    pub fn ok(self, target: Option<Target>) -> Option<bool> {
        let t = target?;
        (self.denominator > 0).then(|| t.met_by(self.numerator, self.denominator))
    }

    pub(super) fn add(&mut self, counted: bool) {
        self.denominator += 1;
        self.numerator += u64::from(counted);
    }
}

/// One rule's counts in one group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuleCounts {
    pub opened: u64,
    pub met: u64,
    pub late: u64,
    pub overdue: u64,
    pub pending: u64,
}

impl RuleCounts {
    pub fn on_time_rate(self) -> Option<f64> {
        let d = self.met + self.late + self.overdue;
        (d > 0).then(|| self.met as f64 / d as f64)
    }

    pub(super) fn is_zero(self) -> bool {
        self == RuleCounts::default()
    }
}
