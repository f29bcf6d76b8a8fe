//! Reservations and their state machine.
//!
//! ```text
//!            confirm              (units leave: reserved -= q)
//! RESERVED ───────────► CONFIRMED
//!     │ release                   (units return: available += q, reserved -= q)
//!     ├──────────────► RELEASED
//!     │ expires_at passed
//!     └──────────────► EXPIRED    (units return, as for release)
//! ```
//!
//! Repeating the transition that led to a state changes nothing (confirm of a
//! confirmed reservation, release of a released or expired one), so callers
//! may retry. Every other move from a final state is refused.

use std::fmt;

use time::OffsetDateTime;

use super::{Items, OrderId};

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReservationStatus {
    /// Units are held for the order until `expires_at`.
    Reserved,
    /// The order was placed; the units are gone.
    Confirmed,
    /// The order failed; the units went back on sale.
    Released,
    /// Nobody confirmed in time; the units went back on sale.
    Expired,
}

/// What a transition does to the stock of every item of the reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The held units leave the warehouse: `reserved -= q`.
    Consume,
    /// The held units go back on sale: `available += q, reserved -= q`.
    Restore,
}

/// What the store must do for a requested transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Already in the requested state: nothing to write.
    Unchanged,
    /// Move to `to`, applying `effect` to every item.
    Change {
        to: ReservationStatus,
        effect: Effect,
    },
}

/// A transition that the current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a reservation that is {status}")]
pub struct Refusal {
    pub action: &'static str,
    pub status: ReservationStatus,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Confirmed => "confirmed",
            Self::Released => "released",
            Self::Expired => "expired",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "reserved" => Some(Self::Reserved),
            "confirmed" => Some(Self::Confirmed),
            "released" => Some(Self::Released),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }

    /// The order was placed.
    pub fn confirm(self) -> Result<Step, Refusal> {
        match self {
            Self::Reserved => Ok(Step::Change {
                to: Self::Confirmed,
                effect: Effect::Consume,
            }),
            Self::Confirmed => Ok(Step::Unchanged),
            Self::Released | Self::Expired => Err(Refusal {
                action: "confirm",
                status: self,
            }),
        }
    }

    /// The order failed; give the units back.
    pub fn release(self) -> Result<Step, Refusal> {
        match self {
            Self::Reserved => Ok(Step::Change {
                to: Self::Released,
                effect: Effect::Restore,
            }),
            // The units are already back on sale either way.
            Self::Released | Self::Expired => Ok(Step::Unchanged),
            Self::Confirmed => Err(Refusal {
                action: "release",
                status: self,
            }),
        }
    }

    /// The reservation's time is up.
    pub fn expire(self) -> Step {
        match self {
            Self::Reserved => Step::Change {
                to: Self::Expired,
                effect: Effect::Restore,
            },
            Self::Confirmed | Self::Released | Self::Expired => Step::Unchanged,
        }
    }
}

impl fmt::Display for ReservationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stock held for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub order_id: OrderId,
    pub status: ReservationStatus,
    pub items: Items,
    /// When a `Reserved` reservation stops holding its units.
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

impl Reservation {
    /// Whether the reservation still holds units it should already have
    /// returned: reserved, and `expires_at` has passed at `now`.
    pub fn is_due(&self, now: OffsetDateTime) -> bool {
        is_due(self.status, self.expires_at, now)
    }
}

fn is_due(status: ReservationStatus, expires_at: OffsetDateTime, now: OffsetDateTime) -> bool {
    status == ReservationStatus::Reserved && now >= expires_at
}

#[cfg(test)]
mod tests {
    use super::ReservationStatus::*;
    use super::*;

    #[test]
    fn confirm_consumes_once_and_refuses_returned_reservations() {
        assert_eq!(
            Reserved.confirm(),
            Ok(Step::Change {
                to: Confirmed,
                effect: Effect::Consume
            })
        );
        assert_eq!(Confirmed.confirm(), Ok(Step::Unchanged));
        assert!(Released.confirm().is_err());
        assert!(Expired.confirm().is_err());
    }

    #[test]
    fn release_restores_once_and_refuses_confirmed_reservations() {
        assert_eq!(
            Reserved.release(),
            Ok(Step::Change {
                to: Released,
                effect: Effect::Restore
            })
        );
        assert_eq!(Released.release(), Ok(Step::Unchanged));
        assert_eq!(Expired.release(), Ok(Step::Unchanged));
        let refused = Confirmed.release().unwrap_err();
        assert_eq!(
            refused.to_string(),
            "cannot release a reservation that is confirmed"
        );
    }

    #[test]
    fn only_reserved_reservations_expire() {
        assert_eq!(
            Reserved.expire(),
            Step::Change {
                to: Expired,
                effect: Effect::Restore
            }
        );
        for s in [Confirmed, Released, Expired] {
            assert_eq!(s.expire(), Step::Unchanged);
        }
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in [Reserved, Confirmed, Released, Expired] {
            assert_eq!(ReservationStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ReservationStatus::parse("RESERVED"), None);
    }

    #[test]
    fn due_means_reserved_and_past_its_expiry() {
        let t = OffsetDateTime::UNIX_EPOCH;
        let later = t + time::Duration::seconds(1);
        assert!(is_due(Reserved, t, t));
        assert!(is_due(Reserved, t, later));
        assert!(!is_due(Reserved, later, t));
        assert!(!is_due(Confirmed, t, later));
    }
}
