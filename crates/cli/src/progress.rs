//! The progress display: one spinner line per layer being built, on a
//! terminal only; silent otherwise (CI logs, `--json`, `--quiet`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use strata::Event;

pub struct Progress {
    multi: Option<MultiProgress>,
    bars: Mutex<BTreeMap<usize, ProgressBar>>,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let multi = enabled.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            multi,
            bars: Mutex::new(BTreeMap::new()),
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
        match e {
            Event::LayerStarted { index, name } => {
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
