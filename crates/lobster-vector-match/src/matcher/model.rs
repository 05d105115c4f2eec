//! The ranker and the calibration a build fits, stored with the collection.
//!
//! The ranker is a linear scoring function over standardised
//! [features](super::candidates::FEATURES), trained listwise: for each
//! training query, the softmax over its candidates should put the concept
//! that owns the held-out synonym first. The calibration maps a row's ranker
//! score and its share of the query's softmax to the probability that the
//! row is right, with non-negative slopes, so rows in score order are rows in
//! ranker order.

use serde::{Deserialize, Serialize};

use super::candidates::{Candidate, FEATURES, N_FEATURES};

/// The collection-metadata key the fitted model is stored under.
pub const MODEL_KEY: &str = "matcher";

/// A fitted ranker and calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatcherModel {
    /// Feature names, in order (a model with other names is not applied).
    pub features: Vec<String>,
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    pub weights: Vec<f32>,
    pub calibration: Calibration,
    /// How it was fitted and what it reached on its own held-out queries.
    pub report: FitReport,
    /// [`FEATURES_CODE`] of the code that computed the features it was
    /// fitted on (0 when fitted before it was recorded).
    #[serde(default)]
    pub features_code: u64,
}

/// The fingerprint of the code that computes the features (candidate
/// generation, the lexical index and the label grammar): a model fitted
/// under another one still applies when its feature names match, but is
/// [stale](MatcherModel::is_current) and a build fits it again.
pub const FEATURES_CODE: u64 = crate::compiled::fingerprint(&[
    include_bytes!("candidates.rs"),
    include_bytes!("lexical.rs"),
    include_bytes!("text.rs"),
    include_bytes!("structure.rs"),
]);

/// `p = sigmoid(score_slope · score + share_slope · ln(share) + bias)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub score_slope: f32,
    pub share_slope: f32,
    pub bias: f32,
}

/// Fitting figures, kept with the model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FitReport {
    pub seed: u64,
    /// Held-out synonyms sampled, and those used (not exact elsewhere, owner among the candidates).
    pub sampled: usize,
    pub train_queries: usize,
    pub calibration_queries: usize,
    /// On the calibration queries: acc@1 of the dense channel alone and of the ranker.
    pub dense_acc1: f64,
    pub ranker_acc1: f64,
    /// Share of calibration queries whose owner was among the candidates.
    pub candidate_recall: f64,
    /// Expected calibration error of the top row on the calibration queries (10 bins).
    pub ece: f64,
    /// Features held at weight 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without: Vec<String>,
    pub seconds: f64,
}

/// One training or calibration query: its candidates and the positions of
/// those that are right (empty when no right concept was among them).
#[derive(Debug, Clone)]
pub struct Example {
    pub candidates: Vec<[f32; N_FEATURES]>,
    pub golds: Vec<usize>,
    /// Position of the owner in dense order (acc@1 of dense alone), if found by it.
    pub dense_top_is_gold: bool,
}

impl MatcherModel {
    /// The model stored in a collection's metadata under [`MODEL_KEY`]:
    /// `None` when there is none, an error when it does not parse.
    pub fn from_metadata(
        metadata: &crate::Metadata,
    ) -> Option<std::result::Result<MatcherModel, serde_json::Error>> {
        metadata
            .get(MODEL_KEY)
            .map(|v| serde_json::from_value(v.clone()))
    }

    /// Whether the model was fitted on this build's feature set.
    pub fn is_compatible(&self) -> bool {
        self.features.len() == N_FEATURES
            && self.features.iter().zip(FEATURES).all(|(a, b)| a == b)
            && self.mean.len() == N_FEATURES
            && self.scale.len() == N_FEATURES
            && self.weights.len() == N_FEATURES
    }

    /// Whether the model is [compatible](Self::is_compatible) and was
    /// fitted on features computed by this build's code ([`FEATURES_CODE`]).
    pub fn is_current(&self) -> bool {
        self.is_compatible() && self.features_code == FEATURES_CODE
    }

    /// The ranker's score of one feature vector.
    pub fn score(&self, f: &[f32; N_FEATURES]) -> f32 {
        f.iter()
            .zip(&self.weights)
            .zip(self.mean.iter().zip(&self.scale))
            .map(|((x, w), (m, sd))| w * (x - m) / sd)
            .sum()
    }

    /// Scores and calibrated probabilities of a query's candidates, in input order.
    pub fn rank(&self, candidates: &[&Candidate]) -> Vec<(f32, f32)> {
        let scores: Vec<f32> = candidates.iter().map(|c| self.score(&c.features)).collect();
        let shares = log_softmax(&scores);
        scores
            .iter()
            .zip(shares)
            .map(|(&s, ls)| (s, self.calibration.probability(s, ls)))
            .collect()
    }
}

impl Calibration {
    pub fn probability(&self, score: f32, log_share: f32) -> f32 {
        sigmoid(self.score_slope * score + self.share_slope * log_share + self.bias)
    }
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

pub(crate) fn log_softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::MIN, f32::max);
    let sum: f32 = scores.iter().map(|s| (s - max).exp()).sum();
    let log_z = max + sum.ln();
    scores.iter().map(|s| s - log_z).collect()
}

/// Adam steps on a full-batch gradient.
struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
    rate: f64,
}

impl Adam {
    fn new(n: usize, rate: f64) -> Self {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            rate,
        }
    }

    fn step(&mut self, w: &mut [f64], g: &[f64]) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        self.t += 1;
        for i in 0..w.len() {
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * g[i];
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * g[i] * g[i];
            let mh = self.m[i] / (1.0 - B1.powi(self.t));
            let vh = self.v[i] / (1.0 - B2.powi(self.t));
            w[i] -= self.rate * mh / (vh.sqrt() + 1e-8);
        }
    }
}

/// Iterations of the ranker and calibration fits.
const RANKER_STEPS: usize = 300;
const CALIBRATION_STEPS: usize = 300;
/// L2 penalty on the standardised ranker weights.
const L2: f64 = 1e-3;
/// Rows per calibration query used to fit the calibration.
const CALIBRATION_ROWS: usize = 5;

/// Fits the ranker on `train` (examples with their owner among the
/// candidates), the calibration on `calibrate`, and reports on `calibrate`.
/// Deterministic: sums run in input order.
/// Features named in `without` keep weight 0 (ablations).
pub fn fit(
    train: &[Example],
    calibrate: &[Example],
    without: &[usize],
    mut report: FitReport,
) -> MatcherModel {
    let usable: Vec<&Example> = train.iter().filter(|e| !e.golds.is_empty()).collect();
    // Standardisation over every training candidate.
    let mut mean = [0.0f64; N_FEATURES];
    let mut sq = [0.0f64; N_FEATURES];
    let mut n = 0.0f64;
    for e in &usable {
        for c in &e.candidates {
            for i in 0..N_FEATURES {
                mean[i] += f64::from(c[i]);
                sq[i] += f64::from(c[i]) * f64::from(c[i]);
            }
            n += 1.0;
        }
    }
    let n = n.max(1.0);
    let mean: Vec<f32> = mean.iter().map(|m| (m / n) as f32).collect();
    let scale: Vec<f32> = sq
        .iter()
        .zip(&mean)
        .map(|(s, &m)| {
            let var = s / n - f64::from(m) * f64::from(m);
            if var > 1e-12 {
                var.sqrt() as f32
            } else {
                1.0
            }
        })
        .collect();
    let standard: Vec<(Vec<[f64; N_FEATURES]>, &[usize])> = usable
        .iter()
        .map(|e| {
            let rows = e
                .candidates
                .iter()
                .map(|c| {
                    let mut r = [0.0f64; N_FEATURES];
                    for i in 0..N_FEATURES {
                        r[i] = f64::from((c[i] - mean[i]) / scale[i]);
                    }
                    r
                })
                .collect();
            (rows, e.golds.as_slice())
        })
        .collect();

    let mut w = vec![0.0f64; N_FEATURES];
    // Start from the dense similarity alone.
    w[0] = 1.0;
    let clear = |w: &mut [f64]| without.iter().for_each(|&i| w[i] = 0.0);
    clear(&mut w);
    let mut adam = Adam::new(N_FEATURES, 0.05);
    let mut grad = vec![0.0f64; N_FEATURES];
    for _ in 0..RANKER_STEPS {
        grad.iter_mut().for_each(|g| *g = 0.0);
        for (rows, gold) in &standard {
            let scores: Vec<f64> = rows.iter().map(|r| dot(&w, r)).collect();
            let max = scores.iter().copied().fold(f64::MIN, f64::max);
            let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let z: f64 = exps.iter().sum();
            let z_gold: f64 = gold.iter().map(|&g| exps[g]).sum();
            // Loss -ln(sum of the right candidates' probabilities).
            for (j, r) in rows.iter().enumerate() {
                let right = if gold.contains(&j) {
                    exps[j] / z_gold
                } else {
                    0.0
                };
                let p = exps[j] / z - right;
                for i in 0..N_FEATURES {
                    grad[i] += p * r[i];
                }
            }
        }
        let m = standard.len().max(1) as f64;
        for i in 0..N_FEATURES {
            grad[i] = grad[i] / m + 2.0 * L2 * w[i];
        }
        adam.step(&mut w, &grad);
        clear(&mut w);
    }
    let mut model = MatcherModel {
        features: FEATURES.iter().map(|s| s.to_string()).collect(),
        mean,
        scale,
        weights: w.iter().map(|&x| x as f32).collect(),
        calibration: Calibration {
            score_slope: 1.0,
            share_slope: 0.0,
            bias: 0.0,
        },
        report: FitReport::default(),
        features_code: FEATURES_CODE,
    };

    // Calibration rows: the best few rows of each calibration query.
    let mut rows: Vec<(f64, f64, f64)> = Vec::new(); // (score, log share, label)
    let mut tops: Vec<(f32, f32, bool)> = Vec::new(); // (score, log share, correct)
    let mut dense_hits = 0usize;
    let mut ranker_hits = 0usize;
    let mut recalled = 0usize;
    for e in calibrate {
        dense_hits += usize::from(e.dense_top_is_gold);
        if e.candidates.is_empty() {
            continue;
        }
        recalled += usize::from(!e.golds.is_empty());
        let scores: Vec<f32> = e.candidates.iter().map(|c| model.score(c)).collect();
        let shares = log_softmax(&scores);
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let top_right = e.golds.contains(&order[0]);
        ranker_hits += usize::from(top_right);
        tops.push((scores[order[0]], shares[order[0]], top_right));
        for &j in order.iter().take(CALIBRATION_ROWS) {
            let label = if e.golds.contains(&j) { 1.0 } else { 0.0 };
            rows.push((f64::from(scores[j]), f64::from(shares[j]), label));
        }
    }
    let mut c = vec![0.5f64, 0.5, 0.0];
    let mut adam = Adam::new(3, 0.05);
    for _ in 0..CALIBRATION_STEPS {
        let mut g = [0.0f64; 3];
        for &(s, ls, y) in &rows {
            let p = 1.0 / (1.0 + (-(c[0] * s + c[1] * ls + c[2])).exp());
            let d = p - y;
            g[0] += d * s;
            g[1] += d * ls;
            g[2] += d;
        }
        let m = rows.len().max(1) as f64;
        g.iter_mut().for_each(|x| *x /= m);
        adam.step(&mut c, &g);
        // Non-negative slopes keep score order equal to ranker order.
        c[0] = c[0].max(0.0);
        c[1] = c[1].max(0.0);
    }
    model.calibration = Calibration {
        score_slope: c[0] as f32,
        share_slope: c[1] as f32,
        bias: c[2] as f32,
    };
    let probs: Vec<(f64, bool)> = tops
        .iter()
        .map(|&(s, ls, ok)| (f64::from(model.calibration.probability(s, ls)), ok))
        .collect();
    let total = calibrate.len().max(1) as f64;
    report.train_queries = usable.len();
    report.calibration_queries = calibrate.len();
    report.dense_acc1 = dense_hits as f64 / total;
    report.ranker_acc1 = ranker_hits as f64 / total;
    report.candidate_recall = recalled as f64 / total;
    report.ece = expected_calibration_error(&probs, 10);
    model.report = report;
    model
}

/// Expected calibration error of `(confidence, correct)` pairs over equal-width bins.
pub fn expected_calibration_error(pairs: &[(f64, bool)], bins: usize) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let mut sum_p = vec![0.0f64; bins];
    let mut sum_y = vec![0.0f64; bins];
    let mut count = vec![0usize; bins];
    for &(p, y) in pairs {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        sum_p[b] += p;
        sum_y[b] += f64::from(u8::from(y));
        count[b] += 1;
    }
    let n = pairs.len() as f64;
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| (sum_p[b] - sum_y[b]).abs() / n)
        .sum()
}

fn dot(w: &[f64], r: &[f64; N_FEATURES]) -> f64 {
    w.iter().zip(r).map(|(a, b)| a * b).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ece_of_perfect_and_overconfident() {
        let perfect = [(1.0, true), (0.0, false)];
        assert!(expected_calibration_error(&perfect, 10) < 1e-9);
        let over = [(0.95, false), (0.95, false)];
        assert!((expected_calibration_error(&over, 10) - 0.95).abs() < 1e-9);
    }

    #[test]
    fn the_ranker_learns_which_feature_predicts_the_owner() {
        // Feature 6 (trigram) marks the owner; feature 0 (dense) is noise.
        let mk = |seed: usize| -> Example {
            let candidates: Vec<[f32; N_FEATURES]> = (0..8)
                .map(|j| {
                    let mut f = [0.0f32; N_FEATURES];
                    f[0] = ((seed * 7 + j * 13) % 10) as f32 / 10.0;
                    f[6] = if j == seed % 8 {
                        0.9
                    } else {
                        0.2 + (j % 3) as f32 * 0.1
                    };
                    f
                })
                .collect();
            Example {
                candidates,
                golds: vec![seed % 8],
                dense_top_is_gold: false,
            }
        };
        let train: Vec<Example> = (0..80).map(mk).collect();
        let cal: Vec<Example> = (80..120).map(mk).collect();
        let m = fit(&train, &cal, &[], FitReport::default());
        assert!(m.weights[6] > m.weights[0].abs(), "{:?}", m.weights);
        assert!(m.report.ranker_acc1 > 0.95, "{:?}", m.report);
        assert!(m.calibration.score_slope >= 0.0 && m.calibration.share_slope >= 0.0);
    }
}
