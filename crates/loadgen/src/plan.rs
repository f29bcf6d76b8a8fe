//! What a run does: how requests arrive, which journeys, for how long.

use std::time::Duration;

/// How journeys arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrival {
    /// Open loop, evenly spaced: `rate` journeys per second.
    Constant { rate: f64 },
    /// Open loop, exponential gaps (a Poisson process) averaging `rate`/s.
    Poisson { rate: f64 },
    /// Closed loop: `users` virtual users, each starting its next journey
    /// `think` after its last one ended. Coordinated omission is inherent to
    /// this mode; use it to model people, not to measure latency.
    VirtualUsers { users: u32, think: Duration },
}

/// The user journeys and their weights (Online Boutique's and the
/// OpenTelemetry demo's Locust mixes: browse 10, product 10, currency 2,
/// cart 3, add 2, checkout 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Journey {
    /// A page of the product list.
    Browse,
    /// One product.
    Product,
    /// One product, priced in another currency.
    Currency,
    /// The signed-in shopper's cart.
    Cart,
    /// Add a product to the cart.
    Add,
    /// Add a product and check out (one in ten with a card that is declined).
    Checkout,
}

impl Journey {
    pub const ALL: [Journey; 6] = [
        Journey::Browse,
        Journey::Product,
        Journey::Currency,
        Journey::Cart,
        Journey::Add,
        Journey::Checkout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Browse => "browse",
            Self::Product => "product",
            Self::Currency => "currency",
            Self::Cart => "cart",
            Self::Add => "add",
            Self::Checkout => "checkout",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|j| j.name() == name)
    }

    /// Whether the journey needs a signed-in shopper.
    pub fn signed_in(self) -> bool {
        matches!(self, Self::Cart | Self::Add | Self::Checkout)
    }
}

/// The largest weight one journey may have.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// Weights of the journeys (0 leaves one out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(pub Vec<(Journey, u32)>);

impl Default for Mix {
    fn default() -> Self {
        Self(vec![
            (Journey::Browse, 10),
            (Journey::Product, 10),
            (Journey::Currency, 2),
            (Journey::Cart, 3),
            (Journey::Add, 2),
            (Journey::Checkout, 1),
        ])
    }
}

impl Mix {
    /// `browse=10,checkout=1`: the journeys named, with their weights; the
    /// others are left out.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}`: write journey=weight"))?;
            let journey = Journey::parse(name.trim()).ok_or_else(|| {
                format!(
                    "`{name}` is not a journey (browse, product, currency, cart, add, checkout)"
                )
            })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .ok()
                .filter(|w| *w <= MAX_WEIGHT)
                .ok_or_else(|| {
                    format!("`{weight}` is not a whole number from 0 to {MAX_WEIGHT}")
                })?;
            out.push((journey, weight));
        }
        let mix = Self(out);
        if mix.total() == 0 {
            return Err("the mix gives every journey weight 0".into());
        }
        Ok(mix)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, w)| u64::from(*w)).sum()
    }

    /// The journey a uniform draw in `[0, 1)` falls on.
    pub fn pick(&self, unit: f64) -> Journey {
        let mut point = (unit * self.total() as f64) as u64;
        for (journey, weight) in &self.0 {
            let weight = u64::from(*weight);
            if point < weight {
                return *journey;
            }
            point -= weight;
        }
        self.0.last().map_or(Journey::Browse, |(j, _)| *j)
    }
}

/// A whole run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The public API, e.g. `http://127.0.0.1:8080`.
    pub target: String,
    pub arrival: Arrival,
    /// How long journeys keep starting.
    pub duration: Duration,
    /// The arrival rate grows linearly from zero over this long.
    pub ramp: Duration,
    /// Stop starting journeys after this many (None: no bound but the duration).
    pub max_journeys: Option<u64>,
    pub mix: Mix,
    /// Shoppers signed up at the start, shared by the signed-in journeys.
    pub shoppers: u32,
    /// Seed of every random choice: the same seed, the same run.
    pub seed: u64,
    /// Bound on each request.
    pub request_timeout: Duration,
    /// Open loop: journeys in flight beyond this are not started but
    /// counted as dropped (the target has fallen over).
    pub max_in_flight: usize,
}

impl Plan {
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            arrival: Arrival::Poisson { rate: 20.0 },
            duration: Duration::from_secs(10),
            ramp: Duration::ZERO,
            max_journeys: None,
            mix: Mix::default(),
            shoppers: 10,
            seed: 1,
            request_timeout: Duration::from_secs(10),
            max_in_flight: 10_000,
        }
    }
}

/// A small, seeded random number generator (xorshift64*): reproducible runs,
/// not cryptography.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An exponential gap with mean `1 / rate` seconds.
    pub fn exponential(&mut self, rate: f64) -> Duration {
        Duration::from_secs_f64((self.exp1() / rate).min(3600.0))
    }

    /// An exponential draw with mean 1.
    pub fn exp1(&mut self) -> f64 {
        let u = 1.0 - self.unit(); // (0, 1]
        -u.ln()
    }
}

/// When the next journey starts, in seconds from the start of the run: the
/// time at which the expected number of arrivals has grown by `gap` (1 for
/// evenly spaced arrivals, an Exp(1) draw for Poisson ones) since `now`,
/// with the rate growing linearly from 0 to `rate` over `ramp` seconds.
pub fn next_start(now: f64, gap: f64, rate: f64, ramp: f64) -> f64 {
    // Expected arrivals by t: rate·t²/(2·ramp) during the ramp, then
    // rate·(t − ramp/2); invert it at (arrivals by now) + gap.
    let arrivals = |t: f64| {
        if t < ramp {
            rate * t * t / (2.0 * ramp)
        } else {
            rate * (t - ramp / 2.0)
        }
    };
    let target = arrivals(now) + gap;
    if ramp > 0.0 && target < rate * ramp / 2.0 {
        (2.0 * ramp * target / rate).sqrt()
    } else {
        target / rate + ramp / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_mix_follows_the_anchors_weights() {
        let mix = Mix::default();
        assert_eq!(mix.total(), 28);
        let mut rng = Rng::new(7);
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..28_000 {
            *counts.entry(mix.pick(rng.unit())).or_insert(0u32) += 1;
        }
        let checkout = counts[&Journey::Checkout];
        assert!((700..=1300).contains(&checkout), "{counts:?}");
        assert!(counts[&Journey::Browse] > 8 * checkout);
    }

    #[test]
    fn a_mix_is_parsed_and_bad_ones_are_explained() {
        let mix = Mix::parse("browse=3, checkout=1").unwrap();
        assert_eq!(mix.0, vec![(Journey::Browse, 3), (Journey::Checkout, 1)]);
        assert!(Mix::parse("browse").unwrap_err().contains("journey=weight"));
        assert!(Mix::parse("shop=1").unwrap_err().contains("not a journey"));
        assert!(Mix::parse("browse=x").unwrap_err().contains("whole number"));
        assert!(Mix::parse("browse=0").unwrap_err().contains("weight 0"));
        // Weights are bounded, so their sum cannot overflow.
        assert!(
            Mix::parse("browse=4294967295,product=2")
                .unwrap_err()
                .contains("from 0 to")
        );
    }

    #[test]
    fn a_ramp_grows_the_rate_linearly_then_holds_it() {
        // 100/s after a 10 s ramp: 125 arrivals in the first 5 s (the area
        // under the ramp), 500 by its end, then one every 10 ms.
        let (mut t, mut starts) = (0.0, Vec::new());
        while t < 12.0 {
            t = next_start(t, 1.0, 100.0, 10.0);
            starts.push(t);
        }
        let by = |s: f64| starts.iter().filter(|t| **t < s).count();
        assert!((124..=126).contains(&by(5.0)), "{}", by(5.0));
        assert!((499..=501).contains(&by(10.0)), "{}", by(10.0));
        let late: Vec<f64> = starts
            .windows(2)
            .filter(|w| w[0] > 10.5)
            .map(|w| w[1] - w[0])
            .collect();
        assert!(late.iter().all(|gap| (gap - 0.01).abs() < 1e-9), "{late:?}");
        // Without a ramp: evenly spaced from the start.
        assert!((next_start(0.0, 1.0, 50.0, 0.0) - 0.02).abs() < 1e-12);
    }

    #[test]
    fn poisson_gaps_average_the_rate_and_a_seed_repeats_a_run() {
        let mut a = Rng::new(42);
        let mean = (0..20_000)
            .map(|_| a.exponential(100.0).as_secs_f64())
            .sum::<f64>()
            / 20_000.0;
        assert!((mean - 0.01).abs() < 0.0005, "mean gap {mean}");
        let (mut x, mut y) = (Rng::new(5), Rng::new(5));
        assert!((0..100).all(|_| x.unit() == y.unit()));
    }
}
