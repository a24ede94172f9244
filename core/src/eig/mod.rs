//! Eigen-solvers: power iteration (top, bottom, deflated top-k), Lanczos with full
//! re-orthogonalisation and in four vectors of memory (`lean`), the cyclic Jacobi method for small dense symmetric matrices, and
//! warm-started sharpness tracking.

pub mod jacobi;
pub mod lanczos;
pub mod lean;
pub mod power;
pub mod track;
