//! Eigen-solvers: power iteration (top, bottom, deflated top-k), Lanczos with full
//! re-orthogonalisation, and the cyclic Jacobi method for small dense symmetric matrices.

pub mod jacobi;
pub mod lanczos;
pub mod power;
