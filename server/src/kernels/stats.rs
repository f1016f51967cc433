//! Statistics of timing samples and when to stop taking them, after nvbench's practice: at least
//! a minimum number of samples and of sampled time, then stop once the relative standard
//! deviation is small enough, or at a time-out, flagging results whose noise stayed high.

use serde::{Deserialize, Serialize};

/// When sampling stops. Defaults are nvbench's: 10 samples, 0.5 s of sampled time, 0.5% noise,
/// 15 s time-out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StopRule {
    pub min_samples: usize,
    pub min_seconds: f64,
    /// Relative standard deviation (0.005 = 0.5%) under which the measurement has converged.
    pub max_noise: f64,
    pub timeout_seconds: f64,
}

impl Default for StopRule {
    fn default() -> StopRule {
        StopRule { min_samples: 10, min_seconds: 0.5, max_noise: 0.005, timeout_seconds: 15.0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// Noise fell under the threshold.
    Converged,
    /// The time-out came first; the noise may still be high.
    TimedOut,
}

/// Whether to take another sample, given the samples so far (seconds each), the sampled time and
/// the wall time since sampling started.
pub fn decide(samples: &[f64], sampled_seconds: f64, wall_seconds: f64, rule: &StopRule) -> Option<Stop> {
    if wall_seconds >= rule.timeout_seconds {
        return Some(Stop::TimedOut);
    }
    if samples.len() < rule.min_samples || sampled_seconds < rule.min_seconds {
        return None;
    }
    (relative_stddev(samples) < rule.max_noise).then_some(Stop::Converged)
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub samples: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Standard deviation relative to the mean (0.003 = 0.3%).
    pub noise: f64,
}

/// `None` for no samples.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
    Some(Summary {
        samples: n,
        median,
        min: sorted[0],
        max: sorted[n - 1],
        mean: mean(samples),
        noise: relative_stddev(samples),
    })
}

fn mean(samples: &[f64]) -> f64 {
    samples.iter().sum::<f64>() / samples.len().max(1) as f64
}

/// Sample standard deviation over the mean; 0 for fewer than two samples.
pub fn relative_stddev(samples: &[f64]) -> f64 {
    if samples.len() < 2 {
        return 0.0;
    }
    let m = mean(samples);
    let variance = samples.iter().map(|s| (s - m).powi(2)).sum::<f64>() / (samples.len() - 1) as f64;
    if m == 0.0 {
        0.0
    } else {
        variance.sqrt() / m
    }
}

/// Launches per timed sample for a kernel that takes `single_seconds`: short kernels are batched so
/// that each event pair spans at least `target_seconds` and launch overhead is not what is timed.
pub fn batch_size(single_seconds: f64, target_seconds: f64) -> u32 {
    if single_seconds <= 0.0 || !single_seconds.is_finite() {
        return 1000;
    }
    // A relative tolerance keeps 1e-3 / 2e-6 at 500, not 501, and absorbs the f32 rounding of
    // event times (40 µs arrives as 39.99999 µs).
    (target_seconds / single_seconds * (1.0 - 1e-6)).ceil().clamp(1.0, 1000.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_samples() {
        let s = summarize(&[3.0, 1.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.samples, s.median, s.min, s.max, s.mean), (4, 2.5, 1.0, 4.0, 2.5));
        // Sample standard deviation of 1..4 is sqrt(5/3).
        assert!((s.noise - (5.0f64 / 3.0).sqrt() / 2.5).abs() < 1e-12);
        assert_eq!(summarize(&[7.0]).unwrap().noise, 0.0);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn stops_only_with_enough_samples_and_time_then_on_low_noise() {
        let rule = StopRule::default();
        let steady = vec![1e-3; 9];
        assert_eq!(decide(&steady, 0.9, 1.0, &rule), None, "nine samples are not enough");
        let steady = vec![1e-3; 10];
        assert_eq!(decide(&steady, 0.01, 0.02, &rule), None, "0.01 s of samples is not enough");
        assert_eq!(decide(&steady, 0.6, 0.7, &rule), Some(Stop::Converged));
        let noisy: Vec<f64> = (0..100).map(|i| if i % 2 == 0 { 1e-3 } else { 1.1e-3 }).collect();
        assert_eq!(decide(&noisy, 5.0, 5.0, &rule), None, "5% noise keeps sampling");
        assert_eq!(decide(&noisy, 5.0, 15.0, &rule), Some(Stop::TimedOut));
        assert_eq!(decide(&[], 0.0, 16.0, &rule), Some(Stop::TimedOut));
    }

    #[test]
    fn short_kernels_are_batched() {
        assert_eq!(batch_size(2e-6, 1e-3), 500);
        assert_eq!(batch_size(5e-3, 1e-3), 1);
        assert_eq!(batch_size(f64::from(0.04f32) / 1e3, 1e-3), 25);
        assert_eq!(batch_size(1e-9, 1e-3), 1000);
        assert_eq!(batch_size(0.0, 1e-3), 1000);
    }
}
