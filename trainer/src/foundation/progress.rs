//! Progress bars for long work (training epochs, the classifier, the IWAE estimate): one
//! look for all of them, with live figures in the message.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items labelled `label` (e.g. `epoch 3/30`), or a hidden one when
/// `show` is false (tests, logs).
pub fn bar(show: bool, len: usize, label: impl Into<String>) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(label.into());
    bar
}
