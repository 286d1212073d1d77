//! The decoder's scratch memory seen as the values it holds: the caller lends 32-bit
//! words (`&mut [u32]`, see [`Model::scratch_len`](crate::Model::scratch_len)), which the
//! f32 and f16 decoders use as f32 and the i8 decoder as i32.

/// `words` as f32 values.
pub(crate) fn as_f32(words: &mut [u32]) -> &mut [f32] {
    // SAFETY: u32 and f32 have the same size and alignment, and every bit pattern is a
    // value of both; the slice is borrowed for as long as `words` is.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<f32>(), words.len()) }
}

/// `words` as i32 values.
pub(crate) fn as_i32(words: &mut [u32]) -> &mut [i32] {
    // SAFETY: as for `as_f32`: u32 and i32 have the same size, alignment and values' bits.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<i32>(), words.len()) }
}

/// `words` as f32 values, read only.
#[cfg(feature = "transposed-conv")]
pub(crate) fn as_f32_ref(words: &[u32]) -> &[f32] {
    // SAFETY: as for `as_f32`.
    unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<f32>(), words.len()) }
}

/// `words` as i32 values, read only.
#[cfg(feature = "transposed-conv")]
pub(crate) fn as_i32_ref(words: &[u32]) -> &[i32] {
    // SAFETY: as for `as_f32`.
    unsafe { core::slice::from_raw_parts(words.as_ptr().cast::<i32>(), words.len()) }
}
