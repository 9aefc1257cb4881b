//! Slow-call events reported by scoped samplers: guard, file, optional CPU
//! window, hooks.

use super::{Capture, Trigger};
use crate::guard::Kind;
use crate::notices::{error, notice};
use crate::scope::{self, SlowCall};

impl Capture {
    /// Writes each admitted slow-call event to its own file and runs the hooks.
    pub(crate) fn write_slow_calls(&'static self, events: Vec<SlowCall>) {
        for event in events {
            if self.admit(Kind::Slow).is_err() {
                continue; // counted, and logged once per window
            }
            if self.config.slow_cpu && event.still_running {
                // The call is still slow right now: profile the window that follows.
                let reason =
                    format!("slow call {} running for {:.3}s", event.scope, event.elapsed.as_secs_f64());
                let mut comments = vec![("slow_scope".into(), event.scope.into())];
                if let Some(dye) = event.dye {
                    comments.push(("slow_dye".into(), dye.into()));
                }
                let _ = self.spawn_window(crate::sampler::Mode::Cpu, Trigger::Threshold, reason, comments);
            }
            let text = self.slow_call_text(&event);
            match self.output.write("slowcall", "txt", text.as_bytes()) {
                Ok(path) => notice(&format!(
                    "slow call {} ({}, threshold {:?}) written to {}",
                    event.scope,
                    short(event.elapsed),
                    event.threshold,
                    path.display()
                )),
                Err(e) => error(&format!("slow-call event lost: {e}")),
            }
            scope::run_hooks(&event);
        }
    }

    fn slow_call_text(&self, event: &SlowCall) -> String {
        let mut text = String::from("hotprof slow call\n");
        for (key, value) in self.header(Trigger::Threshold, "-") {
            if key != "unwinder" {
                text.push_str(&format!("{key}: {value}\n"));
            }
        }
        text.push_str(&format!("scope: {}\n", event.scope));
        if let Some(fields) = &event.fields {
            text.push_str(&format!("fields: {fields}\n"));
        }
        text.push_str(&format!("threshold: {:?}\n", event.threshold));
        text.push_str(&format!("elapsed: {:.6}s\n", event.elapsed.as_secs_f64()));
        text.push_str(&format!(
            "state: {}\n",
            if event.still_running { "still running" } else { "completed" }
        ));
        text.push_str(&format!("thread: {}\n", event.thread));
        if let Some(task) = event.task {
            text.push_str(&format!("task: {task}\n"));
        }
        if let Some(dye) = event.dye {
            text.push_str(&format!("dye: {dye}\n"));
        }
        text.push_str("\nlogical stack (innermost first):\n");
        for name in &event.stack {
            text.push_str(&format!("\t{name}\n"));
        }
        text.push_str("\n-- end of hotprof slow call --\n");
        text
    }
}

/// A call's length for a notice: microseconds under a millisecond,
/// milliseconds under a second, else seconds.
fn short(d: std::time::Duration) -> String {
    match d.as_secs_f64() {
        s if s < 1e-3 => format!("{}µs", d.as_micros()),
        s if s < 1.0 => format!("{:.1}ms", s * 1e3),
        s => format!("{s:.3}s"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn lengths_keep_their_precision() {
        assert_eq!(super::short(Duration::from_micros(201)), "201µs");
        assert_eq!(super::short(Duration::from_micros(106_400)), "106.4ms");
        assert_eq!(super::short(Duration::from_millis(2500)), "2.500s");
    }
}
