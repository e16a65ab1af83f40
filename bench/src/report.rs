//! What a scenario returns: rows of named figures, printed as a table and
//! optionally written as JSON, plus latency percentiles.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

/// A scenario's result.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// One row per case; cells as displayed.
    pub rows: Vec<Vec<String>>,
    /// Free-form notes (settings, machine load, caveats).
    pub notes: Vec<String>,
}

impl Report {
    /// An empty report with these columns.
    pub(crate) fn new(scenario: &str, columns: &[&str]) -> Self {
        Self {
            scenario: scenario.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Appends a row; cells are anything displayable.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Appends a note printed under the table.
    pub(crate) fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// A Markdown table, ready to paste into `docs/BENCHMARKS.md`.
    pub(crate) fn table(&self) -> String {
        let mut out = format!("## {}\n\n| {} |\n|", self.scenario, self.columns.join(" | "));
        for _ in &self.columns {
            out.push_str("---|");
        }
        out.push('\n');
        for row in &self.rows {
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
        for note in &self.notes {
            let _ = writeln!(out, "\n{note}");
        }
        out
    }

    /// Writes the report as pretty JSON.
    pub(crate) fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }
}

/// Writes several reports as one pretty JSON array.
pub(crate) fn write_json_all(reports: &[Report], path: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(reports)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Latency percentiles of a sample.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
    /// Sample size.
    pub count: usize,
}

impl Percentiles {
    /// Sorts `sample` and reads its percentiles; `None` when it is empty.
    pub(crate) fn of(sample: &mut [Duration]) -> Option<Self> {
        if sample.is_empty() {
            return None;
        }
        sample.sort_unstable();
        let at = |q: f64| {
            // Nearest-rank: the smallest value with at least q of the sample at or below it.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let rank = ((q * sample.len() as f64).ceil() as usize).clamp(1, sample.len());
            sample[rank - 1]
        };
        Some(Self {
            p50: at(0.50),
            p99: at(0.99),
            max: sample[sample.len() - 1],
            count: sample.len(),
        })
    }
}

/// Milliseconds with two decimals, for table cells.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// A ratio with two decimals, for table cells.
pub(crate) fn ratio(x: f64, baseline: f64) -> String {
    if baseline == 0.0 { "n/a".to_owned() } else { format!("{:.2}", x / baseline) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut v).expect("non-empty");
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        assert_eq!(p.count, 100);
        assert!(Percentiles::of(&mut []).is_none());
    }

    #[test]
    fn table_is_markdown() {
        let mut r = Report::new("x", &["a", "b"]);
        r.row(vec!["1".into(), "2".into()]);
        r.note("n");
        assert_eq!(r.table(), "## x\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nn\n");
    }
}
