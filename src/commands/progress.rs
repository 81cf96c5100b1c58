//! Progress for long CLI work: a bar with rate and ETA on a terminal, a plain line per second
//! when stderr is not a terminal (CI logs, pipes).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports the progress of one piece of work.
pub struct Progress {
    label: String,
    bar: Option<ProgressBar>,
    last_line: Instant,
    started: Instant,
}

impl Progress {
    /// Progress of `label`, with `total` units when known.
    pub fn new(label: &str, total: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(total) => ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{msg} [{bar:40}] {pos}/{len} events ({per_sec}, ETA {eta})",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {msg}: {pos} events ({per_sec})")
                        .expect("valid template"),
                ),
            };
            bar.set_message(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            label: label.to_string(),
            bar,
            last_line: Instant::now(),
            started: Instant::now(),
        }
    }

    /// Sets the units done (and the total, when it changed).
    pub fn update(&mut self, done: u64, total: Option<u64>) {
        match &self.bar {
            Some(bar) => {
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(done);
            }
            None if self.last_line.elapsed() >= Duration::from_secs(1) => {
                self.last_line = Instant::now();
                let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
                match total {
                    Some(total) if total > 0 => eprintln!(
                        "{}: {done}/{total} events ({:.1}%, {rate:.0}/s)",
                        self.label,
                        done as f64 * 100.0 / total as f64
                    ),
                    _ => eprintln!("{}: {done} events ({rate:.0}/s)", self.label),
                }
            }
            None => {}
        }
    }

    /// Ends the report with a final line.
    pub fn finish(self, message: &str) {
        match self.bar {
            Some(bar) => bar.finish_with_message(format!("{}: {message}", self.label)),
            None => eprintln!("{}: {message}", self.label),
        }
    }
}
