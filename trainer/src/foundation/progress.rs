//! What a command shows its user while it works: progress bars for long work (training
//! epochs, the classifier, the IWAE estimate), one look for all of them, with live
//! figures in the message; and the lines of its report on stdout ([`say!`](crate::say)).

use std::io::{ErrorKind, Write};

use indicatif::{ProgressBar, ProgressStyle};

/// Writes `line` and a newline on stdout, for [`say!`](crate::say). When the reader of
/// stdout has gone (a closed pipe: `vae inspect FILE | head -1`) the program ends quietly
/// with success, as Unix tools end, where `println!` would panic; any other failure to
/// write ends it with `error:` and status 1.
pub fn say(line: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` for a command's report: [`say`](crate::foundation::progress::say), which
/// ends the program quietly where stdout's reader has gone instead of panicking.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::foundation::progress::say(format_args!($($arg)*))
    };
}

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
