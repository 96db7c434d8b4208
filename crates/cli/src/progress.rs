//! The progress display: one spinner line per layer being built and, on a
//! long compose, a line over them all with bytes done, the total expected
//! and an ETA; on a terminal only, silent otherwise (CI logs, `--json`,
//! `--quiet`), and cleared at the end so no stale line stays on screen.
//!
//! The total is the sum of the estimates of the layers started so far
//! (`LayerStarted::expected`; a layer without one counts for none), so it
//! grows as layers start, and a layer's bytes count up to its estimate.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata::Event;

pub struct Progress {
    multi: Option<MultiProgress>,
    bars: Mutex<BTreeMap<usize, ProgressBar>>,
    total: Mutex<Total>,
}

/// Below this many expected bytes the compose is short: no total line.
const LONG: u64 = 16 << 20;

/// The line over all layers: each estimated layer's (expected, done).
#[derive(Default)]
struct Total {
    bar: Option<ProgressBar>,
    layers: BTreeMap<usize, (u64, u64)>,
}

impl Total {
    fn expected(&self) -> u64 {
        self.layers.values().map(|(e, _)| e).sum()
    }

    /// `bytes` more of layer `index`, counted up to its estimate.
    fn add(&mut self, index: usize, bytes: u64) {
        let Some((expected, done)) = self.layers.get_mut(&index) else {
            return;
        };
        let counted = bytes.min(expected.saturating_sub(*done));
        *done += counted;
        if let Some(bar) = &self.bar {
            bar.inc(counted);
        }
    }
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let multi = enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            multi,
            bars: Mutex::new(BTreeMap::new()),
            total: Mutex::new(Total::default()),
        }
    }

    pub fn event(&self, e: Event) {
        if let Event::Warning(w) = &e {
            // Warnings are shown even without a progress display.
            match &self.multi {
                Some(m) => {
                    let _ = m.println(format!("warning: {w}"));
                }
                None => eprintln!("strata: warning: {w}"),
            }
            return;
        }
        let Some(multi) = &self.multi else { return };
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        let Ok(mut total) = self.total.lock() else {
            return;
        };
        match e {
            Event::LayerStarted {
                index,
                name,
                expected,
            } => {
                if let Some(expected) = expected {
                    total.layers.insert(index, (expected, 0));
                    let sum = total.expected();
                    match &total.bar {
                        Some(bar) => bar.set_length(sum),
                        None if sum >= LONG => {
                            let bar = multi.insert(0, ProgressBar::new(sum));
                            bar.set_style(
                                ProgressStyle::with_template(
                                    "{spinner} {prefix:<28} {bytes:>10} of {total_bytes:<10} {bytes_per_sec:>12} ETA {eta}",
                                )
                                .unwrap_or_else(|_| ProgressStyle::default_bar()),
                            );
                            bar.set_prefix("all layers");
                            bar.set_position(total.layers.values().map(|(_, d)| d).sum());
                            bar.enable_steady_tick(Duration::from_millis(120));
                            total.bar = Some(bar);
                        }
                        None => {}
                    }
                }
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix:<28} {bytes:>10} {bytes_per_sec:>12} {elapsed} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(name);
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.insert(index, bar);
            }
            Event::LayerProgress { index, bytes } => {
                if let Some(bar) = bars.get(&index) {
                    bar.inc(bytes);
                }
                total.add(index, bytes);
            }
            Event::LayerDone {
                index,
                name,
                cache,
                remote,
                ..
            } => {
                let verb = match (cache, remote) {
                    (strata::CacheStatus::Hit, Some(strata::RemoteStatus::Hit)) => "remote hit",
                    (strata::CacheStatus::Hit, _) => "cached",
                    (strata::CacheStatus::Miss, _) => "built",
                };
                // A layer done is all of its estimate, whatever it wrote.
                total.add(index, u64::MAX);
                match bars.remove(&index) {
                    Some(bar) => bar.finish_with_message(verb),
                    None => {
                        let _ = multi.println(format!("  {name:<28} {verb}"));
                    }
                }
            }
            Event::Exporting { out } => {
                let _ = multi.println(format!("  exporting to {}", out.display()));
            }
            Event::LayoutDone {
                out,
                unchanged: true,
            } => {
                let _ = multi.println(format!("  {} is up to date, left untouched", out.display()));
            }
            Event::LayoutDone {
                unchanged: false, ..
            }
            | Event::Planned { .. }
            | Event::Warning(_) => {}
        }
    }

    pub fn finish(&self) {
        if let Ok(mut total) = self.total.lock()
            && let Some(bar) = total.bar.take()
        {
            bar.finish_and_clear();
        }
        if let Ok(mut bars) = self.bars.lock() {
            for (_, bar) in std::mem::take(&mut *bars) {
                bar.abandon();
            }
        }
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}
