//! SLO gates: `checkout:p99<50ms`, `errors<0.1%`, `browse:p50<=10ms`,
//! `all:p99.9<200ms`, `rps>=100`.
//!
//! A gate names a scope (a journey, a route such as `GET /api/v1/products`,
//! or `all`), a statistic and a bound. The run is judged against every gate
//! at its end; one breach makes `emporium loadgen` exit non-zero.

use std::fmt;

use serde::Serialize;

/// The statistic a gate bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// A latency percentile (50, 90, 99, 99.9, 100 for the maximum).
    Percentile(f64),
    /// Failed requests as a share of all, in percent.
    ErrorRate,
    /// Completed requests per second.
    Throughput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

/// One gate, parsed from its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub text: String,
    /// `all`, a journey name or a route label.
    pub scope: String,
    pub stat: Stat,
    pub op: Op,
    /// Milliseconds for percentiles, percent for errors, per second for throughput.
    pub bound: f64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("SLO `{text}`: {why}")]
pub struct SloError {
    pub text: String,
    pub why: String,
}

impl Slo {
    pub fn parse(text: &str) -> Result<Self, SloError> {
        let fail = |why: &str| SloError {
            text: text.to_owned(),
            why: why.to_owned(),
        };
        let trimmed = text.trim();
        let (op, at, len) = ["<=", ">=", "<", ">"]
            .iter()
            .find_map(|sym| trimmed.find(sym).map(|at| (*sym, at, sym.len())))
            .ok_or_else(|| fail("expected a comparison: <, <=, > or >="))?;
        let op = match op {
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            _ => Op::Ge,
        };
        let (left, right) = (trimmed[..at].trim(), trimmed[at + len..].trim());
        let (scope, stat) = match left.rsplit_once(':') {
            Some((scope, stat)) => (scope.trim(), stat.trim()),
            None => ("all", left),
        };
        if scope.is_empty() {
            return Err(fail("empty scope before `:`"));
        }
        let (stat, bound) = match stat {
            "errors" => {
                let value = right
                    .strip_suffix('%')
                    .ok_or_else(|| fail("an error bound is a percentage, e.g. 0.1%"))?;
                (
                    Stat::ErrorRate,
                    number(value).ok_or_else(|| fail("not a number"))?,
                )
            }
            "rps" => (
                Stat::Throughput,
                number(right).ok_or_else(|| fail("not a number of requests per second"))?,
            ),
            "max" => (
                Stat::Percentile(100.0),
                millis(right).ok_or_else(|| fail("a latency is written 250us, 50ms or 2s"))?,
            ),
            p if p.starts_with('p') => {
                let q = number(&p[1..]).filter(|q| *q > 0.0 && *q <= 100.0);
                let q = q.ok_or_else(|| fail("a percentile is p50, p99, p99.9, …"))?;
                (
                    Stat::Percentile(q),
                    millis(right).ok_or_else(|| fail("a latency is written 250us, 50ms or 2s"))?,
                )
            }
            _ => return Err(fail("the statistic is pNN, max, errors or rps")),
        };
        Ok(Self {
            text: trimmed.to_owned(),
            scope: scope.to_owned(),
            stat,
            op,
            bound,
        })
    }

    /// Whether `value` (in the gate's unit) meets the gate.
    pub fn holds(&self, value: f64) -> bool {
        match self.op {
            Op::Lt => value < self.bound,
            Op::Le => value <= self.bound,
            Op::Gt => value > self.bound,
            Op::Ge => value >= self.bound,
        }
    }
}

fn number(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
}

fn millis(text: &str) -> Option<f64> {
    let text = text.trim();
    let (value, scale) = if let Some(v) = text.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1000.0)
    } else {
        return None;
    };
    number(value).map(|v| v * scale)
}

/// How one gate came out.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub slo: String,
    /// The measured value (None when the scope saw no request).
    pub value: Option<f64>,
    pub ok: bool,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.ok { "ok  " } else { "FAIL" };
        match self.value {
            Some(v) => write!(f, "{mark} {} (measured {v:.3})", self.slo),
            None => write!(f, "{mark} {} (no request in scope)", self.slo),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_parse_scope_statistic_and_bound() {
        let s = Slo::parse("checkout:p99<50ms").unwrap();
        assert_eq!(
            (s.scope.as_str(), s.stat, s.op, s.bound),
            ("checkout", Stat::Percentile(99.0), Op::Lt, 50.0)
        );
        let s = Slo::parse("errors<0.1%").unwrap();
        assert_eq!(
            (s.scope.as_str(), s.stat, s.bound),
            ("all", Stat::ErrorRate, 0.1)
        );
        let s = Slo::parse("GET /api/v1/products:p99.9<=2s").unwrap();
        assert_eq!(
            (s.scope.as_str(), s.stat, s.op, s.bound),
            (
                "GET /api/v1/products",
                Stat::Percentile(99.9),
                Op::Le,
                2000.0
            )
        );
        let s = Slo::parse("rps>=100").unwrap();
        assert_eq!((s.stat, s.op, s.bound), (Stat::Throughput, Op::Ge, 100.0));
        assert_eq!(Slo::parse("browse:max<500us").unwrap().bound, 0.5);
    }

    #[test]
    fn malformed_gates_say_what_is_wrong() {
        for (text, why) in [
            ("checkout:p99", "comparison"),
            ("checkout:p99<50", "latency"),
            ("errors<0.1", "percentage"),
            ("checkout:p0<5ms", "percentile"),
            ("checkout:p101<5ms", "percentile"),
            ("checkout:median<5ms", "statistic"),
            (":p99<5ms", "scope"),
            ("rps>lots", "number"),
        ] {
            let e = Slo::parse(text).unwrap_err();
            assert!(e.to_string().contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn a_gate_holds_by_its_comparison() {
        let lt = Slo::parse("p99<50ms").unwrap();
        assert!(lt.holds(49.9) && !lt.holds(50.0));
        let ge = Slo::parse("rps>=10").unwrap();
        assert!(ge.holds(10.0) && !ge.holds(9.99));
    }
}
