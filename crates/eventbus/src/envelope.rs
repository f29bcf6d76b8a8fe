//! The envelope every event travels in: a CloudEvents 1.0 event in
//! structured JSON mode.
//!
//! ```json
//! {
//!   "specversion": "1.0",
//!   "id": "01936c4e-7d1a-7b52-9a0e-4f1d2c3b4a59",
//!   "source": "/emporium/checkout",
//!   "type": "order.placed.v1",
//!   "subject": "01936c4e-6a00-7c11-8f00-1234567890ab",
//!   "time": "2026-11-25T10:15:00.123456Z",
//!   "datacontenttype": "application/json",
//!   "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
//!   "data": { "order_id": "…" }
//! }
//! ```
//!
//! An [`Envelope`] is valid by construction: [`Envelope::new`] and
//! deserialization run the same checks (versioned type, bounded sizes,
//! a non-nil id, a well-formed `traceparent`), so a consumer never sees an
//! event that breaks them. Unknown top-level attributes (CloudEvents
//! extensions) are ignored when reading, so adding one later does not break
//! older consumers.

use std::fmt;

use emporium_chassis::TraceContext;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::events::Event;

/// The CloudEvents version we write and accept.
pub const SPEC_VERSION: &str = "1.0";
/// The only `datacontenttype`: `data` is a JSON value.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// Longest accepted `type`.
pub const MAX_TYPE_LEN: usize = 128;
/// Longest accepted `source`.
pub const MAX_SOURCE_LEN: usize = 256;
/// Longest accepted `subject` (the ordering key).
pub const MAX_SUBJECT_LEN: usize = 256;
/// Largest accepted `data`, serialized. With the bounded attributes the whole
/// envelope stays well below NATS's default 1 MiB message limit.
pub const MAX_DATA_BYTES: usize = 192 * 1024;

/// Why an envelope (or one of its parts) is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {reason}")]
pub struct EnvelopeError {
    pub field: &'static str,
    pub reason: String,
}

impl EnvelopeError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// A versioned event type such as `order.placed.v1`: it matches
/// `^[a-z]+(\.[a-z_]+)+\.v[0-9]+$` and is at most [`MAX_TYPE_LEN`] long.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventType(String);

impl EventType {
    pub fn parse(value: &str) -> Result<Self, EnvelopeError> {
        let invalid = || {
            EnvelopeError::new(
                "type",
                format!(
                    "must look like `domain.event.v1` (lowercase words separated by dots, \
                     ending in a version), at most {MAX_TYPE_LEN} characters; got `{}`",
                    value.escape_debug()
                ),
            )
        };
        if value.len() > MAX_TYPE_LEN {
            return Err(invalid());
        }
        let tokens: Vec<&str> = value.split('.').collect();
        let [first, middle @ .., version] = tokens.as_slice() else {
            return Err(invalid());
        };
        let first_ok = !first.is_empty() && first.bytes().all(|b| b.is_ascii_lowercase());
        let middle_ok = !middle.is_empty()
            && middle
                .iter()
                .all(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        let version_ok = version
            .strip_prefix('v')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if first_ok && middle_ok && version_ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EventType {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// One event: what happened (`type`, `data`), to what (`subject`, which is
/// also the ordering key), where (`source`), when (`time`), and in which
/// trace (`traceparent`). Cheap to clone relative to publishing it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    id: Uuid,
    source: String,
    event_type: EventType,
    subject: String,
    time: OffsetDateTime,
    traceparent: Option<TraceContext>,
    data: Value,
}

impl Envelope {
    /// A new event with a fresh UUIDv7 id and the current time.
    pub fn new(
        source: &str,
        event_type: EventType,
        subject: &str,
        data: Value,
    ) -> Result<Self, EnvelopeError> {
        Ok(Self {
            id: Uuid::now_v7(),
            source: check_source(source)?.to_owned(),
            event_type,
            subject: check_subject(subject)?.to_owned(),
            time: OffsetDateTime::now_utc(),
            traceparent: None,
            data: check_data(data)?,
        })
    }

    /// A new event from a typed payload: the type is `E::TYPE` and the
    /// subject is the payload's ordering key.
    pub fn for_event<E: Event>(source: &str, event: &E) -> Result<Self, EnvelopeError> {
        let data = serde_json::to_value(event)
            .map_err(|e| EnvelopeError::new("data", format!("cannot be serialized: {e}")))?;
        Self::new(source, EventType::parse(E::TYPE)?, &event.subject(), data)
    }

    /// The same event in the trace of `trace` (a consumer continues it).
    #[must_use]
    pub fn with_trace(mut self, trace: TraceContext) -> Self {
        self.traceparent = Some(trace);
        self
    }

    /// The same event with another id; for producers that allocate the id
    /// themselves (e.g. in an outbox row) before building the envelope.
    pub fn with_id(mut self, id: Uuid) -> Result<Self, EnvelopeError> {
        self.id = check_id(id)?;
        Ok(self)
    }

    /// The same event with another occurrence time.
    #[must_use]
    pub fn with_time(mut self, time: OffsetDateTime) -> Self {
        self.time = time;
        self
    }

    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn event_type(&self) -> &EventType {
        &self.event_type
    }

    /// The ordering key: events with the same subject reach a consumer in
    /// publish order.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn time(&self) -> OffsetDateTime {
        self.time
    }

    pub fn trace_context(&self) -> Option<TraceContext> {
        self.traceparent
    }

    pub fn data(&self) -> &Value {
        &self.data
    }

    /// The payload as `E`, if this envelope is of `E`'s type.
    pub fn decode<E: Event>(&self) -> Result<E, EnvelopeError> {
        if self.event_type.as_str() != E::TYPE {
            return Err(EnvelopeError::new(
                "type",
                format!("is `{}`, not `{}`", self.event_type, E::TYPE),
            ));
        }
        E::deserialize(&self.data)
            .map_err(|e| EnvelopeError::new("data", format!("does not match `{}`: {e}", E::TYPE)))
    }

    /// The envelope as JSON bytes (what goes on the wire and into the log).
    pub fn to_json(&self) -> Vec<u8> {
        #[allow(clippy::expect_used)] // Infallible: every part is a string or a parsed JSON value.
        serde_json::to_vec(self).expect("a validated envelope always serializes")
    }

    /// Parses and validates an envelope from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_DATA_BYTES + 4 * 1024 {
            return Err(EnvelopeError::new("data", "is too large"));
        }
        serde_json::from_slice(bytes)
            .map_err(|e| EnvelopeError::new("envelope", format!("is not a valid event: {e}")))
    }
}

fn check_id(id: Uuid) -> Result<Uuid, EnvelopeError> {
    if id.is_nil() {
        Err(EnvelopeError::new("id", "must not be the nil UUID"))
    } else {
        Ok(id)
    }
}

fn check_text<'a>(
    field: &'static str,
    value: &'a str,
    max: usize,
) -> Result<&'a str, EnvelopeError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && !value.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(value)
    } else {
        Err(EnvelopeError::new(
            field,
            format!("must be 1 to {max} bytes without spaces or control characters"),
        ))
    }
}

fn check_source(source: &str) -> Result<&str, EnvelopeError> {
    check_text("source", source, MAX_SOURCE_LEN)
}

fn check_subject(subject: &str) -> Result<&str, EnvelopeError> {
    check_text("subject", subject, MAX_SUBJECT_LEN)
}

fn check_data(data: Value) -> Result<Value, EnvelopeError> {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, &data)
        .map_err(|e| EnvelopeError::new("data", format!("cannot be serialized: {e}")))?;
    if counter.0 > MAX_DATA_BYTES {
        return Err(EnvelopeError::new(
            "data",
            format!(
                "is {} bytes; at most {MAX_DATA_BYTES} are allowed",
                counter.0
            ),
        ));
    }
    Ok(data)
}

/// Counts serialized bytes without keeping them.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn format_time(time: OffsetDateTime) -> String {
    // RFC 3339 formatting fails only for years outside 0..=9999.
    time.format(&Rfc3339).unwrap_or_else(|_| time.to_string())
}

pub(crate) fn parse_time(
    field: &'static str,
    value: &str,
) -> Result<OffsetDateTime, EnvelopeError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|e| EnvelopeError::new(field, format!("is not an RFC 3339 time: {e}")))
}

/// The JSON shape, borrowed for writing.
#[derive(Serialize)]
struct WireOut<'a> {
    specversion: &'static str,
    id: String,
    source: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    subject: &'a str,
    time: String,
    datacontenttype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    data: &'a Value,
}

/// The JSON shape, owned for reading.
#[derive(Deserialize)]
struct WireIn {
    specversion: String,
    id: String,
    source: String,
    #[serde(rename = "type")]
    event_type: String,
    subject: String,
    time: String,
    #[serde(default)]
    datacontenttype: Option<String>,
    #[serde(default)]
    traceparent: Option<String>,
    data: Value,
}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        WireOut {
            specversion: SPEC_VERSION,
            id: self.id.to_string(),
            source: &self.source,
            event_type: self.event_type.as_str(),
            subject: &self.subject,
            time: format_time(self.time),
            datacontenttype: DATA_CONTENT_TYPE,
            traceparent: self.traceparent.map(|t| t.to_traceparent()),
            data: &self.data,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = WireIn::deserialize(d)?;
        Envelope::try_from(wire).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<WireIn> for Envelope {
    type Error = EnvelopeError;

    fn try_from(w: WireIn) -> Result<Self, EnvelopeError> {
        if w.specversion != SPEC_VERSION {
            return Err(EnvelopeError::new(
                "specversion",
                format!("must be \"{SPEC_VERSION}\""),
            ));
        }
        if let Some(ct) = &w.datacontenttype
            && ct != DATA_CONTENT_TYPE
        {
            return Err(EnvelopeError::new(
                "datacontenttype",
                format!("must be \"{DATA_CONTENT_TYPE}\""),
            ));
        }
        let id = Uuid::parse_str(&w.id)
            .map_err(|_| EnvelopeError::new("id", "must be a UUID"))
            .and_then(check_id)?;
        let traceparent = match w.traceparent.as_deref() {
            None => None,
            Some(value) => Some(
                TraceContext::parse(value)
                    .ok_or_else(|| EnvelopeError::new("traceparent", "is not a W3C traceparent"))?,
            ),
        };
        check_source(&w.source)?;
        check_subject(&w.subject)?;
        Ok(Self {
            id,
            event_type: EventType::parse(&w.event_type)?,
            time: parse_time("time", &w.time)?,
            traceparent,
            data: check_data(w.data)?,
            source: w.source,
            subject: w.subject,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    fn sample() -> Envelope {
        Envelope::new(
            "/emporium/checkout",
            EventType::parse("order.placed.v1").unwrap(),
            "order-1",
            json!({"order_id": "order-1", "total": 1250}),
        )
        .unwrap()
        .with_trace(TraceContext::new_root())
    }

    #[test]
    fn event_types_follow_the_versioned_pattern() {
        for good in [
            "order.placed.v1",
            "stock.low.v12",
            "shipment.created.v1",
            "a.b_c.d.v0",
        ] {
            assert!(EventType::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "order",
            "order.v1",
            "order.placed",
            "order.placed.v",
            "order.placed.V1",
            "Order.placed.v1",
            "order_x.placed.v1",
            "order.placed2.v1",
            "order..v1",
            ".order.placed.v1",
            "order.placed.v1.",
            "order.placed.v1x",
            "order.pla ced.v1",
        ] {
            assert!(EventType::parse(bad).is_err(), "{bad}");
        }
        let long = format!("a.{}.v1", "b".repeat(MAX_TYPE_LEN));
        assert!(EventType::parse(&long).is_err());
    }

    #[test]
    fn new_envelopes_get_a_v7_id_and_the_current_time() {
        let e = sample();
        assert_eq!(e.id().get_version_num(), 7);
        assert!((OffsetDateTime::now_utc() - e.time()).whole_seconds() < 5);
        assert_ne!(sample().id(), e.id());
    }

    #[test]
    fn json_round_trip_keeps_every_attribute() {
        let e = sample();
        let bytes = e.to_json();
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["specversion"], "1.0");
        assert_eq!(value["type"], "order.placed.v1");
        assert_eq!(value["datacontenttype"], "application/json");
        assert_eq!(
            value["traceparent"],
            e.trace_context().unwrap().to_traceparent()
        );
        assert_eq!(Envelope::from_json(&bytes).unwrap(), e);
    }

    #[test]
    fn reading_rejects_broken_envelopes_and_ignores_extensions() {
        let good = serde_json::to_value(sample()).unwrap();
        let mut with_ext = good.clone();
        with_ext["partitionkey"] = json!("x");
        assert!(serde_json::from_value::<Envelope>(with_ext).is_ok());

        for (field, bad) in [
            ("specversion", json!("0.3")),
            ("id", json!("not-a-uuid")),
            ("id", json!("00000000-0000-0000-0000-000000000000")),
            ("type", json!("OrderPlaced")),
            ("subject", json!("")),
            ("subject", json!("has space")),
            ("source", json!("x".repeat(MAX_SOURCE_LEN + 1))),
            ("time", json!("yesterday")),
            ("datacontenttype", json!("text/plain")),
            ("traceparent", json!("00-zz")),
        ] {
            let mut v = good.clone();
            v[field] = bad;
            assert!(serde_json::from_value::<Envelope>(v).is_err(), "{field}");
        }
        let mut missing = good;
        missing.as_object_mut().unwrap().remove("data");
        assert!(serde_json::from_value::<Envelope>(missing).is_err());
    }

    #[test]
    fn data_size_is_bounded() {
        let ty = EventType::parse("stock.low.v1").unwrap();
        let big = json!({"blob": "x".repeat(MAX_DATA_BYTES)});
        let err = Envelope::new("/emporium/inventory", ty.clone(), "sku-1", big).unwrap_err();
        assert_eq!(err.field, "data");
        let fits = json!({"blob": "x".repeat(MAX_DATA_BYTES - 20)});
        assert!(Envelope::new("/emporium/inventory", ty, "sku-1", fits).is_ok());
    }

    #[test]
    fn nil_ids_are_refused() {
        assert!(sample().with_id(Uuid::nil()).is_err());
        let id = Uuid::now_v7();
        assert_eq!(sample().with_id(id).unwrap().id(), id);
    }
}
