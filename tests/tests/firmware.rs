//! The firmware under QEMU against the host: the images the Cortex-M4F build prints equal,
//! byte for byte, what the host's `vae-core` computes for the same model file, seeds and
//! digits; a bad model, a panic or a HardFault ends the run with a failure exit code; and
//! no panic path is linked into the firmware at all.
//!
//! Each test builds the firmware (`cargo run --release` in `firmware/`, as README says)
//! with the model chosen through `VAE_MODEL`, which needs the `thumbv7em-none-eabihf`
//! target and `qemu-system-arm` (both installed by `scripts/setup.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use dfdx::prelude::*;
use trainer::checkpoint;
use trainer::metrics::argmax;
use trainer::run_dir::RunDir;
use vae_core::demo::{hex, plan, Drawing};
use vae_core::{Model, PIXELS};
use vae_tests::{default_model_dir, scratch_dir, workspace};

/// One firmware build at a time: each rebuilds the same crate with another model.
static BUILD: Mutex<()> = Mutex::new(());

/// Builds and runs the firmware in QEMU with `model` embedded and extra cargo arguments.
fn run_firmware(model: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    firmware_cargo("run", model, extra, env)
}

/// `cargo COMMAND --release` in `firmware/` with `model` embedded.
fn firmware_cargo(command: &str, model: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace().join("firmware"))
        .args([command, "--release", "--quiet", "--locked"])
        .args(extra)
        .env("VAE_MODEL", model)
        .envs(env.iter().copied())
        // The host's build settings must not leak into the cross build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("qemu-system-arm: not found") && !stderr.contains("No such file"),
        "QEMU is missing: run scripts/setup.sh (apt-get install qemu-system-arm)\n{stderr}"
    );
    output
}

/// What the firmware printed for each image: description and pixels.
struct Printed {
    images: Vec<(String, Vec<u8>)>,
    stdout: String,
}

fn parse(output: &Output) -> Printed {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut images = Vec::new();
    let mut description = None;
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("image ") {
            let (_, text) = rest.split_once(": ").expect("image N: description");
            description = Some(text.to_string());
        } else if let Some(rest) = line.strip_prefix("pixels ") {
            let (index, hex) = rest.split_once(' ').expect("pixels N HEX");
            assert_eq!(index.parse::<usize>().unwrap(), images.len());
            assert_eq!(hex.len(), 2 * PIXELS, "pixels line {index}");
            let bytes = (0..PIXELS)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            images.push((description.take().expect("image line first"), bytes));
        }
    }
    Printed { images, stdout }
}

/// Runs the firmware with `file` and checks every image against the host.
fn assert_parity(file: &Path, env: &[(&str, &str)]) -> Printed {
    let output = run_firmware(file, &[], env);
    let printed = parse(&output);
    assert!(
        output.status.success(),
        "firmware failed ({}):\n{}\n{}",
        output.status,
        printed.stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        printed.stdout.lines().any(|l| l == "done"),
        "{}",
        printed.stdout
    );

    let bytes = std::fs::read(file).unwrap();
    let model = Model::parse(&bytes).unwrap();
    let expected: Vec<Drawing> = plan(&model).collect();
    assert_eq!(printed.images.len(), expected.len(), "{}", printed.stdout);
    for (index, (drawing, (description, pixels))) in
        expected.iter().zip(&printed.images).enumerate()
    {
        let mut host = [0u8; PIXELS];
        drawing.draw(&model, &mut host).unwrap();
        assert_eq!(description, &drawing.to_string(), "image {index}");
        assert_eq!(
            String::from_utf8(hex(&host).to_vec()).unwrap(),
            pixels
                .iter()
                .map(|p| format!("{p:02x}"))
                .collect::<String>(),
            "image {index} ({drawing}): firmware and host differ"
        );
    }
    println!(
        "{}: {} images identical; {}",
        file.display(),
        expected.len(),
        printed
            .stdout
            .lines()
            .filter(|l| l.starts_with("cost per") || l.starts_with("flash") || l.starts_with("ram"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    printed
}

#[test]
fn f16_firmware_matches_the_host_byte_for_byte_and_draws_the_digits_asked_for() {
    let dir = default_model_dir();
    let printed = assert_parity(&dir.join("decoder-f16.vae"), &[]);

    // The first ten images are the digits 0-9: the model's classifier (trained on MNIST
    // labels) reads each as the digit asked for.
    let dev = Cpu::default();
    let (_, vae) = checkpoint::load(&dev, &RunDir::new(&dir)).unwrap();
    let classifier = vae.classifier.as_ref().expect("conditional model");
    let digits: Vec<f32> = printed.images[..10]
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&v| vae_core::intensity(v)))
        .collect();
    let logits = classifier
        .forward(dev.tensor_from_vec(digits, (10, PIXELS)), false)
        .as_vec();
    let read: Vec<usize> = logits.chunks_exact(10).map(argmax).collect();
    assert_eq!(
        read,
        (0..10).collect::<Vec<_>>(),
        "digits as read by the classifier"
    );
}

#[test]
fn i8_firmware_matches_the_host_byte_for_byte() {
    assert_parity(&default_model_dir().join("decoder-i8.vae"), &[]);
}

#[test]
fn f32_firmware_matches_the_host_byte_for_byte() {
    // 415 KB of weights: more than the 256 KiB budget, so this build gets more flash.
    assert_parity(
        &default_model_dir().join("decoder-f32.vae"),
        &[("VAE_FLASH_KIB", "1024")],
    );
}

/// Fails unless the run exited non-zero after printing `needle`.
fn assert_fails_with(output: &Output, needle: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "expected a failure exit:\n{stdout}"
    );
    assert!(stdout.contains(needle), "expected {needle:?} in:\n{stdout}");
    assert!(!stdout.contains("\ndone"), "{stdout}");
}

#[test]
fn a_corrupted_embedded_model_fails_the_run_with_a_message() {
    let mut bytes = std::fs::read(default_model_dir().join("decoder-f16.vae")).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x08; // one bit of one weight
    let file: PathBuf = scratch_dir("firmware-corrupt").join("corrupt.vae");
    std::fs::write(&file, &bytes).unwrap();
    let output = run_firmware(&file, &[], &[]);
    assert_fails_with(
        &output,
        "error: embedded model rejected: model file is corrupt: CRC-32",
    );

    let truncated = scratch_dir("firmware-truncated").join("truncated.vae");
    std::fs::write(&truncated, &bytes[..1000]).unwrap();
    let output = run_firmware(&truncated, &[], &[]);
    assert_fails_with(
        &output,
        "error: embedded model rejected: model file is truncated",
    );
}

#[test]
fn a_hardfault_or_a_panic_fails_the_run_with_a_message() {
    let model = default_model_dir().join("decoder-f16.vae");
    let output = run_firmware(&model, &["--features", "inject-hardfault"], &[]);
    assert_fails_with(&output, "error: HardFault at pc");
    let output = run_firmware(&model, &["--features", "inject-panic"], &[]);
    assert_fails_with(&output, "error: panic: ");
    assert!(String::from_utf8_lossy(&output.stdout).contains("a panic injected by the test build"));
}

/// The firmware's `panic-never` build swaps in a panic handler that calls a function
/// defined nowhere, so it links only if the optimizer removed every panic path: none is
/// left in the firmware with `vae-core`. The same build with a panic injected must fail
/// to link, or the check would prove nothing.
#[test]
fn no_panic_path_is_linked_into_the_firmware() {
    let model = default_model_dir().join("decoder-f16.vae");
    let symbol = "undefined symbol: error_a_panic_path_is_linked_into_the_firmware";
    let clean = firmware_cargo("build", &model, &["--features", "panic-never"], &[]);
    let stderr = String::from_utf8_lossy(&clean.stderr);
    assert!(clean.status.success(), "a panic path is left:\n{stderr}");

    let injected = firmware_cargo(
        "build",
        &model,
        &["--features", "panic-never,inject-panic"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&injected.stderr);
    assert!(
        !injected.status.success() && stderr.contains(symbol),
        "{stderr}"
    );
}
