//! Chooses the memory map for the selected board and the model file to embed. (The
//! ESP32-C3 links with esp-hal's memory map; for it, only the symbols of the memory
//! report are written here.)
//!
//! - `VAE_MODEL`: model file to embed (default: the committed default model, f16).
//! - `VAE_FLASH_KIB`, `VAE_RAM_KIB` (QEMU only): the memory budget the linker enforces,
//!   256 and 16 by default; a firmware that does not fit fails to link. (QEMU's microbit
//!   has exactly that much: a larger budget links but does not run there.)
//!
//! It also sizes the decoder's scratch memory (`scratch.rs` in `OUT_DIR`) from the
//! embedded model, through vae-core on the host: [`scratch_words`].

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));

    let qemu = env::var_os("CARGO_FEATURE_QEMU").is_some();
    let nucleo = env::var_os("CARGO_FEATURE_NUCLEO_F411RE").is_some();
    let pico = env::var_os("CARGO_FEATURE_RP_PICO").is_some();
    let esp32c3 = env::var_os("CARGO_FEATURE_ESP32C3").is_some();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let ram_kib = if esp32c3 && !(qemu || nucleo || pico) && arch == "riscv32" {
        esp32c3_memory_report(&out)
    } else {
        memory_x(&out, (qemu, nucleo, pico, esp32c3), &arch)
    };

    let model = match env::var_os("VAE_MODEL") {
        Some(path) => PathBuf::from(path),
        None => manifest.join("../models/default/decoder-f16.vae"),
    };
    let model = manifest.join(model);
    let bytes = fs::read(&model).unwrap_or_else(|e| {
        fail(&format!(
            "cannot read the model to embed, {}: {e}",
            model.display()
        ))
    });
    // Copied rather than included by path, so the path may come from the environment.
    // It is checked by the firmware at start, not here: a bad file must be caught there.
    fs::write(out.join("model.vae"), &bytes).expect("write model.vae");
    let words = scratch_words(&bytes, ram_kib);
    fs::write(
        out.join("scratch.rs"),
        format!(
            "/// Words of the decoder's scratch memory, sized by `build.rs` to the embedded \
             model.\nconst SCRATCH_WORDS: usize = {words};\n"
        ),
    )
    .expect("write scratch.rs");
    println!(
        "cargo:rustc-env=FIRMWARE_MODEL_NAME={}",
        shown_name(&model, &manifest)
    );

    println!("cargo:rerun-if-env-changed=VAE_MODEL");
    println!("cargo:rerun-if-env-changed=VAE_FLASH_KIB");
    println!("cargo:rerun-if-env-changed=VAE_RAM_KIB");
    println!("cargo:rerun-if-changed={}", model.display());
    println!("cargo:rerun-if-changed=build.rs");
}

/// RAM the decoder's scratch may not take: the stack (its peak is about 4.5 KiB, mostly
/// a line of output and an image) and the other statics.
const RAM_KEPT_KIB: u32 = 6;

/// Words (32 bits) of scratch memory for the model file `bytes` in `ram_kib` of RAM: what
/// its decoder needs ([`vae_core::Model::scratch_len`]), but no more than the RAM leaves
/// beside [`RAM_KEPT_KIB`] (10 KiB of 16), so that a model needing more still links, and
/// the firmware refuses it at start, naming both figures. A file that does not parse
/// (the firmware refuses it at start too) gets [`vae_core::STACK_SCRATCH`] words, or that
/// most.
fn scratch_words(bytes: &[u8], ram_kib: u32) -> usize {
    let most = (ram_kib.saturating_sub(RAM_KEPT_KIB) as usize) * 1024 / 4;
    vae_core::Model::parse(bytes)
        .map_or(vae_core::STACK_SCRATCH, |model| model.scratch_len())
        .min(most)
}

/// How the firmware names its model: the path from the repository's root for a file in
/// the repository, the file name alone otherwise. Never the folder the repository is
/// checked out in, so that the binary (and its flash size) is the same in every checkout.
fn shown_name(model: &Path, manifest: &Path) -> String {
    let canonical = |p: &Path| fs::canonicalize(p).ok();
    let repo = manifest.parent().and_then(canonical);
    match (canonical(model), repo) {
        (Some(model), Some(repo)) if model.starts_with(&repo) => model
            .strip_prefix(&repo)
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        _ => model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// Writes `memory.x`, the memory map cortex-m-rt and riscv-rt link with, and hands the board's
/// flash and RAM sizes to the firmware; returns the RAM's KiB.
fn memory_x(out: &Path, board: (bool, bool, bool, bool), arch: &str) -> u32 {
    // (flash origin, flash KiB, RAM origin, RAM KiB). QEMU: the budget of a small chip,
    // 256 KiB of flash and 16 KiB of RAM, on every architecture.
    let pico = board.2;
    let (flash_origin, flash_kib, ram_origin, ram_kib) = match (board, arch) {
        // mps2-an386 and microbit: flash at 0, RAM at 0x2000_0000 (the microbit has
        // exactly 256 KiB and 16 KiB).
        ((true, false, false, false), "arm") => (
            0x0000_0000u32,
            kib("VAE_FLASH_KIB", 256),
            0x2000_0000u32,
            kib("VAE_RAM_KIB", 16),
        ),
        // virt: everything is in its DRAM at 0x8000_0000, where the boot ROM jumps;
        // "RAM" starts 4 MiB above, out of the way of a larger flash budget.
        ((true, false, false, false), "riscv32") => (
            0x8000_0000u32,
            kib("VAE_FLASH_KIB", 256),
            0x8040_0000u32,
            kib("VAE_RAM_KIB", 16),
        ),
        ((false, true, false, false), "arm") => (0x0800_0000u32, 512, 0x2000_0000u32, 128),
        // RP2040: flash after the 256-byte boot loader; the 256 KiB of striped SRAM.
        ((false, false, true, false), "arm") => (0x1000_0100u32, 2048, 0x2000_0000u32, 256),
        _ => fail(&format!(
            "choose exactly one board feature for this target ({arch}): `qemu` (the default), \
             `nucleo-f411re` (thumbv7em-none-eabihf), `rp-pico` (thumbv6m-none-eabi) or `esp32c3` \
             (riscv32imc-unknown-none-elf)"
        )),
    };
    // riscv-rt places each kind of section by these aliases; cortex-m-rt uses the names.
    let regions = if pico {
        // The boot ROM loads and checks the first 256 bytes of flash: the boot loader.
        "SECTIONS {\n  .boot2 ORIGIN(BOOT2) : { KEEP(*(.boot2)); } > BOOT2\n} INSERT BEFORE .text;\n"
    } else if arch == "riscv32" {
        "REGION_ALIAS(\"REGION_TEXT\", FLASH);\n\
         REGION_ALIAS(\"REGION_RODATA\", FLASH);\n\
         REGION_ALIAS(\"REGION_DATA\", RAM);\n\
         REGION_ALIAS(\"REGION_BSS\", RAM);\n\
         REGION_ALIAS(\"REGION_HEAP\", RAM);\n\
         REGION_ALIAS(\"REGION_STACK\", RAM);\n"
    } else {
        ""
    };
    let (boot2, flash_less, flash_start) = if pico {
        (
            "BOOT2 : ORIGIN = 0x10000000, LENGTH = 0x100\n  ",
            " - 0x100",
            "ORIGIN(BOOT2)",
        )
    } else {
        ("", "", "ORIGIN(FLASH)")
    };
    let memory = format!(
        "/* Written by build.rs. */\n\
         MEMORY\n{{\n  \
           {boot2}\
           FLASH : ORIGIN = {flash_origin:#010x}, LENGTH = {flash_kib}K{flash_less}\n  \
           RAM   : ORIGIN = {ram_origin:#010x}, LENGTH = {ram_kib}K\n\
         }}\n\
         {regions}\
         __flash_origin = {flash_start};\n\
         __ram_origin = ORIGIN(RAM);\n"
    );
    fs::write(out.join("memory.x"), memory).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-env=FIRMWARE_FLASH_KIB={flash_kib}");
    println!("cargo:rustc-env=FIRMWARE_RAM_KIB={ram_kib}");
    ram_kib
}

/// ESP32-C3: esp-hal's linker script (`linkall.x`, with its own `memory.x`) lays out the
/// program; this one, linked after it, only names what the memory report reads. Flash:
/// the app descriptor, read-only data, code in flash, code copied to RAM (trap vectors,
/// `.rwtext`) and `.data`'s initial values. RAM (`RWDATA`) starts with the space the code
/// copied to RAM takes (the same SRAM seen through the instruction bus).
fn esp32c3_memory_report(out: &Path) -> u32 {
    let script = out.join("esp32c3-report.x");
    fs::write(
        &script,
        "/* Written by build.rs: symbols for the firmware's memory report. */\n\
         __flash_used = SIZEOF(.flash.appdesc) + SIZEOF(.rodata) + SIZEOF(.text)\n    \
           + SIZEOF(.trap) + SIZEOF(.rwtext) + SIZEOF(.data);\n\
         __ram_origin = ORIGIN(RWDATA);\n",
    )
    .expect("write esp32c3-report.x");
    println!("cargo:rustc-link-arg=-T{}", script.display());
    // 4 MiB of flash on the ESP32-C3-DevKitM-1 and most modules (espflash's partition
    // table gives the app all of it after the first 64 KiB); esp-hal's DRAM region.
    println!("cargo:rustc-env=FIRMWARE_FLASH_KIB=4096");
    println!("cargo:rustc-env=FIRMWARE_RAM_KIB=313");
    313
}

fn kib(var: &str, default: u32) -> u32 {
    match env::var(var) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| fail(&format!("{var} must be a whole number of KiB, not {v:?}"))),
        Err(_) => default,
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
