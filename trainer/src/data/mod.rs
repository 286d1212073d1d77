//! Layer 2, data: MNIST images as batches on the device.
//!
//! Each module imports only from the modules listed before it here and from lower
//! layers (checked by `trainer/tests/layers.rs`).

/// Images to batches on the device, binarized and noised as a run says.
pub mod batch;

/// What the firmware prints, read back: its images and measurements.
pub mod firmware_log;
