//! The host's time per digit for a model file, measured as the web page measures the
//! browser's (`web/page/app.js`, `timePerDigit`): `count` digits from seeds `0..count`,
//! digit `seed % classes` (free samples for an unconditional model), temperature 1,
//! one after another; after one round of warm-up, prints the median of `rounds` rounds
//! in microseconds per digit.
//!
//! ```sh
//! cargo run --release -p vae-core --example time_digits -- models/default/decoder-f16.vae 200 5
//! ```
//! `scripts/bench-web.sh` runs it beside the browser, in interleaved rounds.

use std::process::ExitCode;
use std::time::Instant;

use vae_core::{Model, Sample, PIXELS};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, count, rounds] = args.as_slice() else {
        eprintln!("usage: time_digits MODEL_FILE COUNT ROUNDS");
        return ExitCode::FAILURE;
    };
    match run(path, count, rounds) {
        Ok(micros) => {
            println!("{micros:.1}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The median time per digit in microseconds.
fn run(path: &str, count: &str, rounds: &str) -> Result<f64, String> {
    let count: u64 = count.parse().map_err(|e| format!("COUNT {count:?}: {e}"))?;
    let rounds: usize = rounds
        .parse()
        .map_err(|e| format!("ROUNDS {rounds:?}: {e}"))?;
    if count == 0 || rounds == 0 {
        return Err("COUNT and ROUNDS must be at least 1".into());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let model = Model::parse(&bytes).map_err(|e| format!("{path}: {e}"))?;
    let classes = u64::from(model.architecture().classes);
    let mut pixels = [0u8; PIXELS];
    let mut scratch = vec![0u32; model.scratch_len()];
    let mut times: Vec<f64> = (0..=rounds)
        .map(|_| {
            let start = Instant::now();
            for seed in 0..count {
                let digit = (classes > 0).then(|| (seed % classes) as u8);
                let sample = Sample::new(seed, digit).at_temperature(1.0);
                model
                    .generate(sample, &mut scratch, &mut pixels)
                    .map_err(|e| e.to_string())?;
                std::hint::black_box(&pixels);
            }
            Ok(start.elapsed().as_secs_f64() * 1e6 / count as f64)
        })
        .collect::<Result<_, String>>()?;
    times.remove(0); // the warm-up round
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
