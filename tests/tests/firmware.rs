//! The firmware under QEMU against the host, on every target: the images each build
//! prints equal, byte for byte, what the host's `vae-core` computes for the same model
//! file, seeds and digits; a bad model, a panic or a CPU fault ends the run with a failure
//! exit code; and no panic path is linked into the firmware at all.
//!
//! Targets: the Cortex-M4F (`thumbv7em-none-eabihf` on QEMU's `mps2-an386`), the
//! Cortex-M0 (`thumbv6m-none-eabi` on `microbit`) and RV32IMAC (`riscv32imac-unknown-none-elf`
//! on `virt`). Each test builds and runs the firmware (`cargo run --release --target ...`
//! in `firmware/`, as README says) with the model chosen through `VAE_MODEL`; each
//! variant is built once (a rebuild relinks the firmware crate only, about two seconds).
//! The targets and QEMU come from `scripts/setup.sh`; when one is missing the test fails
//! and says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use dfdx::prelude::*;
use trainer::data::firmware_log::FirmwareLog;
use trainer::foundation::run_dir::RunDir;
use trainer::foundation::tensor::argmax;
use trainer::train::checkpoint;
use vae_core::demo::{hex, plan, Drawing};
use vae_core::{Model, PIXELS};
use vae_tests::{default_model_dir, scratch_dir, workspace};

/// One firmware build at a time: each rebuilds the same crate with another model.
static BUILD: Mutex<()> = Mutex::new(());

/// A QEMU target of the firmware.
struct Target {
    triple: &'static str,
    /// The QEMU binary its runner calls (`.cargo/config.toml`).
    qemu: &'static str,
    /// What its fault handler prints for an undefined instruction.
    fault: &'static str,
    /// The flash budget for the f32 model (415 KB of weights), where the machine has room
    /// for more than the 256 KiB budget; `None`: the f32 file does not fit.
    f32_flash_kib: Option<&'static str>,
}

const CORTEX_M4F: Target = Target {
    triple: "thumbv7em-none-eabihf",
    qemu: "qemu-system-arm",
    fault: "error: HardFault at pc",
    f32_flash_kib: Some("1024"),
};

/// The micro:bit's nRF51 has 256 KiB of flash and no more: the f32 file cannot run there.
const CORTEX_M0: Target = Target {
    triple: "thumbv6m-none-eabi",
    qemu: "qemu-system-arm",
    fault: "error: HardFault at pc",
    f32_flash_kib: None,
};

/// Illegal instruction is exception 2.
const RV32IMAC: Target = Target {
    triple: "riscv32imac-unknown-none-elf",
    qemu: "qemu-system-riscv32",
    fault: "error: exception 2 at pc",
    f32_flash_kib: Some("1024"),
};

/// Builds and runs the firmware in QEMU with `model` embedded and extra cargo arguments.
fn run_firmware(target: &Target, model: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    firmware_cargo(target, "run", model, extra, env)
}

/// `cargo COMMAND --release --target TRIPLE` in `firmware/` with `model` embedded.
fn firmware_cargo(
    target: &Target,
    command: &str,
    model: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(workspace().join("firmware"))
        .args([command, "--release", "--quiet", "--locked"])
        .args(["--target", target.triple])
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
        !stderr.contains("target may not be installed"),
        "the {} target is missing: run scripts/setup.sh\n{stderr}",
        target.triple
    );
    assert!(
        !stderr.contains(&format!("{}: not found", target.qemu))
            && !stderr.contains("No such file"),
        "{} is missing: run scripts/setup.sh\n{stderr}",
        target.qemu
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
    let images = FirmwareLog::parse(&stdout)
        .unwrap()
        .images
        .into_iter()
        .map(|image| (image.description, image.pixels.to_vec()))
        .collect::<Vec<_>>();
    assert!(
        images
            .iter()
            .all(|(description, _)| !description.is_empty()),
        "an `image N: ...` line before every `pixels` line"
    );
    Printed { images, stdout }
}

/// Runs the firmware with `file` and checks every image against the host.
fn assert_parity(target: &Target, file: &Path, env: &[(&str, &str)]) -> Printed {
    assert_parity_with(target, file, &[], env)
}

/// [`assert_parity`] with extra cargo arguments (features).
fn assert_parity_with(
    target: &Target,
    file: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Printed {
    let output = run_firmware(target, file, extra, env);
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
    let mut scratch = vec![0u32; model.scratch_len()];
    let expected: Vec<Drawing> = plan(&model).collect();
    assert_eq!(printed.images.len(), expected.len(), "{}", printed.stdout);
    for (index, (drawing, (description, pixels))) in
        expected.iter().zip(&printed.images).enumerate()
    {
        let mut host = [0u8; PIXELS];
        drawing.draw(&model, &mut scratch, &mut host).unwrap();
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
        "{} {}: {} images identical; {}",
        target.triple,
        file.display(),
        expected.len(),
        printed
            .stdout
            .lines()
            .filter(|l| {
                ["cost per", "flash", "ram", "maps"]
                    .iter()
                    .any(|start| l.starts_with(start))
            })
            .collect::<Vec<_>>()
            .join("; ")
    );
    printed
}

/// The f16 file: every image as on the host, and the first ten images, the digits 0-9,
/// are read as the digit asked for by the model's classifier (trained on MNIST labels).
fn f16_matches_the_host_and_draws_the_digits_asked_for(target: &Target) {
    let dir = default_model_dir();
    let printed = assert_parity(target, &dir.join("decoder-f16.vae"), &[]);

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

fn i8_matches_the_host(target: &Target) {
    assert_parity(target, &default_model_dir().join("decoder-i8.vae"), &[]);
}

/// A made-up i8 and f16 model (random weights) whose layer widths hit every case of the
/// kernels the default model does not: inputs 17, 23, 14 and 10 wide leave every tail of
/// a group of four (1, 3, 2, 2) and every count of groups modulo four (0, 1, 3, 2) the
/// unrolled loops enter at, and rows of odd length start on every byte alignment (the
/// Cortex-M0 loop takes only word-aligned rows).
fn odd_widths_match_the_host(target: &Target) {
    made_up_models_match_the_host(
        target,
        "odd",
        7,
        &[23, 14, 10],
        &[vae_core::Precision::I8, vae_core::Precision::F16],
    );
}

/// Made-up i8 models whose inputs are whole groups of four, where the Cortex-M0 runs its
/// loop over rows in assembly too, 32 rows per call, entering a pass of seven groups at
/// `groups % 7`: inputs 12, 4, 24, 56 and 20 wide (3, 1, 6, 0 and 5 groups modulo 7) in
/// one model, 16 and 8 (4 and 2) in the other, and 784 output rows (24 calls of 32 and one
/// of 16), hidden layers of fewer than 32.
fn whole_group_widths_match_the_host(target: &Target) {
    made_up_models_match_the_host(
        target,
        "groups-a",
        2,
        &[4, 24, 56, 20],
        &[vae_core::Precision::I8],
    );
    made_up_models_match_the_host(target, "groups-b", 6, &[8], &[vae_core::Precision::I8]);
}

/// A conditional model of random weights with these hidden widths, in each precision, run
/// on `target` against the host.
fn made_up_models_match_the_host(
    target: &Target,
    name: &str,
    latent: u16,
    widths: &[u16],
    precisions: &[vae_core::Precision],
) {
    let mut hidden = heapless::Vec::new();
    for &width in widths {
        hidden.push(width).unwrap();
    }
    let arch = vae_core::Architecture::dense(latent, 10, hidden, vae_core::Activation::Relu);
    let dir = scratch_dir(&format!("firmware-{name}-{}", target.triple));
    for &precision in precisions {
        let mut rng = vae_core::Rng::new(17);
        let values = (0..arch.parameter_count()).map(|_| (rng.uniform() - 0.5) * 2.0);
        let mut buf = vec![0u8; 1 << 20];
        let len = vae_core::encode(&arch, precision, values, &mut buf).unwrap();
        let file = dir.join(format!("{name}-{}.vae", precision.name()));
        std::fs::write(&file, &buf[..len]).unwrap();
        assert_parity(target, &file, &[]);
    }
}

/// The committed tutorial model's decoder at `precision`: the transposed convolutions the
/// firmware tests run.
fn conv_model(precision: vae_core::Precision) -> PathBuf {
    workspace()
        .join("models/tutorial")
        .join(format!("decoder-{}.vae", precision.name()))
}

/// The transposed-convolution decoder on `target`, built with the feature `transposed-conv`,
/// in each of `precisions` (the soft-float ones take 20-30 s each on the Cortex-M0 and
/// RV32): every image as on the host, within the 256 KiB and 16 KiB budget.
fn conv_matches_the_host(target: &Target, precisions: &[vae_core::Precision]) {
    for &precision in precisions {
        let file = conv_model(precision);
        let printed = assert_parity_with(target, &file, &["--features", "transposed-conv"], &[]);
        assert!(
            printed.stdout.contains("whole maps would need"),
            "{}",
            printed.stdout
        );
    }
}

/// A conv model is refused, by name, by a firmware built without `transposed-conv`; and a
/// model whose maps need more than the firmware's scratch (a conditional decoder with a
/// 7x7x64 map: 2,927 words of 2,560) stops at start with an `error:` line.
fn conv_models_that_cannot_run_fail_with_a_message(target: &Target) {
    let file = conv_model(vae_core::Precision::I8);
    let output = run_firmware(target, &file, &[], &[]);
    assert_fails_with(
        &output,
        "error: embedded model rejected: unsupported architecture: transposed convolutions",
    );

    let activation = vae_core::Activation::Relu;
    let arch = vae_core::Architecture {
        transposed_convs: Some(vae_core::TransposedConvs {
            channels: 64,
            ..vae_core::TransposedConvs::tutorial()
        }),
        ..vae_core::Architecture::dense(10, 10, heapless::Vec::new(), activation)
    };
    let values = (0..arch.parameter_count()).map(|i| (i % 13) as f32 * 0.01 - 0.06);
    let mut buf = vec![0u8; 1 << 20];
    let len = vae_core::encode(&arch, vae_core::Precision::I8, values, &mut buf).unwrap();
    let dir = scratch_dir(&format!("firmware-wide-maps-{}", target.triple));
    let wide = dir.join("wide-maps-i8.vae");
    std::fs::write(&wide, &buf[..len]).unwrap();
    let output = run_firmware(target, &wide, &["--features", "transposed-conv"], &[]);
    assert_fails_with(
        &output,
        "error: the model's maps do not fit: its decoder needs 11708 bytes of scratch, the firmware has 10240",
    );
}

/// 415 KB of weights: more than the 256 KiB budget, so this build gets more flash.
fn f32_matches_the_host(target: &Target) {
    let flash = target.f32_flash_kib.expect("a target with room for f32");
    assert_parity(
        target,
        &default_model_dir().join("decoder-f32.vae"),
        &[("VAE_FLASH_KIB", flash)],
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

fn a_corrupted_embedded_model_fails_the_run_with_a_message(target: &Target) {
    let mut bytes = std::fs::read(default_model_dir().join("decoder-f16.vae")).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x08; // one bit of one weight
    let dir = scratch_dir(&format!("firmware-bad-model-{}", target.triple));
    let file: PathBuf = dir.join("corrupt.vae");
    std::fs::write(&file, &bytes).unwrap();
    let output = run_firmware(target, &file, &[], &[]);
    assert_fails_with(
        &output,
        "error: embedded model rejected: model file is corrupt: CRC-32",
    );

    let truncated = dir.join("truncated.vae");
    std::fs::write(&truncated, &bytes[..1000]).unwrap();
    let output = run_firmware(target, &truncated, &[], &[]);
    assert_fails_with(
        &output,
        "error: embedded model rejected: model file is truncated",
    );
}

fn a_fault_or_a_panic_fails_the_run_with_a_message(target: &Target) {
    let model = default_model_dir().join("decoder-f16.vae");
    let output = run_firmware(target, &model, &["--features", "inject-hardfault"], &[]);
    assert_fails_with(&output, target.fault);
    let output = run_firmware(target, &model, &["--features", "inject-panic"], &[]);
    assert_fails_with(&output, "error: panic: ");
    assert!(String::from_utf8_lossy(&output.stdout).contains("a panic injected by the test build"));
}

/// The firmware's `panic-never` build swaps in a panic handler that calls a function
/// defined nowhere, so it links only if the optimizer removed every panic path: none is
/// left in the firmware with `vae-core`. The same build with a panic injected must fail
/// to link, or the check would prove nothing.
fn no_panic_path_is_linked_into_the_firmware(target: &Target) {
    let model = default_model_dir().join("decoder-f16.vae");
    let symbol = "undefined symbol: error_a_panic_path_is_linked_into_the_firmware";
    let clean = firmware_cargo(target, "build", &model, &["--features", "panic-never"], &[]);
    let stderr = String::from_utf8_lossy(&clean.stderr);
    assert!(clean.status.success(), "a panic path is left:\n{stderr}");
    // The transposed convolutions' code too, with a model that has them.
    let conv = conv_model(vae_core::Precision::I8);
    let features = ["--features", "panic-never,transposed-conv"];
    let clean = firmware_cargo(target, "build", &conv, &features, &[]);
    let stderr = String::from_utf8_lossy(&clean.stderr);
    assert!(
        clean.status.success(),
        "a panic path is left with transposed-conv:\n{stderr}"
    );

    let injected = firmware_cargo(
        target,
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

/// The tests every target runs, as one module of tests per target.
macro_rules! every_target {
    ($($module:ident: $target:expr, f32: $f32:ident, conv: [$($conv:ident),*];)*) => {$(
        mod $module {
            use super::*;

            #[test]
            fn conv_firmware_matches_the_host_byte_for_byte() {
                conv_matches_the_host(&$target, &[$(vae_core::Precision::$conv),*]);
            }

            #[test]
            fn conv_models_that_cannot_run_fail_with_a_message() {
                super::conv_models_that_cannot_run_fail_with_a_message(&$target);
            }

            #[test]
            fn f16_firmware_matches_the_host_byte_for_byte_and_draws_the_digits_asked_for() {
                f16_matches_the_host_and_draws_the_digits_asked_for(&$target);
            }

            #[test]
            fn i8_firmware_matches_the_host_byte_for_byte() {
                i8_matches_the_host(&$target);
            }

            #[test]
            fn odd_layer_widths_match_the_host_byte_for_byte() {
                odd_widths_match_the_host(&$target);
            }

            #[test]
            fn whole_group_layer_widths_match_the_host_byte_for_byte() {
                whole_group_widths_match_the_host(&$target);
            }

            every_target!(@f32 $f32 $target);

            #[test]
            fn a_corrupted_embedded_model_fails_the_run_with_a_message() {
                super::a_corrupted_embedded_model_fails_the_run_with_a_message(&$target);
            }

            #[test]
            fn a_fault_or_a_panic_fails_the_run_with_a_message() {
                super::a_fault_or_a_panic_fails_the_run_with_a_message(&$target);
            }

            #[test]
            fn no_panic_path_is_linked_into_the_firmware() {
                super::no_panic_path_is_linked_into_the_firmware(&$target);
            }
        }
    )*};
    (@f32 yes $target:expr) => {
        #[test]
        fn f32_firmware_matches_the_host_byte_for_byte() {
            f32_matches_the_host(&$target);
        }
    };
    (@f32 no $target:expr) => {};
}

every_target! {
    cortex_m4f: CORTEX_M4F, f32: yes, conv: [F32, F16, I8];
    cortex_m0: CORTEX_M0, f32: no, conv: [I8, F16];
    rv32imac: RV32IMAC, f32: yes, conv: [I8, F32];
}

/// The f32 file does not fit the micro:bit: its build must fail to link for want of
/// flash, as a firmware too large for the chip should.
#[test]
fn the_f32_model_does_not_fit_the_cortex_m0() {
    assert!(CORTEX_M0.f32_flash_kib.is_none());
    let output = firmware_cargo(
        &CORTEX_M0,
        "build",
        &default_model_dir().join("decoder-f32.vae"),
        &[],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("will not fit in region"),
        "{stderr}"
    );
}
