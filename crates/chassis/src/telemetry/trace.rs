//! W3C Trace Context (`traceparent`), without an external tracing SDK.
//!
//! Every request handled by the chassis gets a [`TraceContext`]: the caller's
//! trace continued with a new span id, or a new trace. It is put in the
//! request's extensions, recorded on the request span as `trace_id`/`span_id`
//! (so every log line of the request carries them), and written into outgoing
//! gRPC metadata by [`TraceContext::inject`].

use std::fmt;

use http::HeaderMap;

/// The header (and gRPC metadata key) carrying the trace context.
pub const TRACEPARENT: &str = "traceparent";

/// One span's position in a distributed trace.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
}

impl TraceContext {
    /// The first span of a new trace.
    pub fn new_root() -> Self {
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&random_u64().to_le_bytes());
        trace_id[8..].copy_from_slice(&random_u64().to_le_bytes());
        if trace_id == [0; 16] {
            trace_id[0] = 1; // all zeros is invalid
        }
        Self {
            trace_id,
            span_id: new_span_id(),
            sampled: true,
        }
    }

    /// A new span in the same trace, as a child of this one.
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// The caller's context if the headers carry a valid `traceparent`.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        headers
            .get(TRACEPARENT)?
            .to_str()
            .ok()
            .and_then(Self::parse)
    }

    /// The span for a request arriving with `headers`: a child of the caller's
    /// span, or the root of a new trace.
    pub fn for_incoming(headers: &HeaderMap) -> Self {
        Self::from_headers(headers).map_or_else(Self::new_root, |parent| parent.child())
    }

    /// Parses a `traceparent` value (`00-<32 hex>-<16 hex>-<2 hex>`). Later
    /// versions are read by their version-00 prefix, as the spec asks.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let mut parts = value.splitn(5, '-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        let rest = parts.next();
        if version.len() != 2 || version == "ff" || !is_lower_hex(version) {
            return None;
        }
        if version == "00" && (rest.is_some() || flags.len() != 2) {
            return None;
        }
        let flags = flags.get(..2)?;
        let trace_id: [u8; 16] = decode_hex(trace)?;
        let span_id: [u8; 8] = decode_hex(span)?;
        let flags: [u8; 1] = decode_hex(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags[0] & 1 == 1,
        })
    }

    pub fn trace_id(&self) -> String {
        encode_hex(&self.trace_id)
    }

    pub fn span_id(&self) -> String {
        encode_hex(&self.span_id)
    }

    /// The `traceparent` value naming this span as the parent.
    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            self.trace_id(),
            self.span_id(),
            u8::from(self.sampled)
        )
    }

    /// Writes this context into the metadata of an outgoing gRPC request.
    pub fn inject<T>(&self, request: &mut tonic::Request<T>) {
        if let Ok(value) = self.to_traceparent().parse() {
            request.metadata_mut().insert(TRACEPARENT, value);
        }
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_traceparent())
    }
}

/// 64 random bits for ids (trace, span, request ids): unique, not secret.
/// A per-thread SplitMix64 generator seeded once from the operating system,
/// so an id costs no system call (a `getrandom` per id was several percent
/// of a cached read's CPU time).
pub fn random_u64() -> u64 {
    use std::cell::Cell;
    fn seed() -> u64 {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            // No OS randomness: the clock and the thread still make ids
            // unique enough to tell requests apart.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let thread = format!("{:?}", std::thread::current().id());
            return (nanos as u64)
                ^ thread
                    .bytes()
                    .fold(0u64, |h, b| h.rotate_left(5) ^ u64::from(b));
        }
        u64::from_le_bytes(bytes)
    }
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    STATE.with(|state| {
        let x = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

fn new_span_id() -> [u8; 8] {
    let id = random_u64().to_le_bytes();
    if id == [0; 8] {
        [1, 0, 0, 0, 0, 0, 0, 0]
    } else {
        id
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !is_lower_hex(s) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

fn encode_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn new_ids_are_distinct_across_threads_and_never_zero() {
        let ids: Vec<u64> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..50_000).map(|_| random_u64()).collect::<Vec<_>>()))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        let roots: std::collections::HashSet<_> = (0..10_000)
            .map(|_| TraceContext::new_root().trace_id())
            .collect();
        assert_eq!(roots.len(), 10_000);
        assert!(roots.iter().all(|t| t.len() == 32 && t != &"0".repeat(32)));
    }

    #[test]
    fn parses_and_prints_a_valid_traceparent() {
        let ctx = TraceContext::parse(SAMPLE).unwrap();
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.span_id(), "00f067aa0ba902b7");
        assert_eq!(ctx.to_traceparent(), SAMPLE);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn accepts_future_versions_by_their_prefix() {
        let v = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-whatever";
        assert_eq!(
            TraceContext::parse(v).unwrap().trace_id(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn children_keep_the_trace_and_change_the_span() {
        let parent = TraceContext::parse(SAMPLE).unwrap();
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.span_id(), parent.span_id());
    }

    #[test]
    fn new_roots_differ_and_round_trip() {
        let a = TraceContext::new_root();
        let b = TraceContext::new_root();
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(TraceContext::parse(&a.to_traceparent()), Some(a));
    }
}
